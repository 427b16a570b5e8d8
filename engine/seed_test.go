package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// seedFixture adds f to c with its data imported and waits until it is
// complete.
func seedFixture(t *testing.T, c *Client, f *fixture) *Torrent {
	t.Helper()
	tor, err := c.AddTorrent(f.mi, AddOptions{Import: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "import", tor)
	return tor
}

// TestSeedToLibtorrent seeds imported data to a libtorrent leecher.
func TestSeedToLibtorrent(t *testing.T) {
	f := makeFixture(t, "seedme", 32<<10, nil, 2<<20, 777777)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor := seedFixture(t, c, f)
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.2.20", Torrent: f.torrent, SavePath: dst,
		Peers: []string{c.Addr().String()}, ExitWhenDone: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("%v; our stats %+v", err, tor.Stats())
	}
	checkDir(t, dst, f)
	if st := tor.Stats(); st.Uploaded < f.mi.Info.TotalLength {
		t.Fatalf("uploaded %d bytes, want at least %d", st.Uploaded, f.mi.Info.TotalLength)
	}
}

// TestTwoClients has one of our clients seed to another.
func TestTwoClients(t *testing.T) {
	f := makeFixture(t, "ours", 16<<10, nil, 1<<20, 300000)
	seed := newTestClient(t, "127.0.2.2", Config{})
	seedFixture(t, seed, f)
	leech := newTestClient(t, "127.0.2.3", Config{})
	tor, err := leech.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{seed.Addr()}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}

// TestTrackers finds a libtorrent seeder through opentracker, over HTTP and
// over UDP.
func TestTrackers(t *testing.T) {
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			ip := "127.0.2.30"
			if proto == "udp" {
				ip = "127.0.2.31"
			}
			f := makeFixture(t, "tracked-"+proto, 32<<10, nil, 1<<20)
			tr := enginetest.StartOpentracker(t, ip, f.mi.InfoHash.String())
			url := tr.HTTP
			if proto == "udp" {
				url = tr.UDP
			}
			f.setTrackers(t, url)
			startSeeder(t, "127.0.2.32", f)
			c := newTestClient(t, "127.0.2.1", Config{})
			tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			waitClosed(t, ctx, tor.Complete(), "download via tracker", tor)
			checkFiles(t, ctx, tor, f)
		})
	}
}

// TestSeedToAria2 seeds to an aria2c leecher that finds us through
// opentracker.
func TestSeedToAria2(t *testing.T) {
	enginetest.RequireTool(t, "aria2c", "aria2")
	f := makeFixture(t, "aria", 32<<10, nil, 1<<20, 123456)
	tr := enginetest.StartOpentracker(t, "127.0.2.40", f.mi.InfoHash.String())
	f.setTrackers(t, tr.HTTP)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor := seedFixture(t, c, f)
	dst := t.TempDir()
	aria := enginetest.StartAria2(t, enginetest.Aria2Options{IP: "127.0.2.41", Torrent: f.torrent, Dir: dst})
	select {
	case <-aria.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("aria2c did not finish; our stats %+v\n%s", tor.Stats(), aria.Output())
	}
	checkDir(t, dst, f)
	if st := tor.Stats(); st.Uploaded < f.mi.Info.TotalLength {
		t.Fatalf("uploaded %d bytes, want at least %d", st.Uploaded, f.mi.Info.TotalLength)
	}
}

// TestMixedSwarm: seeders of three different clients (libtorrent, aria2 and
// ours) found through a tracker; our client and a libtorrent leecher
// download; everyone finishes with the right data.
func TestMixedSwarm(t *testing.T) {
	enginetest.RequireTool(t, "aria2c", "aria2")
	size := int64(256 << 20)
	if testing.Short() {
		size = 32 << 20
	}
	f := makeFixture(t, "mixed.bin", 0, nil, size)
	tr := enginetest.StartOpentracker(t, "127.0.2.100", f.mi.InfoHash.String())
	f.setTrackers(t, tr.HTTP)
	startSeeder(t, "127.0.2.101", f)
	aria := enginetest.StartAria2(t, enginetest.Aria2Options{IP: "127.0.2.102", Torrent: f.torrent, Dir: f.dir, SeedTime: 10 * time.Minute})
	ourSeed := newTestClient(t, "127.0.2.103", Config{})
	seedFixture(t, ourSeed, f)

	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.2.104", Torrent: f.torrent, SavePath: dst, Peers: []string{}, ExitWhenDone: true})
	// Each phase has its own deadline: on a loaded machine with -race the
	// download and the leecher took most of one shared minute, leaving the
	// read-back of 256 MiB too little.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "our download", tor)
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent leecher: %v", err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer rcancel()
	checkFiles(t, rctx, tor, f)
	checkDir(t, dst, f)
	select {
	case <-aria.Exited():
		t.Fatalf("aria2 seeder exited early:\n%s", aria.Output())
	default:
	}
}
