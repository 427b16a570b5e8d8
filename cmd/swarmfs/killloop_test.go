package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"golang.org/x/sys/unix"
)

// TestMountKillLoop kills `swarmfs mount` (small cache, --prefetch, one
// honest libtorrent seeder and one that serves corrupted pieces) with
// SIGKILL at random moments, 30 times, and after each kill opens the cache
// offline: every piece its state claims must be the torrent's bytes.
func TestMountKillLoop(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "kill", 64<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 12 << 20}})
	want, err := os.ReadFile(c.Files["a.bin"])
	if err != nil {
		t.Fatal(err)
	}
	honest := enginetest.StartSeeder(t, "127.0.7.88", c.Torrent, c.Dir)
	// A liar: libtorrent in seed mode trusts its data, in which every
	// seventh piece has one byte flipped, and serves it as it is.
	badDir := t.TempDir()
	bad := bytes.Clone(want)
	pl := int(c.Meta.Info.PieceLength)
	for i := 3; i*pl < len(bad); i += 7 {
		bad[i*pl+100] ^= 0xff
	}
	if err := os.MkdirAll(filepath.Join(badDir, "kill"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badDir, "kill", "a.bin"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	liar := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.7.89", Torrent: c.Torrent, SavePath: badDir, SeedMode: true})
	liar.WaitSeeding(t, time.Minute)

	cacheDir := t.TempDir()
	info := c.Meta.Info
	rng := rand.New(rand.NewPCG(7, 8))
	deadline := time.Now().Add(4 * time.Minute)
	claimed := 0
	const rounds = 30
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rounds within the time bound", round)
		}
		mp := filepath.Join(t.TempDir(), "mnt")
		if err := os.Mkdir(mp, 0o755); err != nil {
			t.Fatal(err)
		}
		detachOnCleanup(t, mp)
		p := startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--cache-size", "2MiB", "--prefetch", "--no-dht",
			"--peer", honest.Addr+","+liar.Addr, c.Torrent, mp)
		p.WaitLine(t, "mounted ", 30*time.Second)
		// A reader too, so that pieces are touched, pinned and evicted.
		if f, err := os.Open(filepath.Join(mp, "kill", "a.bin")); err == nil {
			buf := make([]byte, 64<<10)
			off := rng.Int64N(int64(len(want) - len(buf)))
			go func() {
				defer f.Close()
				_, _ = f.ReadAt(buf, off)
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(700)) * time.Millisecond)
		p.Kill()
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: swarmfs did not die", round)
		}
		_ = unix.Unmount(mp, unix.MNT_DETACH)

		st, err := cache.Open(cacheDir, c.Meta.InfoHash, info, cache.Config{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		buf := make([]byte, pl)
		for i := range info.NumPieces() {
			if !st.Has(i) {
				continue
			}
			claimed++
			n, err := st.ReadPiece(i, buf)
			off := i * pl
			if err != nil || !bytes.Equal(buf[:n], want[off:off+n]) {
				st.Close()
				t.Fatalf("round %d: piece %d is claimed but its bytes are wrong (%v)", round, i, err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
	}
	t.Logf("%d rounds, %d claimed pieces checked, all good", rounds, claimed)
}
