package wire

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
)

func bep6Hash() [20]byte {
	var h [20]byte
	copy(h[:], bytes.Repeat([]byte{0xaa}, 20))
	return h
}

// The example values of BEP 6: 80.4.4.200, info hash of twenty 0xAA bytes,
// 1313 pieces.
func TestAllowedFastSetBEP6(t *testing.T) {
	ip := netip.MustParseAddr("80.4.4.200")
	if got, want := AllowedFastSet(ip, bep6Hash(), 1313, 7), []uint32{1059, 431, 808, 1217, 287, 376, 1188}; !slices.Equal(got, want) {
		t.Errorf("k=7: %v, want %v", got, want)
	}
	if got, want := AllowedFastSet(ip, bep6Hash(), 1313, 9), []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}; !slices.Equal(got, want) {
		t.Errorf("k=9: %v, want %v", got, want)
	}
	// Same /24, same set; an IPv4-mapped address counts as IPv4.
	for _, s := range []string{"80.4.4.1", "::ffff:80.4.4.7"} {
		if got := AllowedFastSet(netip.MustParseAddr(s), bep6Hash(), 1313, 7); got[0] != 1059 || len(got) != 7 {
			t.Errorf("%s: %v", s, got)
		}
	}
	if got := AllowedFastSet(netip.MustParseAddr("80.4.5.200"), bep6Hash(), 1313, 7); got[0] == 1059 && got[1] == 431 {
		t.Errorf("another /24 gave the same set %v", got)
	}
}

func TestAllowedFastSetEdges(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	// Fewer pieces than k: every piece, each once.
	got := AllowedFastSet(ip, bep6Hash(), 3, 10)
	slices.Sort(got)
	if !slices.Equal(got, []uint32{0, 1, 2}) {
		t.Errorf("3 pieces: %v", got)
	}
	if AllowedFastSet(ip, bep6Hash(), 0, 10) != nil || AllowedFastSet(ip, bep6Hash(), 10, 0) != nil {
		t.Error("empty cases returned pieces")
	}
	v6 := AllowedFastSet(netip.MustParseAddr("2001:db8:1::5"), bep6Hash(), 1000, DefaultAllowedFast)
	v6same := AllowedFastSet(netip.MustParseAddr("2001:db8:1:ffff::9"), bep6Hash(), 1000, DefaultAllowedFast)
	if len(v6) != DefaultAllowedFast || !slices.Equal(v6, v6same) {
		t.Errorf("IPv6 /48: %v vs %v", v6, v6same)
	}
	for _, p := range v6 {
		if p >= 1000 {
			t.Errorf("piece %d out of range", p)
		}
	}
}
