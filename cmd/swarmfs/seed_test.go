package main

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestSeedCommand runs `swarmfs seed` on existing data and has a libtorrent
// leecher download everything from it; then it seeds a copy with one
// corrupted byte and reports exactly one piece missing.
func TestSeedCommand(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "album", 32<<10, []enginetest.FileSpec{
		{Path: "a.flac", Size: 700_000}, {Path: "cover.jpg", Size: 90_000},
	})
	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", t.TempDir(), "--port", fmt.Sprint(port), c.Torrent, c.Dir)
	p.WaitLine(t, "seeding album", 60*time.Second)

	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.7.60", Torrent: c.Torrent, SavePath: dst, Peers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, ExitWhenDone: true,
	})
	if _, _, err := lt.WaitDone(t.Context()); err != nil {
		t.Fatalf("libtorrent leecher: %v\nswarmfs:\n%s", err, p.Output())
	}
	for rel, src := range c.Files {
		want, _ := os.ReadFile(src)
		got, err := os.ReadFile(filepath.Join(dst, "album", rel))
		if err != nil || sha1.Sum(got) != sha1.Sum(want) {
			t.Errorf("%s: leecher's copy differs (%v)", rel, err)
		}
	}

	// A damaged copy: one piece fails verification and is not seeded.
	bad := t.TempDir()
	for rel, src := range c.Files {
		data, _ := os.ReadFile(src)
		if rel == "a.flac" {
			data[100_000] ^= 0xff
		}
		if err := os.MkdirAll(filepath.Join(bad, "album"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, "album", rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p2 := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", t.TempDir(), c.Torrent, bad)
	n := c.Meta.Info.NumPieces()
	line := p2.WaitLine(t, "album: ", 60*time.Second)
	for !strings.Contains(line, "pieces verified") {
		line = p2.WaitLine(t, "album: ", 60*time.Second)
	}
	if want := fmt.Sprintf("%d of %d pieces verified", n-1, n); !strings.Contains(line, want) {
		t.Errorf("damaged copy: %q, want %q", line, want)
	}
}
