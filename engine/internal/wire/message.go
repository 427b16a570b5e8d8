package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// ID is a message id (the byte after the length prefix).
type ID uint8

// Message ids of BEP 3, BEP 5 (Port), BEP 6 and BEP 10 (Extended).
const (
	Choke         ID = 0
	Unchoke       ID = 1
	Interested    ID = 2
	NotInterested ID = 3
	Have          ID = 4
	Bitfield      ID = 5
	Request       ID = 6
	Piece         ID = 7
	Cancel        ID = 8
	Port          ID = 9
	Suggest       ID = 13
	HaveAll       ID = 14
	HaveNone      ID = 15
	Reject        ID = 16
	AllowedFast   ID = 17
	Extended      ID = 20
)

var idNames = [...]string{
	Choke: "choke", Unchoke: "unchoke", Interested: "interested",
	NotInterested: "not interested", Have: "have", Bitfield: "bitfield",
	Request: "request", Piece: "piece", Cancel: "cancel", Port: "port",
	Suggest: "suggest", HaveAll: "have all", HaveNone: "have none",
	Reject: "reject", AllowedFast: "allowed fast", Extended: "extended",
}

// String returns the message's name, or "unknown(N)".
func (id ID) String() string {
	if int(id) < len(idNames) && idNames[id] != "" {
		return idNames[id]
	}
	return "unknown(" + strconv.Itoa(int(id)) + ")"
}

// Known reports whether this package knows how to decode the id.
func (id ID) Known() bool { return int(id) < len(idNames) && idNames[id] != "" }

// Sizes and limits.
const (
	// BlockSize is the size of the blocks we request (16 KiB), the size
	// every client accepts.
	BlockSize = 16384
	// MaxBlockSize is the largest block a request, cancel, reject or piece
	// message may name (128 KiB); larger ones are protocol violations.
	MaxBlockSize = 128 << 10
	// DefaultMaxMessageLen is the default cap on a message's length (its
	// length prefix): large enough for a block, a ut_metadata piece, an
	// extension handshake and the bitfield of a torrent with up to
	// 8 million pieces.
	DefaultMaxMessageLen = 1 << 20
	// pieceHeaderLen is id + index + begin of a piece message.
	pieceHeaderLen = 9
)

// MaxMessageLen returns the message length cap for a torrent with
// numPieces pieces: DefaultMaxMessageLen, or more if its bitfield message
// needs it.
func MaxMessageLen(numPieces int) uint32 {
	bf := 1 + (numPieces+7)/8
	return uint32(max(DefaultMaxMessageLen, bf))
}

// Message is one decoded peer wire message. Which fields are meaningful
// depends on ID:
//
//	Keepalive                         no other field
//	Have, Suggest, AllowedFast        Index
//	Request, Cancel, Reject           Index, Begin, Length
//	Piece                             Index, Begin, Data (the block)
//	Bitfield                          Data (packed bits, see package bitfield)
//	Port                              Port
//	Extended                          ExtID, Data (the payload after ExtID)
//	unknown ids                       Data (the payload after the id)
type Message struct {
	Keepalive bool
	ID        ID
	Index     uint32
	Begin     uint32
	Length    uint32
	Data      []byte
	ExtID     uint8
	Port      uint16
}

// String describes the message briefly for logs (never the data bytes).
func (m Message) String() string {
	if m.Keepalive {
		return "keepalive"
	}
	switch m.ID {
	case Have, Suggest, AllowedFast:
		return fmt.Sprintf("%s %d", m.ID, m.Index)
	case Request, Cancel, Reject:
		return fmt.Sprintf("%s %d+%d/%d", m.ID, m.Index, m.Begin, m.Length)
	case Piece:
		return fmt.Sprintf("piece %d+%d/%d", m.Index, m.Begin, len(m.Data))
	case Port:
		return fmt.Sprintf("port %d", m.Port)
	case Extended:
		return fmt.Sprintf("extended %d (%d bytes)", m.ExtID, len(m.Data))
	case Bitfield:
		return fmt.Sprintf("bitfield (%d bytes)", len(m.Data))
	}
	return m.ID.String()
}

// ErrProtocol is wrapped by every *ProtocolError.
var ErrProtocol = errors.New("wire: protocol violation")

// ProtocolError describes a message that breaks the wire protocol. The
// engine logs it and drops the peer.
type ProtocolError struct {
	ID     ID     // the message's id; meaningless if Length is 0
	Length uint32 // the message's length prefix
	Reason string // what was wrong, e.g. "length 6, want 5"
}

func (e *ProtocolError) Error() string {
	if e.Length == 0 {
		return "wire: protocol violation: " + e.Reason
	}
	return fmt.Sprintf("wire: protocol violation: %s message of length %d: %s", e.ID, e.Length, e.Reason)
}

// Unwrap returns ErrProtocol.
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// fixedLen is each known id's exact length prefix; 0 means variable.
var fixedLen = [...]uint32{
	Choke: 1, Unchoke: 1, Interested: 1, NotInterested: 1,
	Have: 5, Request: 13, Cancel: 13, Port: 3,
	Suggest: 5, HaveAll: 1, HaveNone: 1, Reject: 13, AllowedFast: 5,
}

// ReadMessage reads one message from r, which should be buffered (a
// bufio.Reader): it issues one small read for the length prefix and one for
// the payload. A message whose length prefix exceeds maxLen is rejected
// before its payload is read (maxLen 0 means DefaultMaxMessageLen).
//
// The payload is read into buf when it fits (cap(buf) >= length), so that a
// connection reading into one reusable buffer of a few tens of KiB does not
// allocate per message; Data then aliases buf and is valid until buf is
// reused. A longer message gets a fresh slice, grown as its bytes arrive.
//
// Errors: *ProtocolError (wrapping ErrProtocol) for a message that breaks
// the protocol; io.EOF only when the stream ends cleanly between messages;
// io.ErrUnexpectedEOF when it ends inside one; r's own errors otherwise.
func ReadMessage(r io.Reader, maxLen uint32, buf []byte) (Message, error) {
	return ReadMessageInto(r, maxLen, buf, nil)
}

// ReadMessageInto is ReadMessage, except that the block of a piece message
// is read straight into the slice that block returns for its length,
// instead of into buf: a caller that keeps blocks saves a copy, and Data
// aliases that slice. block may return nil to decline, and a nil block is
// ReadMessage. It is called only for a length that passes the block checks
// (1 to MaxBlockSize bytes).
func ReadMessageInto(r io.Reader, maxLen uint32, buf []byte, block func(n int) []byte) (Message, error) {
	if maxLen == 0 {
		maxLen = DefaultMaxMessageLen
	}
	var head []byte // room for the length prefix or a piece header
	if cap(buf) >= pieceHeaderLen {
		head = buf[:4]
	} else {
		head = make([]byte, 4, pieceHeaderLen)
	}
	if _, err := io.ReadFull(r, head); err != nil {
		return Message{}, err
	}
	n := binary.BigEndian.Uint32(head)
	if n == 0 {
		return Message{Keepalive: true}, nil
	}
	if n > maxLen {
		return Message{}, &ProtocolError{Reason: fmt.Sprintf("message length %d over the cap of %d", n, maxLen)}
	}
	var id []byte // the id, already read, when a block was possible
	if block != nil && n > pieceHeaderLen && n-pieceHeaderLen <= MaxBlockSize {
		if _, err := io.ReadFull(r, head[:1]); err != nil {
			return Message{}, noEOF(err)
		}
		if ID(head[0]) == Piece {
			if data := block(int(n - pieceHeaderLen)); len(data) == int(n-pieceHeaderLen) {
				h := head[:pieceHeaderLen]
				if _, err := io.ReadFull(r, h[1:]); err != nil {
					return Message{}, noEOF(err)
				}
				if _, err := io.ReadFull(r, data); err != nil {
					return Message{}, noEOF(err)
				}
				be := binary.BigEndian
				return Message{ID: Piece, Index: be.Uint32(h[1:]), Begin: be.Uint32(h[5:]),
					Length: uint32(len(data)), Data: data}, nil
			}
		}
		id = head[:1]
	}
	if uint32(cap(buf)) >= n {
		p := buf[:n]
		k := copy(p, id) // head aliases buf: the id is already in place
		if _, err := io.ReadFull(r, p[k:]); err != nil {
			return Message{}, noEOF(err)
		}
		return parsePayload(p)
	}
	p, err := readGrowing(r, int(n), id)
	if err != nil {
		return Message{}, err
	}
	return parsePayload(p)
}

// readGrowing reads exactly n bytes, the first of them already read into
// prefix, into a new slice that grows (doubling from 64 KiB) as the bytes
// arrive, so that a length prefix alone, without the bytes behind it,
// cannot make us allocate up to the message cap.
func readGrowing(r io.Reader, n int, prefix []byte) ([]byte, error) {
	p := append(make([]byte, 0, min(n, 64<<10)), prefix...)
	for len(p) < n {
		if len(p) == cap(p) {
			p = slices.Grow(p, min(n-len(p), cap(p)))
		}
		m, err := io.ReadFull(r, p[len(p):min(n, cap(p))])
		p = p[:len(p)+m]
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return p, nil
}

// ParseMessage decodes one message from its payload p (the bytes after the
// length prefix, starting with the id); an empty p is a keepalive. It
// validates like ReadMessage; Data aliases p.
func ParseMessage(p []byte) (Message, error) {
	if len(p) == 0 {
		return Message{Keepalive: true}, nil
	}
	return parsePayload(p)
}

func parsePayload(p []byte) (Message, error) {
	n := uint32(len(p))
	m := Message{ID: ID(p[0])}
	bad := func(format string, args ...any) (Message, error) {
		return Message{}, &ProtocolError{ID: m.ID, Length: n, Reason: fmt.Sprintf(format, args...)}
	}
	if int(m.ID) < len(fixedLen) && fixedLen[m.ID] != 0 && n != fixedLen[m.ID] {
		return bad("length %d, want %d", n, fixedLen[m.ID])
	}
	be := binary.BigEndian
	switch m.ID {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
	case Have, Suggest, AllowedFast:
		m.Index = be.Uint32(p[1:])
	case Request, Cancel, Reject:
		m.Index, m.Begin, m.Length = be.Uint32(p[1:]), be.Uint32(p[5:]), be.Uint32(p[9:])
		if m.Length == 0 {
			return bad("block length 0")
		}
		if m.Length > MaxBlockSize {
			return bad("block length %d over the cap of %d", m.Length, MaxBlockSize)
		}
	case Piece:
		if n < pieceHeaderLen {
			return bad("shorter than the %d-byte header", pieceHeaderLen)
		}
		m.Index, m.Begin = be.Uint32(p[1:]), be.Uint32(p[5:])
		m.Data = p[pieceHeaderLen:]
		if len(m.Data) == 0 {
			return bad("empty block")
		}
		if len(m.Data) > MaxBlockSize {
			return bad("block of %d bytes over the cap of %d", len(m.Data), MaxBlockSize)
		}
		m.Length = uint32(len(m.Data))
	case Bitfield:
		m.Data = p[1:]
	case Port:
		m.Port = be.Uint16(p[1:])
	case Extended:
		if n < 2 {
			return bad("no extended message id")
		}
		m.ExtID = p[1]
		m.Data = p[2:]
	default:
		m.Data = p[1:]
	}
	return m, nil
}

// AppendMessage appends the encoding of m, length prefix included, to dst
// and returns the extended slice. Fields that m.ID does not use are
// ignored; for Piece, Bitfield, Extended and unknown ids Data is copied.
// It does not allocate when dst has room.
func AppendMessage(dst []byte, m Message) []byte {
	if m.Keepalive {
		return binary.BigEndian.AppendUint32(dst, 0)
	}
	be := binary.BigEndian
	switch m.ID {
	case Have, Suggest, AllowedFast:
		dst = be.AppendUint32(dst, 5)
		dst = append(dst, byte(m.ID))
		return be.AppendUint32(dst, m.Index)
	case Request, Cancel, Reject:
		dst = be.AppendUint32(dst, 13)
		dst = append(dst, byte(m.ID))
		dst = be.AppendUint32(dst, m.Index)
		dst = be.AppendUint32(dst, m.Begin)
		return be.AppendUint32(dst, m.Length)
	case Piece:
		dst = AppendPieceHeader(dst, m.Index, m.Begin, len(m.Data))
		return append(dst, m.Data...)
	case Port:
		dst = be.AppendUint32(dst, 3)
		dst = append(dst, byte(m.ID))
		return be.AppendUint16(dst, m.Port)
	case Extended:
		dst = be.AppendUint32(dst, uint32(2+len(m.Data)))
		dst = append(dst, byte(m.ID), m.ExtID)
		return append(dst, m.Data...)
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		dst = be.AppendUint32(dst, 1)
		return append(dst, byte(m.ID))
	default: // Bitfield and ids unknown to this package: id + Data.
		dst = be.AppendUint32(dst, uint32(1+len(m.Data)))
		dst = append(dst, byte(m.ID))
		return append(dst, m.Data...)
	}
}

// PieceHeaderLen is the length of what AppendPieceHeader writes: the length
// prefix, the id, the index and the begin offset.
const PieceHeaderLen = 4 + pieceHeaderLen

// AppendPieceHeader appends the 13-byte header of a piece message carrying
// a block of blockLen bytes; the caller sends the block itself right after
// (for example with net.Buffers, which uses writev) instead of copying it.
func AppendPieceHeader(dst []byte, index, begin uint32, blockLen int) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(pieceHeaderLen+blockLen))
	dst = append(dst, byte(Piece))
	dst = be.AppendUint32(dst, index)
	return be.AppendUint32(dst, begin)
}

// AppendExtended appends an extended message (id 20) with extension id
// extID and payload, without building a Message.
func AppendExtended(dst []byte, extID uint8, payload []byte) []byte {
	return AppendMessage(dst, Message{ID: Extended, ExtID: extID, Data: payload})
}
