package holepunch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ExtName is the BEP 10 extension name of the holepunch message.
const ExtName = "ut_holepunch"

// MsgType is a holepunch message's type (BEP 55 msg_type).
type MsgType uint8

// Message types.
const (
	Rendezvous MsgType = 0 // initiator -> relay: connect me to Addr
	Connect    MsgType = 1 // relay -> both sides: connect to Addr now
	Error      MsgType = 2 // relay -> initiator: the rendezvous to Addr failed
)

// String returns the type's name in BEP 55.
func (t MsgType) String() string {
	switch t {
	case Rendezvous:
		return "rendezvous"
	case Connect:
		return "connect"
	case Error:
		return "error"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// ErrCode is the err_code of an error message.
type ErrCode uint32

// Error codes (BEP 55). Other values may arrive from newer peers; they
// are kept as they are.
const (
	NoError      ErrCode = 0 // in rendezvous and connect messages
	NoSuchPeer   ErrCode = 1 // the target endpoint is invalid
	NotConnected ErrCode = 2 // the relay is not connected to the target
	NoSupport    ErrCode = 3 // the target does not support ut_holepunch
	NoSelf       ErrCode = 4 // the target is the relay (or the initiator) itself
)

// String returns the code's name in BEP 55.
func (c ErrCode) String() string {
	switch c {
	case NoError:
		return "none"
	case NoSuchPeer:
		return "NoSuchPeer"
	case NotConnected:
		return "NotConnected"
	case NoSupport:
		return "NoSupport"
	case NoSelf:
		return "NoSelf"
	}
	return fmt.Sprintf("error code %d", uint32(c))
}

// Msg is a validated holepunch message.
type Msg struct {
	Type MsgType
	Addr netip.AddrPort // the target (rendezvous, error) or whom to connect to (connect)
	Err  ErrCode        // error messages only; NoError otherwise
}

// MaxMsgLen is the longest valid payload: type, address type, an IPv6
// address, port and error code.
const MaxMsgLen = 1 + 1 + 16 + 2 + 4

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("holepunch: malformed message")

// Address types (BEP 55 addr_type).
const (
	addrIPv4 = 0
	addrIPv6 = 1
)

// Parse decodes and validates a ut_holepunch payload: a known type, an
// address type of 0 (4 bytes) or 1 (16 bytes, not an IPv4-mapped address),
// a usable address (not unspecified or multicast) with a non-zero port,
// then the 4-byte error code. libtorrent leaves the error code out of
// rendezvous and connect messages, so it is optional there (and must be
// zero when present); an error message must carry one. Nothing may follow.
// Errors wrap ErrMalformed.
func Parse(p []byte) (Msg, error) {
	var m Msg
	if len(p) < 2 || len(p) > MaxMsgLen {
		return m, fmt.Errorf("%w: %d bytes", ErrMalformed, len(p))
	}
	m.Type = MsgType(p[0])
	if m.Type > Error {
		return m, fmt.Errorf("%w: %v", ErrMalformed, m.Type)
	}
	var n int
	switch p[1] {
	case addrIPv4:
		n = 4
	case addrIPv6:
		n = 16
	default:
		return m, fmt.Errorf("%w: address type %d", ErrMalformed, p[1])
	}
	rest := p[2:]
	if len(rest) < n+2 {
		return m, fmt.Errorf("%w: %v with %d address bytes, want %d and a port", ErrMalformed, m.Type, len(rest), n)
	}
	a, _ := netip.AddrFromSlice(rest[:n])
	port := binary.BigEndian.Uint16(rest[n:])
	rest = rest[n+2:]
	switch {
	case a.Is4In6():
		return m, fmt.Errorf("%w: IPv4-mapped address %v as IPv6", ErrMalformed, a)
	case port == 0 || a.IsUnspecified() || a.IsMulticast():
		return m, fmt.Errorf("%w: unusable address %v", ErrMalformed, netip.AddrPortFrom(a, port))
	}
	m.Addr = netip.AddrPortFrom(a, port)
	switch {
	case len(rest) == 4:
		m.Err = ErrCode(binary.BigEndian.Uint32(rest))
		if m.Type != Error && m.Err != NoError {
			return Msg{}, fmt.Errorf("%w: %v with %v", ErrMalformed, m.Type, m.Err)
		}
	case len(rest) != 0 || m.Type == Error:
		return Msg{}, fmt.Errorf("%w: %v with %d bytes after the port, want 4", ErrMalformed, m.Type, len(rest))
	}
	return m, nil
}

// Append appends m's payload to dst, error code included (0 for
// rendezvous and connect, as BEP 55 writes it). IPv4-mapped addresses go
// out as IPv4. An invalid Addr gives a payload that Parse refuses; callers
// build messages from addresses they validated.
func (m Msg) Append(dst []byte) []byte {
	a := m.Addr.Addr().Unmap()
	dst = append(dst, byte(m.Type))
	switch {
	case a.Is6():
		dst = append(dst, addrIPv6)
		dst = append(dst, a.AsSlice()...)
	case a.Is4():
		dst = append(dst, addrIPv4)
		dst = append(dst, a.AsSlice()...)
	default:
		dst = append(dst, addrIPv4, 0, 0, 0, 0)
	}
	dst = binary.BigEndian.AppendUint16(dst, m.Addr.Port())
	code := m.Err
	if m.Type != Error {
		code = NoError
	}
	return binary.BigEndian.AppendUint32(dst, uint32(code))
}

// String describes m for logs.
func (m Msg) String() string {
	if m.Type == Error {
		return fmt.Sprintf("%v %v: %v", m.Type, m.Addr, m.Err)
	}
	return fmt.Sprintf("%v %v", m.Type, m.Addr)
}

// usable reports whether a can be dialled or named at all.
func usable(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.IsValid() && a.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast() && !(ip.Is6() && ip.IsLinkLocalUnicast())
}

// local reports whether a is an address of a local network (loopback,
// private, link-local): such peers are never bridged with public ones.
func local(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast()
}

// canon unmaps IPv4-mapped IPv6 addresses so one peer has one key.
func canon(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
