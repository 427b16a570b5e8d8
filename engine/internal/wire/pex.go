package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/swarmfs/swarmfs/metainfo"
)

// PexFlags are the per-peer flags of ut_pex "added.f" / "added6.f".
type PexFlags uint8

// ut_pex flag bits (BEP 11).
const (
	PexEncryption PexFlags = 0x01 // prefers encryption
	PexSeed       PexFlags = 0x02 // is a seed or upload-only
	PexUTP        PexFlags = 0x04 // supports uTP
	PexHolepunch  PexFlags = 0x08 // supports ut_holepunch
	PexReachable  PexFlags = 0x10 // was reached by an outgoing connection
)

// PEX limits.
const (
	// MaxPexPeers caps the added and the dropped peers (each, IPv4 and IPv6
	// together) read from one message; the rest are ignored.
	MaxPexPeers = 200
	// MaxPexSend is the most added and the most dropped peers (each) we put
	// in one message, as libtorrent limits its own.
	MaxPexSend = 50
	// MaxPexMessageLen is the largest ut_pex payload accepted (libtorrent
	// disconnects peers over 500 KiB; we are stricter).
	MaxPexMessageLen = 64 << 10
)

// ErrPex is wrapped by errors about malformed ut_pex messages.
var ErrPex = errors.New("wire: bad ut_pex message")

// PexPeer is a peer address with its flags.
type PexPeer struct {
	Addr  netip.AddrPort
	Flags PexFlags
}

// PexMsg is a ut_pex message: peers added since the last message and peers
// dropped, IPv4 and IPv6 together.
type PexMsg struct {
	Added   []PexPeer
	Dropped []netip.AddrPort
}

type pexWire struct {
	Added    []byte `bencode:"added"`
	AddedF   []byte `bencode:"added.f"`
	Dropped  []byte `bencode:"dropped"`
	Added6   []byte `bencode:"added6,omitempty"`
	Added6F  []byte `bencode:"added6.f,omitempty"`
	Dropped6 []byte `bencode:"dropped6,omitempty"`
}

// AppendPex appends the bencoded payload of m to dst. IPv4 (and IPv4-mapped)
// addresses go to "added"/"dropped", IPv6 to "added6"/"dropped6". Invalid
// addresses are skipped. It does not enforce MaxPexSend; package pex does.
func AppendPex(dst []byte, m PexMsg) []byte {
	var w pexWire
	w.Added, w.AddedF = []byte{}, []byte{}
	w.Dropped = []byte{}
	for _, p := range m.Added {
		a := p.Addr.Addr().Unmap()
		switch {
		case a.Is4():
			w.Added = appendCompact(w.Added, a, p.Addr.Port())
			w.AddedF = append(w.AddedF, byte(p.Flags))
		case a.Is6():
			w.Added6 = appendCompact(w.Added6, a, p.Addr.Port())
			w.Added6F = append(w.Added6F, byte(p.Flags))
		}
	}
	for _, ap := range m.Dropped {
		a := ap.Addr().Unmap()
		switch {
		case a.Is4():
			w.Dropped = appendCompact(w.Dropped, a, ap.Port())
		case a.Is6():
			w.Dropped6 = appendCompact(w.Dropped6, a, ap.Port())
		}
	}
	// Marshal cannot fail on a struct of byte strings.
	b, _ := metainfo.Marshal(&w)
	return append(dst, b...)
}

func appendCompact(dst []byte, a netip.Addr, port uint16) []byte {
	dst = append(dst, a.AsSlice()...)
	return binary.BigEndian.AppendUint16(dst, port)
}

// ParsePex decodes a ut_pex payload. The payload must be one bencoded
// dictionary of at most MaxPexMessageLen bytes, and each compact string's
// length a multiple of its entry size (6 or 18). Flags strings of the wrong
// length are ignored (peers get flags 0), as are entries with port 0, an
// unspecified address or an IPv4-mapped address in an IPv6 list, and
// entries past MaxPexPeers. Errors wrap ErrPex.
func ParsePex(payload []byte) (PexMsg, error) {
	var m PexMsg
	if len(payload) > MaxPexMessageLen {
		return m, fmt.Errorf("%w: %d bytes, over the cap of %d", ErrPex, len(payload), MaxPexMessageLen)
	}
	v, err := metainfo.Decode(payload)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrPex, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return m, fmt.Errorf("%w: not a dictionary", ErrPex)
	}
	str := func(key string) (string, error) {
		x, present := d[key]
		if !present {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("%w: %q is not a string", ErrPex, key)
		}
		return s, nil
	}
	for _, fam := range []struct {
		added, flags, dropped string
		size                  int
	}{{"added", "added.f", "dropped", 6}, {"added6", "added6.f", "dropped6", 18}} {
		added, err := str(fam.added)
		if err != nil {
			return m, err
		}
		flags, err := str(fam.flags)
		if err != nil {
			return m, err
		}
		dropped, err := str(fam.dropped)
		if err != nil {
			return m, err
		}
		if len(added)%fam.size != 0 {
			return m, fmt.Errorf("%w: %q of %d bytes is not a multiple of %d", ErrPex, fam.added, len(added), fam.size)
		}
		if len(dropped)%fam.size != 0 {
			return m, fmt.Errorf("%w: %q of %d bytes is not a multiple of %d", ErrPex, fam.dropped, len(dropped), fam.size)
		}
		if len(flags) != len(added)/fam.size {
			flags = ""
		}
		for i := 0; i*fam.size < len(added) && len(m.Added) < MaxPexPeers; i++ {
			ap, ok := compactAddr(added[i*fam.size : (i+1)*fam.size])
			if !ok {
				continue
			}
			p := PexPeer{Addr: ap}
			if flags != "" {
				p.Flags = PexFlags(flags[i])
			}
			m.Added = append(m.Added, p)
		}
		for i := 0; i*fam.size < len(dropped) && len(m.Dropped) < MaxPexPeers; i++ {
			if ap, ok := compactAddr(dropped[i*fam.size : (i+1)*fam.size]); ok {
				m.Dropped = append(m.Dropped, ap)
			}
		}
	}
	return m, nil
}

// compactAddr decodes a 6- or 18-byte compact address; ok is false for an
// unspecified address, an IPv4-mapped address in an IPv6 entry, or port 0.
func compactAddr(s string) (netip.AddrPort, bool) {
	n := len(s) - 2
	a, _ := netip.AddrFromSlice([]byte(s[:n]))
	port := binary.BigEndian.Uint16([]byte(s[n:]))
	if port == 0 || a.IsUnspecified() || a.Is4In6() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}
