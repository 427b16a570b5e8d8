package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

func TestSeedPolicyReached(t *testing.T) {
	for _, tc := range []struct {
		p          seedPolicy
		up, have   int64
		seeded     time.Duration
		want       bool
		wantReason string
	}{
		{seedPolicy{}, 1 << 30, 1, time.Hour, false, ""},
		{seedPolicy{Ratio: 1}, 99, 100, time.Hour, false, ""},
		{seedPolicy{Ratio: 1}, 100, 100, 0, true, "ratio 1.00 reached"},
		{seedPolicy{Ratio: 0.5, Time: time.Hour}, 60, 100, 0, true, "ratio 0.60"},
		{seedPolicy{Ratio: 2, Time: time.Minute}, 60, 100, time.Minute, true, "seeded for 1m0s"},
		{seedPolicy{Time: time.Minute}, 0, 100, 59 * time.Second, false, ""},
		{seedPolicy{Time: time.Minute}, 0, 0, 0, true, "nothing cached"},
	} {
		got, why := tc.p.reached(tc.up, tc.have, tc.seeded)
		if got != tc.want || !strings.Contains(why, tc.wantReason) {
			t.Errorf("%+v.reached(%d, %d, %v) = %v, %q", tc.p, tc.up, tc.have, tc.seeded, got, why)
		}
	}
}

// TestGetSeedRatio runs `swarmfs get --seed-ratio 1`: it downloads from a
// libtorrent seeder, which then goes away; a libtorrent leecher that knows
// only us downloads everything, and once those bytes make the ratio
// swarmfs says so and exits.
func TestGetSeedRatio(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "shared", 32<<10, []enginetest.FileSpec{{Path: "s.bin", Size: 1 << 20}})
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.47.2", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	seeder.WaitSeeding(t, time.Minute)
	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "get", "--no-dht", "--cache-dir", t.TempDir(), "-o", t.TempDir(), "--port", fmt.Sprint(port),
		"--peer", seeder.Addr, "--seed-ratio", "1", c.Torrent)
	p.WaitLine(t, "seeding on", 60*time.Second)
	seeder.Kill()
	<-seeder.Exited()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.47.3", Torrent: c.Torrent, SavePath: t.TempDir(), Peers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, ExitWhenDone: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("leecher: %v\nswarmfs:\n%s", err, p.Output())
	}
	line := p.WaitLine(t, "shared: stopped seeding", 30*time.Second)
	if !strings.Contains(line, "ratio 1.") {
		t.Errorf("stop line %q", line)
	}
	select {
	case <-p.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("swarmfs did not exit after the ratio:\n%s", p.Output())
	}
}

// TestGetSeedTime runs `swarmfs get --seed-time 2s`: it seeds for two
// seconds after the download, says so and exits.
func TestGetSeedTime(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "timed", 32<<10, []enginetest.FileSpec{{Path: "t.bin", Size: 200_000}})
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.47.4", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	seeder.WaitSeeding(t, time.Minute)
	p := startSwarmfs(t, "get", "--no-dht", "--cache-dir", t.TempDir(), "-o", t.TempDir(), "--peer", seeder.Addr, "--seed-time", "2s", c.Torrent)
	p.WaitLine(t, "seeding on", 60*time.Second)
	start := time.Now()
	line := p.WaitLine(t, "timed: stopped seeding", 30*time.Second)
	if !strings.Contains(line, "seeded for 2s") || time.Since(start) < time.Second {
		t.Errorf("stop line %q after %v", line, time.Since(start))
	}
	select {
	case <-p.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("swarmfs did not exit after the seed time:\n%s", p.Output())
	}
}

// TestRemovedTorrentKeepsSeeding removes a torrent from a library with a
// seed time: it leaves the listing at once, stays in the engine (seeding)
// until the time is up, and adding it again meanwhile works.
func TestRemovedTorrentKeepsSeeding(t *testing.T) {
	cacheDir := t.TempDir()
	c, err := engine.New(engine.Config{ListenAddr: "127.0.47.5:0", CacheDir: cacheDir, NoDHT: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	content := enginetest.MakeContent(t, "kept", 16<<10, []enginetest.FileSpec{{Path: "k.bin", Size: 100_000}})
	lib := newEngineLibrary(c, cacheDir, engine.AddOptions{Import: content.Dir}, nil)
	lib.seeding = newRemovedSeeding(seedPolicy{Time: 2 * time.Second}, lib.log)
	defer lib.seeding.Close()
	b, err := os.ReadFile(content.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	src, err := library.ParseSource(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	add := func() {
		t.Helper()
		tor, err := lib.Add(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		et, _ := c.Torrent(tor.InfoHash)
		select {
		case <-et.Complete():
		case <-time.After(20 * time.Second):
			t.Fatal("import did not complete")
		}
	}
	add()
	h := content.Meta.InfoHash
	if err := lib.Remove(ctx, h, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := lib.Torrent(h); ok {
		t.Fatal("a removed torrent is still listed")
	}
	if _, ok := c.Torrent(h); !ok {
		t.Fatal("the removed torrent stopped seeding at once")
	}
	// Added again while it seeds: it is the library's again.
	add()
	if err := lib.Remove(ctx, h, false); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	for {
		if _, ok := c.Torrent(h); !ok {
			break
		}
		if time.Since(removed) > 20*time.Second {
			t.Fatal("the removed torrent kept seeding past its seed time")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(removed); d < time.Second {
		t.Errorf("the removed torrent left after %v, before its seed time", d)
	}
}
