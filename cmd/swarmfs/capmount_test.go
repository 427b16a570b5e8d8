package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// mountCapped mounts c with a cache cap and extra flags; it returns the
// mount process and the mountpoint.
func mountCapped(t *testing.T, c *enginetest.Content, cacheDir, capSize, peer string, extra ...string) (*enginetest.Proc, string) {
	t.Helper()
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	args := append([]string{"mount", "--cache-dir", cacheDir, "--cache-size", capSize, "--no-dht", "--read-timeout", "60s"}, extra...)
	if peer != "" {
		args = append(args, "--peer", peer)
	}
	p := startSwarmfs(t, append(args, c.Torrent, mp)...)
	p.WaitLine(t, "mounted ", 30*time.Second)
	return p, mp
}

// TestMountPrefetchRespectsCap: with --prefetch and a cache cap of 8 MiB
// over a 64 MiB torrent that nothing reads, prefetch fills the cap and
// stops, instead of fetching and evicting the torrent again and again.
func TestMountPrefetchRespectsCap(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "pre", 256<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 64 << 20}})
	seeder := enginetest.StartSeeder(t, "127.0.7.86", c.Torrent, c.Dir)
	const capBytes = 8 << 20
	mountCapped(t, c, t.TempDir(), "8MiB", seeder.Addr, "--prefetch")
	// Loopback moves 8 MiB in well under a second: give prefetch time to
	// overrun the cap several times if it would.
	time.Sleep(6 * time.Second)
	first := seeder.Uploaded(t)
	time.Sleep(4 * time.Second)
	up := uploadedAfter(t, seeder)
	t.Logf("seeder uploaded %.2f MiB after 6 s, %.2f MiB after 11 s (cap 8 MiB)", float64(first)/(1<<20), float64(up)/(1<<20))
	if limit := int64(capBytes*12/10 + 2<<20); up > limit {
		t.Errorf("the seeder uploaded %d bytes with nothing reading, over %d (1.2x the cap + 2 MiB)", up, limit)
	}
	if first == 0 {
		t.Errorf("prefetch fetched nothing")
	}
}

// TestMountSmallCacheRandomReads makes 100 short random reads through a
// mount of a 128 MiB torrent with an 8 MiB cap: the data file's allocated
// blocks stay within the cap and a bounded margin while reading, and
// after a remount nothing beyond the cap is left.
func TestMountSmallCacheRandomReads(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "rnd", 256<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 128 << 20}})
	seeder := enginetest.StartSeeder(t, "127.0.7.87", c.Torrent, c.Dir)
	want, err := os.ReadFile(c.Files["a.bin"])
	if err != nil {
		t.Fatal(err)
	}
	const capBytes = 8 << 20
	// The margin (cache/doc.go): staged blocks of the pieces written
	// within the last 256 blocks (4 MiB), the pinned piece of the read,
	// and evicted pieces waiting for the next state write (at most 64
	// changes, or 500 ms), each 256 KiB.
	const margin = 4<<20 + 65*256<<10
	cacheDir := t.TempDir()
	data := filepath.Join(cacheDir, c.Meta.InfoHash.String(), "data")
	allocated := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(data, &st); err != nil {
			t.Fatalf("stat data file: %v", err)
		}
		return st.Blocks * 512
	}
	p, mp := mountCapped(t, c, cacheDir, "8MiB", seeder.Addr)
	f, err := os.Open(filepath.Join(mp, "rnd", "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	buf := make([]byte, 4096)
	var peak int64
	for i := range 100 {
		off := rng.Int64N(int64(len(want) - len(buf)))
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("read %d at %d: %v\n%s", i, off, err, p.Output())
		}
		if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
			t.Fatalf("read %d at %d: wrong bytes", i, off)
		}
		peak = max(peak, allocated())
	}
	f.Close()
	t.Logf("data file peak %.1f MiB allocated during 100 reads (cap 8 MiB)", float64(peak)/(1<<20))
	if peak > capBytes+margin {
		t.Errorf("the data file held %d bytes on disk, over the cap %d + margin %d", peak, capBytes, margin)
	}
	runCmd(t, "unmount", mp)
	waitExit(t, p, 30*time.Second)

	// A remount without peers: nothing beyond the cap is left behind.
	p2, mp2 := mountCapped(t, c, cacheDir, "8MiB", "")
	after := allocated()
	t.Logf("data file %.1f MiB allocated after a remount", float64(after)/(1<<20))
	if after > capBytes+256<<10 {
		t.Errorf("after a remount the data file holds %d bytes on disk, over the cap %d", after, capBytes)
	}
	runCmd(t, "unmount", mp2)
	waitExit(t, p2, 30*time.Second)
}
