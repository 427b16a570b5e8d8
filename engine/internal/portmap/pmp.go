package portmap

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Proto is a transport protocol, numbered as in IANA's protocol numbers
// (which PCP uses on the wire).
type Proto uint8

// The protocols a mapping can be for.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// String returns "TCP" or "UDP".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return fmt.Sprintf("Proto(%d)", uint8(p))
}

// Ports of RFC 6886 and RFC 6887: both protocols answer on 5351.
const pmpPort = 5351

// NAT-PMP opcodes (RFC 6886): answers carry 128 + the request's opcode.
const (
	pmpOpExternal = 0
	pmpOpMapUDP   = 1
	pmpOpMapTCP   = 2
)

// pmpExternalRequest is the NAT-PMP external address request.
func pmpExternalRequest() []byte { return []byte{0, pmpOpExternal} }

// pmpMapRequest asks for (or, with lifetime 0 and external 0, deletes) a
// mapping of internal to the suggested external port.
func pmpMapRequest(p Proto, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, 12)
	b[1] = pmpOpMapTCP
	if p == UDP {
		b[1] = pmpOpMapUDP
	}
	binary.BigEndian.PutUint16(b[4:], internal)
	binary.BigEndian.PutUint16(b[6:], external)
	binary.BigEndian.PutUint32(b[8:], lifetime)
	return b
}

// pmpAnswer is a parsed NAT-PMP answer with result 0.
type pmpAnswer struct {
	Op    uint8 // the request's opcode
	Epoch uint32
	// External address answers.
	Addr netip.Addr
	// Mapping answers.
	Proto              Proto
	Internal, External uint16
	Lifetime           uint32
}

// parsePMP parses a NAT-PMP answer. A non-zero result code gives a
// *PMPError; anything that is not a NAT-PMP answer gives ErrMalformed.
func parsePMP(b []byte) (pmpAnswer, error) {
	var a pmpAnswer
	if len(b) < 8 || b[0] != 0 || b[1] < 128 || b[1] > 128+pmpOpMapTCP {
		return a, fmt.Errorf("%w: NAT-PMP answer of %d bytes %x", ErrMalformed, len(b), b[:min(len(b), 4)])
	}
	a.Op = b[1] - 128
	if code := binary.BigEndian.Uint16(b[2:]); code != 0 {
		return a, &PMPError{Protocol: "NAT-PMP", Code: int(code)}
	}
	a.Epoch = binary.BigEndian.Uint32(b[4:])
	switch a.Op {
	case pmpOpExternal:
		if len(b) < 12 {
			return a, fmt.Errorf("%w: NAT-PMP external address answer of %d bytes", ErrMalformed, len(b))
		}
		a.Addr = netip.AddrFrom4([4]byte(b[8:12]))
	default:
		if len(b) < 16 {
			return a, fmt.Errorf("%w: NAT-PMP mapping answer of %d bytes", ErrMalformed, len(b))
		}
		a.Proto = TCP
		if a.Op == pmpOpMapUDP {
			a.Proto = UDP
		}
		a.Internal = binary.BigEndian.Uint16(b[8:])
		a.External = binary.BigEndian.Uint16(b[10:])
		a.Lifetime = binary.BigEndian.Uint32(b[12:])
	}
	return a, nil
}

// PCP (RFC 6887) constants.
const (
	pcpVersion = 2
	pcpOpMap   = 1
	pcpHeader  = 24
	pcpMapBody = 36
)

// pcpMapRequest builds a MAP request from client (the address the server
// sees us at) with nonce; lifetime 0 deletes the mapping.
func pcpMapRequest(client netip.Addr, nonce [12]byte, p Proto, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, pcpHeader+pcpMapBody)
	b[0], b[1] = pcpVersion, pcpOpMap
	binary.BigEndian.PutUint32(b[4:], lifetime)
	c16 := client.As16() // IPv4-mapped for an IPv4 client, as PCP wants
	copy(b[8:24], c16[:])
	o := b[pcpHeader:]
	copy(o[0:12], nonce[:])
	o[12] = byte(p)
	binary.BigEndian.PutUint16(o[16:], internal)
	binary.BigEndian.PutUint16(o[18:], external)
	// Suggested external address: unspecified, of the client's family.
	if client.Is4() {
		o[30], o[31] = 0xff, 0xff
	}
	return b
}

// pcpAnswer is a parsed PCP MAP answer with result 0.
type pcpAnswer struct {
	Lifetime, Epoch uint32
	Nonce           [12]byte
	Proto           Proto
	Internal        uint16
	External        uint16
	ExternalAddr    netip.Addr
}

// parsePCP parses a PCP MAP answer. A non-zero result code gives a
// *PMPError (Protocol "PCP"); a NAT-PMP server's "unsupported version"
// answer to our version 2 gives *PMPError{Protocol: "PCP", Code: 1}, so
// the caller falls back to NAT-PMP; anything else gives ErrMalformed.
func parsePCP(b []byte) (pcpAnswer, error) {
	var a pcpAnswer
	if len(b) >= 4 && b[0] == 0 && b[1] >= 128 && binary.BigEndian.Uint16(b[2:]) == 1 {
		return a, &PMPError{Protocol: "PCP", Code: 1}
	}
	if len(b) < pcpHeader || b[1]&0x80 == 0 || b[1]&0x7f != pcpOpMap {
		return a, fmt.Errorf("%w: PCP answer of %d bytes %x", ErrMalformed, len(b), b[:min(len(b), 4)])
	}
	if b[3] != 0 {
		return a, &PMPError{Protocol: "PCP", Code: int(b[3])}
	}
	if b[0] != pcpVersion || len(b) < pcpHeader+pcpMapBody || len(b) > 1100 || len(b)%4 != 0 {
		return a, fmt.Errorf("%w: PCP MAP answer version %d, %d bytes", ErrMalformed, b[0], len(b))
	}
	a.Lifetime = binary.BigEndian.Uint32(b[4:])
	a.Epoch = binary.BigEndian.Uint32(b[8:])
	o := b[pcpHeader:]
	copy(a.Nonce[:], o[0:12])
	a.Proto = Proto(o[12])
	a.Internal = binary.BigEndian.Uint16(o[16:])
	a.External = binary.BigEndian.Uint16(o[18:])
	a.ExternalAddr = netip.AddrFrom16([16]byte(o[20:36])).Unmap()
	return a, nil
}
