package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// newClientOn starts a Client whose sockets live in the network namespace
// of host h (see NetHost.Do). Outgoing TCP dials run on other goroutines,
// outside it, so a client that dials must be restricted to uTP, whose
// socket is h's (a TCP dial from the test's namespace would not stay in
// the simulation).
func newClientOn(t *testing.T, h *enginetest.NetHost, cfg Config) *Client {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = h.Addr().String() + ":0"
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	var c *Client
	if err := h.Do(func() (err error) {
		c, err = New(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLSDFindsLANSeeder: a libtorrent seeder on the same LAN, with no
// tracker and no DHT, announcing itself by LSD and never dialing out, is
// found by our LSD and downloaded from.
func TestLSDFindsLANSeeder(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	sim := enginetest.NewNetSim(t)
	lan := sim.Router("lan", enginetest.ConeNAT)
	alice, bob := lan.Host("alice"), lan.Host("bob")
	f := makeFixture(t, "lsdseed", 16<<10, nil, 300000)
	c := newClientOn(t, alice, Config{NoDHT: true, NoPortMapping: true, Transports: []Transport{TransportUTP}})
	if c.lsd == nil {
		t.Fatal("LSD did not start on a LAN host")
	}
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	seeder := bob.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: f.dir, Settings: map[string]any{
		"enable_lsd": true, "enable_incoming_utp": true,
		"enable_outgoing_utp": false, "enable_outgoing_tcp": false, // found by us, never the dialer
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download from a seeder found by LSD", tor)
	checkFiles(t, ctx, tor, f)
	want := netip.MustParseAddrPort(seeder.Addr)
	var src PeerSource
	if err := tor.do(func() { src = tor.ls.book.Source(want) }); err != nil {
		t.Fatal(err)
	}
	if src != SourceLSD {
		t.Fatalf("the seeder %v came from %v, want lsd", want, src)
	}
}
