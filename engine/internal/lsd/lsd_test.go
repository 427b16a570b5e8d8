package lsd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// newOn starts an LSD inside h's namespace on eth0.
func newOn(t *testing.T, h *enginetest.NetHost, cfg Config) *LSD {
	t.Helper()
	if cfg.Interfaces == nil {
		cfg.Interfaces = []string{"eth0"}
	}
	var l *LSD
	if err := h.Do(func() (err error) {
		l, err = New(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitPeer waits for a peer for ih from want, failing on a peer that
// matches bad.
func waitPeer(t *testing.T, l *LSD, ih [20]byte, want netip.AddrPort, bad func(Peer) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-l.Peers():
			if bad != nil && bad(p) {
				t.Fatalf("unexpected peer %x %v", p.InfoHash, p.Addr)
			}
			if p.InfoHash == ih && p.Addr == want {
				return
			}
		case <-deadline:
			t.Fatalf("no LSD peer %v for %x within 30 s", want, ih)
		}
	}
}

// TestLSDOnLAN runs two instances on two hosts of one LAN and two on one
// host: each finds the others for shared public torrents over IPv4 and
// IPv6, none reports itself, and a private torrent is neither announced
// nor accepted.
func TestLSDOnLAN(t *testing.T) {
	sim := enginetest.NewNetSim(t)
	r := sim.Router("home", enginetest.ConeNAT)
	alice, bob := r.Host("alice"), r.Host("bob")
	pub, priv := hash(0xaa), hash(0xbb)
	cfg := Config{Gap: 200 * time.Millisecond, Interval: time.Second}

	cfg.Port = 6881
	la := newOn(t, alice, cfg)
	cfg.Port = 6882
	lb := newOn(t, bob, cfg)
	cfg.Port = 6883
	lb2 := newOn(t, bob, cfg) // a second client on bob's host

	// alice has pub and (as public, to catch a leak) priv; bob marks priv
	// private, so he must not announce it.
	if err := la.SetTorrents([]Torrent{{InfoHash: pub}, {InfoHash: priv}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*LSD{lb, lb2} {
		if err := l.SetTorrents([]Torrent{{InfoHash: pub}, {InfoHash: priv, Private: true}}); err != nil {
			t.Fatal(err)
		}
	}
	self := func(addr netip.Addr, port uint16) func(Peer) bool {
		return func(p Peer) bool { return p.Addr == netip.AddrPortFrom(addr, port) }
	}
	waitPeer(t, la, pub, netip.AddrPortFrom(bob.Addr(), 6882), func(p Peer) bool {
		return p.InfoHash == priv || self(alice.Addr(), 6881)(p)
	})
	waitPeer(t, la, pub, netip.AddrPortFrom(bob.Addr(), 6883), func(p Peer) bool {
		return p.InfoHash == priv || self(alice.Addr(), 6881)(p)
	})
	waitPeer(t, lb, pub, netip.AddrPortFrom(alice.Addr(), 6881), self(bob.Addr(), 6882))
	// The IPv6 group too.
	waitPeer(t, lb, pub, netip.AddrPortFrom(alice.Addr6(), 6881), self(bob.Addr6(), 6882))
	waitPeer(t, la, pub, netip.AddrPortFrom(bob.Addr6(), 6882), func(p Peer) bool {
		return p.InfoHash == priv || self(alice.Addr6(), 6881)(p)
	})
	waitPeer(t, lb, pub, netip.AddrPortFrom(bob.Addr(), 6883), self(bob.Addr(), 6882))
	waitPeer(t, lb2, pub, netip.AddrPortFrom(bob.Addr(), 6882), self(bob.Addr(), 6883))

	if err := la.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-la.Peers(); ok {
		// Buffered peers may remain; drain to the close.
		for range la.Peers() {
		}
	}
	if err := la.SetTorrents(nil); err != ErrClosed {
		t.Fatalf("SetTorrents after Close: %v", err)
	}
}
