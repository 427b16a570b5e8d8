package main

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestGetResume interrupts get -o DIR at a random point of the download,
// once with SIGINT and once with SIGKILL, and runs it again: the files are
// right, the seeder uploads the torrent about once over all runs (verified
// pieces are not fetched again), and the rerun re-checks at most a few
// pieces on disk (no full re-hash).
func TestGetResume(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			c := enginetest.MakeContent(t, "resume", 256<<10, []enginetest.FileSpec{
				{Path: "a.bin", Size: 20<<20 + 12345}, {Path: "d/b.bin", Size: 12 << 20},
			})
			ip := "127.0.7.91"
			if sig == syscall.SIGKILL {
				ip = "127.0.7.92"
			}
			seeder := enginetest.StartSeeder(t, ip, c.Torrent, c.Dir)
			out, cacheDir := t.TempDir(), t.TempDir()
			total := c.Meta.Info.TotalLength
			n := c.Meta.Info.NumPieces()

			// A capped rate makes the download last several seconds; it is
			// interrupted somewhere between 10% and 80% of it. A kill -9
			// loses what was received but not yet verified and saved (the
			// state is saved every half second): at 8 MiB/s a loaded
			// machine's lag of a second lost a quarter of the torrent, so
			// the cap is 4 MiB/s, where the same lag stays inside the bound.
			p := startSwarmfs(t, "get", "--no-dht", "--cache-dir", cacheDir, "--max-download-rate", "4MiB",
				"--peer", seeder.Addr, "-o", out, c.Torrent)
			at := total/10 + rand.Int64N(total*7/10)
			deadline := time.Now().Add(time.Minute)
			for seeder.Uploaded(t) < at {
				if time.Now().After(deadline) {
					t.Fatalf("the seeder never uploaded %d bytes:\n%s", at, p.Output())
				}
				select {
				case <-p.Exited():
					t.Fatalf("get ended before it was interrupted:\n%s", p.Output())
				case <-time.After(20 * time.Millisecond):
				}
			}
			if err := syscall.Kill(p.PID(), sig); err != nil {
				t.Fatal(err)
			}
			waitExit(t, p, 30*time.Second)
			if p.ExitCode() == 0 {
				t.Fatalf("get exited 0 after %v:\n%s", sig, p.Output())
			}
			first := uploadedAfter(t, seeder)
			t.Logf("%v after %d bytes; the seeder had uploaded %.2fx the torrent", sig, at, float64(first)/float64(total))
			if first >= total {
				t.Fatalf("the first run got everything before the interruption")
			}

			p = startSwarmfs(t, "get", "--no-dht", "--cache-dir", cacheDir, "--peer", seeder.Addr, "-o", out, c.Torrent)
			waitExit(t, p, 2*time.Minute)
			if p.ExitCode() != 0 {
				t.Fatalf("the rerun exited %d:\n%s", p.ExitCode(), p.Output())
			}
			sameFiles(t, c, out)
			up := uploadedAfter(t, seeder)
			t.Logf("over both runs the seeder uploaded %.2fx the torrent", float64(up)/float64(total))
			if up > total*12/10 {
				t.Errorf("the seeder uploaded %d bytes over both runs, %.2fx the torrent: verified pieces were fetched again",
					up, float64(up)/float64(total))
			}
			rechecked := 0
			if m := regexp.MustCompile(`re-checked (\d+) pieces`).FindStringSubmatch(p.Output()); m != nil {
				rechecked, _ = strconv.Atoi(m[1])
			}
			t.Logf("the rerun re-checked %d of %d pieces", rechecked, n)
			if limit := n / 4; rechecked > limit {
				t.Errorf("the rerun re-checked %d of %d pieces on disk; want at most %d (no full re-hash):\n%s",
					rechecked, n, limit, p.Output())
			}
			if strings.Contains(p.Output(), "re-checked") && sig == syscall.SIGINT {
				t.Errorf("after a clean interruption the rerun re-checked pieces:\n%s", p.Output())
			}
		})
	}
}

// TestGetSeedFromDir runs get --seed: once the download is done, the
// original seeder goes away and a libtorrent leecher that knows only
// swarmfs gets every byte, served from the files in -o DIR (the cache holds
// none of the data).
func TestGetSeedFromDir(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "passon", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 3<<20 + 99}, {Path: "b/c.bin", Size: 500_000},
	})
	seeder := enginetest.StartSeeder(t, "127.0.7.93", c.Torrent, c.Dir)
	out, cacheDir := t.TempDir(), t.TempDir()
	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "get", "--no-dht", "--seed", "--cache-dir", cacheDir, "--port", strconv.Itoa(port),
		"--peer", seeder.Addr, "-o", out, c.Torrent)
	p.WaitLine(t, "seeding on", time.Minute)
	seeder.Kill()
	sameFiles(t, c, out)
	if used := diskUsed(cacheDir); used > 256<<10 {
		t.Errorf("the cache holds %d bytes on disk: a copy of the data", used)
	}
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.7.94", Torrent: c.Torrent, SavePath: dst, Peers: []string{"127.0.0.1:" + strconv.Itoa(port)},
		ExitWhenDone: true, Timeout: 2 * time.Minute,
	})
	if _, _, err := lt.WaitDone(t.Context()); err != nil {
		t.Fatalf("a leecher of get --seed did not get everything: %v\nswarmfs:\n%s", err, p.Output())
	}
	sameFiles(t, c, dst)
}
