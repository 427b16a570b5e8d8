package utp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// packetType is the type of a uTP packet, the high nibble of its first byte.
type packetType uint8

// The five packet types of BEP 29.
const (
	stData  packetType = 0 // data, takes a sequence number
	stFin   packetType = 1 // end of stream, takes a sequence number
	stState packetType = 2 // acknowledgement only
	stReset packetType = 3 // abort the connection
	stSyn   packetType = 4 // open a connection, takes a sequence number
)

func (t packetType) String() string {
	switch t {
	case stData:
		return "DATA"
	case stFin:
		return "FIN"
	case stState:
		return "STATE"
	case stReset:
		return "RESET"
	case stSyn:
		return "SYN"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

const (
	version   = 1
	headerLen = 20
	// extSack is the selective acknowledgement extension.
	extSack = 1
	// maxSackLen is the longest bitmask we send (256 packets past ack+1).
	maxSackLen = 32
	// extMaxDatagram is swarmfs's own extension, sent on a SYN and on the
	// STATE that answers one: a 4-byte big-endian count of the largest
	// UDP payload the sender reads whole. Implementations that do not
	// know it skip it (BEP 29 asks them to; libtorrent and libutp do), and
	// a peer that does not send it gets datagrams of at most
	// Config.MaxPayload, since libtorrent reads into a 1500-byte buffer
	// and would take a longer datagram cut short.
	extMaxDatagram    = 0x53
	maxDatagramExtLen = 4
	// extBits is libutp's extension-bits extension (8 bytes). A handshake
	// carries it, all zero, ahead of extMaxDatagram: libutp (Transmission)
	// drops a packet whose first extension type is 3 or more as not uTP at
	// all, so extMaxDatagram must never come first.
	extBits    = 2
	extBitsLen = 8
)

// ErrPacket is wrapped by every error of the packet parser.
var ErrPacket = errors.New("utp: malformed packet")

// header is the fixed 20-byte part of a uTP v1 packet.
type header struct {
	typ    packetType
	connID uint16
	ts     uint32 // sender's timestamp, microseconds
	tsDiff uint32 // sender's receive time minus our last timestamp
	wnd    uint32 // sender's free receive window in bytes
	seq    uint16
	ack    uint16
}

// packet is a parsed uTP packet. sack and payload alias the parsed buffer.
type packet struct {
	header
	// sack is the selective ACK bitmask (bit i of byte j stands for
	// ack+2+8j+i), nil when the packet carries none.
	sack    []byte
	payload []byte
	// maxDatagram is the peer's extMaxDatagram value, 0 when absent.
	maxDatagram uint32
}

// isUTP reports whether b looks like a uTP v1 packet by its first byte, the
// test that separates uTP from DHT traffic (bencoded, starting with 'd').
func isUTP(b []byte) bool {
	return len(b) >= headerLen && b[0]&0x0f == version && packetType(b[0]>>4) <= stSyn
}

// parsePacket validates b as a uTP v1 packet. Unknown extensions are skipped;
// a packet type that carries no data (SYN, STATE, RESET, FIN) has its
// payload dropped.
func parsePacket(b []byte) (packet, error) {
	var p packet
	if len(b) < headerLen {
		return p, fmt.Errorf("%w: %d bytes, shorter than the header", ErrPacket, len(b))
	}
	if v := b[0] & 0x0f; v != version {
		return p, fmt.Errorf("%w: version %d", ErrPacket, v)
	}
	p.typ = packetType(b[0] >> 4)
	if p.typ > stSyn {
		return p, fmt.Errorf("%w: type %d", ErrPacket, uint8(p.typ))
	}
	p.connID = binary.BigEndian.Uint16(b[2:])
	p.ts = binary.BigEndian.Uint32(b[4:])
	p.tsDiff = binary.BigEndian.Uint32(b[8:])
	p.wnd = binary.BigEndian.Uint32(b[12:])
	p.seq = binary.BigEndian.Uint16(b[16:])
	p.ack = binary.BigEndian.Uint16(b[18:])
	ext := b[1]
	rest := b[headerLen:]
	for ext != 0 {
		if len(rest) < 2 {
			return p, fmt.Errorf("%w: extension %d cut short", ErrPacket, ext)
		}
		next, n := rest[0], int(rest[1])
		if len(rest)-2 < n {
			return p, fmt.Errorf("%w: extension %d of %d bytes, %d left", ErrPacket, ext, n, len(rest)-2)
		}
		// BEP 29 asks for a multiple of four bytes, but libtorrent sends
		// as many as it needs: accept any non-empty bitmask.
		if ext == extSack && n > 0 {
			if p.sack == nil {
				p.sack = rest[2 : 2+n : 2+n]
			}
		}
		if ext == extMaxDatagram && n == maxDatagramExtLen && p.maxDatagram == 0 {
			p.maxDatagram = binary.BigEndian.Uint32(rest[2:])
		}
		ext = next
		rest = rest[2+n:]
	}
	if p.typ == stData {
		p.payload = rest
	}
	return p, nil
}

// appendPacket encodes h, an optional selective ack bitmask (a multiple of
// four bytes) and payload onto dst.
func appendPacket(dst []byte, h header, sack, payload []byte) []byte {
	var ext byte
	if len(sack) > 0 {
		ext = extSack
	}
	dst = append(dst, byte(h.typ)<<4|version, ext)
	dst = binary.BigEndian.AppendUint16(dst, h.connID)
	dst = binary.BigEndian.AppendUint32(dst, h.ts)
	dst = binary.BigEndian.AppendUint32(dst, h.tsDiff)
	dst = binary.BigEndian.AppendUint32(dst, h.wnd)
	dst = binary.BigEndian.AppendUint16(dst, h.seq)
	dst = binary.BigEndian.AppendUint16(dst, h.ack)
	if len(sack) > 0 {
		dst = append(dst, 0, byte(len(sack)))
		dst = append(dst, sack...)
	}
	return append(dst, payload...)
}

// appendHandshake encodes h (a SYN, or the STATE that answers one) with
// the extMaxDatagram extension saying we read datagrams of up to
// maxDatagram bytes, chained behind an empty extBits (see extBits).
func appendHandshake(dst []byte, h header, maxDatagram uint32) []byte {
	dst = append(dst, byte(h.typ)<<4|version, extBits)
	dst = binary.BigEndian.AppendUint16(dst, h.connID)
	dst = binary.BigEndian.AppendUint32(dst, h.ts)
	dst = binary.BigEndian.AppendUint32(dst, h.tsDiff)
	dst = binary.BigEndian.AppendUint32(dst, h.wnd)
	dst = binary.BigEndian.AppendUint16(dst, h.seq)
	dst = binary.BigEndian.AppendUint16(dst, h.ack)
	dst = append(dst, extMaxDatagram, extBitsLen)
	dst = append(dst, make([]byte, extBitsLen)...)
	dst = append(dst, 0, maxDatagramExtLen)
	return binary.BigEndian.AppendUint32(dst, maxDatagram)
}

// stampHeader rewrites the fields of an encoded packet that change on each
// transmission: timestamps, window and ack number.
func stampHeader(b []byte, ts, tsDiff, wnd uint32, ack uint16) {
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], tsDiff)
	binary.BigEndian.PutUint32(b[12:], wnd)
	binary.BigEndian.PutUint16(b[18:], ack)
}

// seqLess reports whether sequence number a comes before b, with 16-bit
// wrap-around: a half of the number space ahead counts as later.
func seqLess(a, b uint16) bool { return int16(a-b) < 0 }

// sackHas reports whether the bitmask marks sequence number seq as received
// for a packet that acknowledges ack.
func sackHas(sack []byte, ack, seq uint16) bool {
	i := int(seq - ack - 2)
	return i >= 0 && i < len(sack)*8 && sack[i/8]&(1<<(i%8)) != 0
}
