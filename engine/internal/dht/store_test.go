package dht

import (
	"net/netip"
	"testing"
	"time"
)

func TestPeerStoreCapsAndExpiry(t *testing.T) {
	t0 := time.Now()
	s := newPeerStore(3, 4, time.Minute)
	ih := hashOf(1)
	for i := range 10 {
		s.add(ih, addrN(i), t0.Add(time.Duration(i)*time.Second))
	}
	got := s.get(ih, 100, t0.Add(10*time.Second), famBoth)
	if len(got) != 4 || s.peers != 4 {
		t.Fatalf("kept %d peers (counter %d), cap 4", len(got), s.peers)
	}
	for _, p := range got {
		if p == addrN(0) || p == addrN(5) {
			t.Fatalf("oldest peers not evicted: %v", got)
		}
	}
	if n := len(s.get(ih, 2, t0.Add(10*time.Second), famBoth)); n != 2 {
		t.Fatalf("get with limit 2 returned %d", n)
	}
	// Re-announcing refreshes a peer without growing the set.
	s.add(ih, addrN(9), t0.Add(11*time.Second))
	if s.peers != 4 {
		t.Fatalf("re-announce grew the store to %d", s.peers)
	}
	// Info hash cap: the least recently announced hash goes.
	s.add(hashOf(2), addrN(1), t0.Add(20*time.Second))
	s.add(hashOf(3), addrN(1), t0.Add(21*time.Second))
	s.add(hashOf(4), addrN(1), t0.Add(22*time.Second))
	if len(s.swarms) != 3 || s.swarms[ih] != nil {
		t.Fatalf("hash cap not applied: %d swarms, first present %v", len(s.swarms), s.swarms[ih] != nil)
	}
	if s.peers != 3 {
		t.Fatalf("peer counter %d after evicting a hash, want 3", s.peers)
	}
	// Expiry.
	if got := s.get(hashOf(2), 10, t0.Add(2*time.Minute), famBoth); len(got) != 0 {
		t.Fatalf("expired peers returned: %v", got)
	}
	s.expire(t0.Add(2 * time.Minute))
	if len(s.swarms) != 0 || s.peers != 0 {
		t.Fatalf("after expiry %d swarms %d peers", len(s.swarms), s.peers)
	}
}

func TestTokens(t *testing.T) {
	tk := newTokens()
	a, b := netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("1.2.3.5")
	tok := tk.make(a)
	if len(tok) != tokenLen || !tk.valid(tok, a) {
		t.Fatal("fresh token invalid")
	}
	if tk.valid(tok, b) {
		t.Fatal("token valid for another IP")
	}
	if tk.valid("", a) || tk.valid(tok[:4], a) || tk.valid(tok+"x", a) {
		t.Fatal("mangled token accepted")
	}
	tk.rotate()
	if !tk.valid(tok, a) {
		t.Fatal("token from the previous secret rejected")
	}
	tk.rotate()
	if tk.valid(tok, a) {
		t.Fatal("token two rotations old accepted")
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Now()
	l := newLimiter(10, 50)
	a := netip.MustParseAddr("1.2.3.4")
	ok := 0
	for range 100 {
		if l.allow(a, t0) {
			ok++
		}
	}
	if ok != 20 {
		t.Fatalf("burst allowed %d packets, want 20 (2 s at 10/s)", ok)
	}
	if !l.allow(a, t0.Add(200*time.Millisecond)) {
		t.Fatal("bucket did not refill")
	}
	// The global bucket caps all sources together.
	ok = 0
	for i := range 200 {
		if l.allow(netip.AddrFrom4([4]byte{9, 9, byte(i >> 8), byte(i)}), t0.Add(time.Second)) {
			ok++
		}
	}
	if ok > 100 || ok < 90 {
		t.Fatalf("global limit let %d of 200 through, want about 100", ok)
	}
	// Tracked sources are bounded.
	for i := range maxLimited + 100 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(time.Hour))
	}
	if len(l.perIP) > maxLimited {
		t.Fatalf("limiter tracks %d sources", len(l.perIP))
	}
}
