package engine

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestDownloadInPlace downloads a multi-file torrent from a libtorrent
// seeder with AddOptions.DataDir: the files appear under DIR/NAME as other
// clients lay them out, the cache holds no copy of the data, and a second
// client on the same cache and directory finds everything without
// downloading a byte.
func TestDownloadInPlace(t *testing.T) {
	f := makeFixture(t, "inplace", 32<<10, nil, 1<<20, 345678, 0, 70000)
	seeder := startSeeder(t, "127.0.2.40", f)
	cacheDir, dataDir := t.TempDir(), t.TempDir()
	c := newTestClient(t, "127.0.2.41", Config{CacheDir: cacheDir})
	tor, err := c.AddTorrent(f.mi, AddOptions{
		Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true, DataDir: dataDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	for rel, want := range f.files {
		got, err := os.ReadFile(filepath.Join(dataDir, f.name, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: wrong bytes in the data directory", rel)
		}
	}
	// No second copy: nothing in the cache directory is as large as a file.
	var cached int64
	filepath.Walk(cacheDir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			cached += fi.Size()
		}
		return nil
	})
	if cached > 64<<10 {
		t.Fatalf("the cache directory holds %d bytes: a copy of the data", cached)
	}
	c.Close()

	// Resume: the state in the cache trusts the files at once.
	c2 := newTestClient(t, "127.0.2.42", Config{CacheDir: cacheDir})
	tor2, err := c2.AddTorrent(f.mi, AddOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, tor2.Complete(), "resume", tor2)
	if st := tor2.Stats(); st.Downloaded != 0 {
		t.Fatalf("resumed download fetched %d bytes", st.Downloaded)
	}
}

// TestSeedInPlace seeds a libtorrent leecher from data that lies outside
// any cache, named by AddOptions.Content: verified where it is, never
// copied.
func TestSeedInPlace(t *testing.T) {
	f := makeFixture(t, "seedhere", 32<<10, nil, 600000, 0, 123456)
	cacheDir := t.TempDir()
	c := newTestClient(t, "127.0.2.43", Config{CacheDir: cacheDir})
	tor, err := c.AddTorrent(f.mi, AddOptions{Content: filepath.Join(f.dir, f.name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "verification in place", tor)
	out := t.TempDir()
	leecher := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.2.44", Torrent: f.torrent, SavePath: out, Peers: []string{c.Addr().String()},
	})
	if _, _, err := leecher.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent leecher: %v", err)
	}
	for rel, want := range f.files {
		got, err := os.ReadFile(filepath.Join(out, f.name, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: the leecher's copy differs (%v)", rel, err)
		}
	}
	var cached int64
	filepath.Walk(cacheDir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			cached += fi.Size()
		}
		return nil
	})
	if cached > 64<<10 {
		t.Fatalf("the cache directory holds %d bytes: a copy of the data", cached)
	}
}
