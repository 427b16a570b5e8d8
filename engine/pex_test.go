package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestPexFromLibtorrent learns a third peer's address from a libtorrent
// peer through ut_pex. The libtorrent peers have no data (libtorrent
// disconnects two seeds from each other), so they stay connected.
func TestPexFromLibtorrent(t *testing.T) {
	f := makeFixture(t, "pexed", 16<<10, nil, 200000)
	a := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.2.70", Torrent: f.torrent, SavePath: t.TempDir(), Peers: []string{}})
	b := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.2.71", Torrent: f.torrent, SavePath: t.TempDir(), Peers: []string{a.Addr}})
	waitState(t, a, "downloading")
	waitState(t, b, "downloading")
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, a.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	want := addrPort(t, b.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var known bool
		if err := tor.do(func() { known = tor.ls.book.Has(want) }); err != nil {
			t.Fatal(err)
		}
		if known {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never learned %s through PEX; stats %+v", want, tor.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitState waits until a libtorrent session reports the given state.
func waitState(t *testing.T, lt *enginetest.LT, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for lt.WaitLine(t, "state ", time.Until(deadline)) != state {
	}
}

// TestPexBetweenOurClients: B knows only A; A is connected to C too and
// tells B about C through ut_pex.
func TestPexBetweenOurClients(t *testing.T) {
	f := makeFixture(t, "pex-ours", 16<<10, nil, 100000)
	a := newTestClient(t, "127.0.2.72", Config{})
	b := newTestClient(t, "127.0.2.73", Config{})
	cc := newTestClient(t, "127.0.2.74", Config{})
	if _, err := a.AddTorrent(f.mi, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{a.Addr()}}); err != nil {
		t.Fatal(err)
	}
	tb, err := b.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{a.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var known bool
		if err := tb.do(func() { known = tb.ls.book.Has(cc.Addr()) }); err != nil {
			t.Fatal(err)
		}
		if known {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("B never learned C (%s) through PEX from A", cc.Addr())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
