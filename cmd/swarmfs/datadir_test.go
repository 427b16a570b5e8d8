package main

import (
	"crypto/sha1"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestMountDataDir mounts with --data-dir: what is read through the mount
// lands as ordinary files under DIR/NAME, nothing of it in the cache, and
// after an unmount a mount with no peer at all serves it again from DIR.
func TestMountDataDir(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "kept", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 3<<20 + 777},
		{Path: "sub/b.bin", Size: 100000},
	})
	seeder := enginetest.StartSeeder(t, "127.0.7.50", c.Torrent, c.Dir)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	cacheDir, dataDir := t.TempDir(), t.TempDir()
	detachOnCleanup(t, mp)

	if code, _, errOut := runCmd(t, "mount", "--data-dir", filepath.Join(dataDir, "nope"), c.Torrent, mp); code == 0 || !strings.Contains(errOut, "--data-dir") {
		t.Fatalf("a missing --data-dir: exit %d, %q", code, errOut)
	}

	p := startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--data-dir", dataDir, "--no-dht", "--prefetch",
		"--read-timeout", "30s", "--peer", seeder.Addr, c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(mp, "kept", rel)) != fileSHA1(t, src) {
			t.Fatalf("%s differs through the mount", rel)
		}
	}
	// Prefetch completes the torrent; its files are then whole in DIR.
	deadline := time.Now().Add(60 * time.Second)
	for rel, src := range c.Files {
		for fileSHA1Maybe(filepath.Join(dataDir, "kept", rel)) != fileSHA1(t, src) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never became whole in the data directory", rel)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var cached int64
	filepath.Walk(cacheDir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			cached += fi.Size()
		}
		return nil
	})
	if cached > 64<<10 {
		t.Fatalf("the cache holds %d bytes: a copy of the data", cached)
	}
	if code, _, errOut := runCmd(t, "unmount", mp); code != 0 {
		t.Fatalf("swarmfs unmount: exit %d: %s", code, errOut)
	}
	waitExit(t, p, 20*time.Second)

	// No peer now: everything comes from DIR.
	seeder.Kill()
	p = startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--data-dir", dataDir, "--no-dht", "--read-timeout", "5s", c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(mp, "kept", rel)) != fileSHA1(t, src) {
			t.Fatalf("%s differs through the remount", rel)
		}
	}
	if code, _, errOut := runCmd(t, "unmount", mp); code != 0 {
		t.Fatalf("swarmfs unmount: exit %d: %s", code, errOut)
	}
	waitExit(t, p, 20*time.Second)
}

// fileSHA1Maybe is fileSHA1 for a file that may not exist yet or be short
// (zero then).
func fileSHA1Maybe(path string) [20]byte {
	var s [20]byte
	b, err := os.ReadFile(path)
	if err == nil {
		s = sha1.Sum(b)
	}
	return s
}
