package wire

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/swarmfs/swarmfs/metainfo"
)

// BEP 9 sizes.
const (
	// MetadataPieceSize is the size of every ut_metadata piece but the last.
	MetadataPieceSize = 16384
	// MaxMetadataSize caps the info dictionary size we accept (16 MiB,
	// enough for about 800 000 pieces).
	MaxMetadataSize = 16 << 20
)

// MetadataType is a ut_metadata msg_type.
type MetadataType int

// ut_metadata message types. Other values can arrive and must be ignored
// (BEP 9); ParseMetadataMsg returns them without error.
const (
	MetadataRequest MetadataType = 0
	MetadataData    MetadataType = 1
	MetadataReject  MetadataType = 2
)

func (t MetadataType) String() string {
	switch t {
	case MetadataRequest:
		return "request"
	case MetadataData:
		return "data"
	case MetadataReject:
		return "reject"
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// ErrMetadataMsg is wrapped by errors about malformed ut_metadata messages.
var ErrMetadataMsg = errors.New("wire: bad ut_metadata message")

// MetadataMsg is a ut_metadata message: a bencoded dictionary, followed for
// data messages by the piece's bytes.
type MetadataMsg struct {
	Type  MetadataType
	Piece int
	// TotalSize is the info dictionary's size; set in data messages only.
	TotalSize int
	// Data is the piece's bytes in data messages (aliases the payload).
	Data []byte
}

type metadataDict struct {
	MsgType   int `bencode:"msg_type"`
	Piece     int `bencode:"piece"`
	TotalSize int `bencode:"total_size,omitempty"`
}

// AppendMetadataMsg appends the payload of m (dictionary, then Data for a
// data message) to dst.
func AppendMetadataMsg(dst []byte, m MetadataMsg) []byte {
	d := metadataDict{MsgType: int(m.Type), Piece: m.Piece}
	if m.Type == MetadataData {
		d.TotalSize = m.TotalSize
	}
	// Marshal cannot fail on this struct of ints.
	b, _ := metainfo.Marshal(&d)
	dst = append(dst, b...)
	if m.Type == MetadataData {
		dst = append(dst, m.Data...)
	}
	return dst
}

// MaxMetadataMsgLen is the largest ut_metadata payload accepted: a piece
// and room for its dictionary.
const MaxMetadataMsgLen = MetadataPieceSize + 1024

// ParseMetadataMsg decodes a ut_metadata payload of at most
// MaxMetadataMsgLen bytes. It checks what can be
// checked without knowing the torrent: msg_type and piece present and in
// range, a data message's total_size in 1..MaxMetadataSize, its piece
// inside total_size and carrying at most MetadataPieceSize bytes, and no
// bytes after the dictionary except in data messages. Whether a data piece
// has exactly the right size is for the metadata assembler to judge.
// Errors wrap ErrMetadataMsg.
func ParseMetadataMsg(payload []byte) (MetadataMsg, error) {
	var m MetadataMsg
	if len(payload) > MaxMetadataMsgLen {
		return m, fmt.Errorf("%w: %d bytes, over the cap of %d", ErrMetadataMsg, len(payload), MaxMetadataMsgLen)
	}
	v, n, err := metainfo.DecodePrefix(payload)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrMetadataMsg, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return m, fmt.Errorf("%w: not a dictionary", ErrMetadataMsg)
	}
	t, ok := d["msg_type"].(int64)
	if !ok {
		return m, fmt.Errorf("%w: no integer msg_type", ErrMetadataMsg)
	}
	if t < 0 || t > 255 {
		return m, fmt.Errorf("%w: msg_type %d", ErrMetadataMsg, t)
	}
	m.Type = MetadataType(t)
	p, ok := d["piece"].(int64)
	if !ok {
		return m, fmt.Errorf("%w: no integer piece", ErrMetadataMsg)
	}
	if p < 0 || p >= MaxMetadataSize/MetadataPieceSize {
		return m, fmt.Errorf("%w: piece %d out of range", ErrMetadataMsg, p)
	}
	m.Piece = int(p)
	rest := payload[n:]
	if m.Type != MetadataData {
		if len(rest) != 0 {
			return m, fmt.Errorf("%w: %d bytes after a %s message", ErrMetadataMsg, len(rest), m.Type)
		}
		return m, nil
	}
	size, ok := d["total_size"].(int64)
	if !ok {
		return m, fmt.Errorf("%w: data message without integer total_size", ErrMetadataMsg)
	}
	if size <= 0 || size > MaxMetadataSize {
		return m, fmt.Errorf("%w: total_size %d outside 1..%d", ErrMetadataMsg, size, MaxMetadataSize)
	}
	m.TotalSize = int(size)
	if p*MetadataPieceSize >= size {
		return m, fmt.Errorf("%w: piece %d beyond total_size %d", ErrMetadataMsg, p, size)
	}
	if len(rest) == 0 || len(rest) > MetadataPieceSize {
		return m, fmt.Errorf("%w: data piece of %d bytes, want 1..%d", ErrMetadataMsg, len(rest), MetadataPieceSize)
	}
	m.Data = rest
	return m, nil
}
