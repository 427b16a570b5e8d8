package wire

import (
	"errors"
	"fmt"
	"io"
)

// Protocol is the protocol string of the BEP 3 handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the length of a complete handshake in bytes:
// 1 + 19 (protocol string) + 8 (reserved) + 20 (info hash) + 20 (peer id).
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// handshakeStartLen is the part of the handshake up to and including the
// info hash, which ReadHandshakeStart consumes.
const handshakeStartLen = HandshakeLen - 20

// Reserved-bit positions of the handshake, as byte index and mask.
const (
	// reservedExtByte/reservedExtBit mark the BEP 10 extension protocol.
	reservedExtByte, reservedExtBit = 5, 0x10
	// reservedFastByte/reservedFastBit mark the BEP 6 fast extension.
	reservedFastByte, reservedFastBit = 7, 0x04
	// reservedDHTByte/reservedDHTBit mark BEP 5 DHT support (port message).
	reservedDHTByte, reservedDHTBit = 7, 0x01
)

// ErrHandshake is wrapped by every error about a malformed handshake.
var ErrHandshake = errors.New("wire: bad handshake")

// Handshake is the BEP 3 handshake: reserved bits, info hash and peer id.
type Handshake struct {
	Reserved [8]byte
	InfoHash [20]byte
	PeerID   [20]byte
}

// NewHandshake returns our handshake for infoHash and peerID with the fast
// extension (BEP 6) and extension protocol (BEP 10) bits set.
func NewHandshake(infoHash, peerID [20]byte) Handshake {
	h := Handshake{InfoHash: infoHash, PeerID: peerID}
	h.SetFast(true)
	h.SetExtended(true)
	return h
}

// SupportsFast reports whether the BEP 6 fast extension bit is set.
func (h Handshake) SupportsFast() bool {
	return h.Reserved[reservedFastByte]&reservedFastBit != 0
}

// SupportsExtended reports whether the BEP 10 extension protocol bit is set.
func (h Handshake) SupportsExtended() bool {
	return h.Reserved[reservedExtByte]&reservedExtBit != 0
}

// SupportsDHT reports whether the BEP 5 DHT bit is set.
func (h Handshake) SupportsDHT() bool {
	return h.Reserved[reservedDHTByte]&reservedDHTBit != 0
}

// SetFast sets or clears the fast extension bit.
func (h *Handshake) SetFast(on bool) { setBit(&h.Reserved, reservedFastByte, reservedFastBit, on) }

// SetExtended sets or clears the extension protocol bit.
func (h *Handshake) SetExtended(on bool) { setBit(&h.Reserved, reservedExtByte, reservedExtBit, on) }

// SetDHT sets or clears the DHT bit.
func (h *Handshake) SetDHT(on bool) { setBit(&h.Reserved, reservedDHTByte, reservedDHTBit, on) }

func setBit(r *[8]byte, i int, mask byte, on bool) {
	if on {
		r[i] |= mask
	} else {
		r[i] &^= mask
	}
}

// AppendHandshake appends the 68-byte encoding of h to dst.
func AppendHandshake(dst []byte, h Handshake) []byte {
	dst = append(dst, byte(len(Protocol)))
	dst = append(dst, Protocol...)
	dst = append(dst, h.Reserved[:]...)
	dst = append(dst, h.InfoHash[:]...)
	return append(dst, h.PeerID[:]...)
}

// WriteHandshake writes h to w in a single Write call.
func WriteHandshake(w io.Writer, h Handshake) error {
	var buf [HandshakeLen]byte
	_, err := w.Write(AppendHandshake(buf[:0], h))
	return err
}

// ReadHandshakeStart reads the protocol string, the reserved bytes and the
// info hash of a handshake (48 bytes), leaving the peer id unread, so that a
// listener can pick the torrent before answering. It reads the length byte
// first and fails at once, with an error wrapping ErrHandshake, if it is not
// 19 (an encrypted or non-BitTorrent connection), without waiting for more.
func ReadHandshakeStart(r io.Reader) (reserved [8]byte, infoHash [20]byte, err error) {
	var buf [handshakeStartLen]byte
	if _, err = io.ReadFull(r, buf[:1]); err != nil {
		return reserved, infoHash, err
	}
	if n := int(buf[0]); n != len(Protocol) {
		return reserved, infoHash, fmt.Errorf("%w: protocol string length %d, want %d (not plain BitTorrent: encrypted or another protocol?)", ErrHandshake, n, len(Protocol))
	}
	if _, err = io.ReadFull(r, buf[1:]); err != nil {
		return reserved, infoHash, noEOF(err)
	}
	if got := string(buf[1 : 1+len(Protocol)]); got != Protocol {
		return reserved, infoHash, fmt.Errorf("%w: protocol string %q, want %q", ErrHandshake, got, Protocol)
	}
	copy(reserved[:], buf[1+len(Protocol):])
	copy(infoHash[:], buf[1+len(Protocol)+8:])
	return reserved, infoHash, nil
}

// ReadPeerID reads the 20-byte peer id that ends a handshake.
func ReadPeerID(r io.Reader) (id [20]byte, err error) {
	if _, err = io.ReadFull(r, id[:]); err != nil {
		return id, noEOF(err)
	}
	return id, nil
}

// ReadHandshake reads a complete handshake.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var h Handshake
	var err error
	h.Reserved, h.InfoHash, err = ReadHandshakeStart(r)
	if err != nil {
		return h, err
	}
	h.PeerID, err = ReadPeerID(r)
	return h, err
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: the stream ended inside a
// unit that had begun.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
