package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestPexRoundTrip(t *testing.T) {
	m := PexMsg{
		Added: []PexPeer{
			{netip.MustParseAddrPort("127.0.3.1:6881"), PexSeed | PexReachable},
			{netip.MustParseAddrPort("[2001:db8::2]:51413"), PexUTP},
			{netip.MustParseAddrPort("10.1.2.3:1"), 0},
		},
		Dropped: []netip.AddrPort{
			netip.MustParseAddrPort("192.0.2.9:443"),
			netip.MustParseAddrPort("[2001:db8::3]:80"),
		},
	}
	b := AppendPex(nil, m)
	got, err := ParsePex(b)
	if err != nil {
		t.Fatal(err)
	}
	// IPv4 entries come back before IPv6 ones.
	want := PexMsg{
		Added:   []PexPeer{m.Added[0], m.Added[2], m.Added[1]},
		Dropped: m.Dropped,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Exact encoding of a one-peer message.
	one := AppendPex(nil, PexMsg{Added: []PexPeer{{netip.MustParseAddrPort("1.2.3.4:258"), PexSeed}}})
	if string(one) != "d5:added6:\x01\x02\x03\x04\x01\x027:added.f1:\x027:dropped0:e" {
		t.Errorf("encoding %q", one)
	}
	// IPv4-mapped addresses go out as IPv4.
	mapped := AppendPex(nil, PexMsg{Added: []PexPeer{{netip.MustParseAddrPort("[::ffff:1.2.3.4]:258"), PexSeed}}})
	if string(mapped) != string(one) {
		t.Errorf("mapped encoding %q", mapped)
	}
}

func TestParsePexLenient(t *testing.T) {
	// Flags of the wrong length are dropped; port 0 and 0.0.0.0 skipped.
	in := "d5:added18:\x01\x02\x03\x04\x00\x01\x05\x06\x07\x08\x00\x00\x00\x00\x00\x00\x00\x097:added.f1:\x02e"
	m, err := ParsePex([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Added) != 1 || m.Added[0].Addr != netip.MustParseAddrPort("1.2.3.4:1") || m.Added[0].Flags != 0 {
		t.Errorf("got %+v", m)
	}
}

func TestParsePexCaps(t *testing.T) {
	var added strings.Builder
	for i := range MaxPexPeers + 50 {
		added.Write([]byte{10, 0, byte(i >> 8), byte(i), 0x1a, 0xe1})
	}
	in := fmt.Sprintf("d5:added%d:%se", added.Len(), added.String())
	m, err := ParsePex([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Added) != MaxPexPeers {
		t.Errorf("%d peers, want the cap %d", len(m.Added), MaxPexPeers)
	}
}

func TestParsePexErrors(t *testing.T) {
	cases := map[string]string{
		"not a dict":       "le",
		"truncated":        "d5:added6:abc",
		"added not string": "d5:addedi1ee",
		"added length":     "d5:added5:abcdee",
		"dropped length":   "d7:dropped7:abcdefge",
		"added6 length":    "d6:added66:abcdefe",
		"flags not string": "d5:added0:7:added.fi1ee",
		"too large":        "d5:added" + fmt.Sprint(MaxPexMessageLen) + ":" + strings.Repeat("x", MaxPexMessageLen) + "e",
	}
	for name, in := range cases {
		if _, err := ParsePex([]byte(in)); !errors.Is(err, ErrPex) {
			t.Errorf("%s: %v, want ErrPex", name, err)
		}
	}
}
