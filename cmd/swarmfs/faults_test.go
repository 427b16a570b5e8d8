package main

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"golang.org/x/sys/unix"
)

// smallTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it in Cleanup. It skips the test when not root.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil || err == unix.EINVAL {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

// sameFiles checks that every file of c was written below dir/c.Name.
func sameFiles(t *testing.T, c *enginetest.Content, dir string) {
	t.Helper()
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(dir, c.Name, rel)) != fileSHA1(t, src) {
			t.Errorf("%s: written copy differs from the original", rel)
		}
	}
}

// uploadedAfter waits a moment for the seeder's counter to settle and
// returns it.
func uploadedAfter(t *testing.T, lt *enginetest.LT) int64 {
	t.Helper()
	time.Sleep(time.Second)
	return lt.Uploaded(t)
}

// TestGetDiskFull runs get with -o DIR on an 8 MiB filesystem for a 32
// MiB torrent: it must exit non-zero within seconds, saying which directory
// is full and "no space left on device", without the seeder uploading the
// torrent many times over, and keep what it verified: run again with room,
// it fetches only the rest.
func TestGetDiskFull(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	out := smallTmpfs(t, "8m")
	c := enginetest.MakeContent(t, "big", 256<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 32 << 20}})
	seeder := enginetest.StartSeeder(t, "127.0.7.81", c.Torrent, c.Dir)
	cacheDir := t.TempDir()
	p := startSwarmfs(t, "get", "--no-dht", "--cache-dir", cacheDir, "--peer", seeder.Addr, "-o", out, c.Torrent)
	waitExit(t, p, 60*time.Second)
	if p.ExitCode() == 0 {
		t.Fatalf("get exited 0 with a full disk:\n%s", p.Output())
	}
	msg := p.Output()
	if !strings.Contains(msg, out) || !strings.Contains(msg, "no space left on device") {
		t.Errorf("get's error does not name %s and \"no space left on device\":\n%s", out, msg)
	}
	if n := strings.Count(msg, "\n"); n > 40 {
		t.Errorf("get printed %d lines; want a short report:\n%s", n, msg)
	}
	total := c.Meta.Info.TotalLength
	up := uploadedAfter(t, seeder)
	t.Logf("the seeder uploaded %.2fx the torrent", float64(up)/float64(total))
	if up > total*12/10 {
		t.Errorf("the seeder uploaded %d bytes, %.1fx the torrent", up, float64(up)/float64(total))
	}

	// Room again: the verified pieces on the small disk are kept, so the
	// seeder sends about the rest only.
	big := t.TempDir()
	if err := os.MkdirAll(filepath.Join(big, "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cp", "-a", filepath.Join(out, "big", "a.bin"), filepath.Join(big, "big", "a.bin")).Run(); err != nil {
		t.Fatal(err)
	}
	p = startSwarmfs(t, "get", "--no-dht", "--cache-dir", cacheDir, "--peer", seeder.Addr, "-o", big, c.Torrent)
	waitExit(t, p, 2*time.Minute)
	if p.ExitCode() != 0 {
		t.Fatalf("get with room exited %d:\n%s", p.ExitCode(), p.Output())
	}
	sameFiles(t, c, big)
	up2 := uploadedAfter(t, seeder) - up
	t.Logf("then the seeder uploaded %.2fx the torrent", float64(up2)/float64(total))
	if up2 > total-(4<<20) {
		t.Errorf("the second get fetched %d of %d bytes: the verified pieces written to the full disk were lost", up2, total)
	}
}

// TestGetSmallCache gets a 64 MiB torrent with a 1 MiB --cache-size and
// 1 MiB pieces: the files are written in place under -o DIR, the cap does
// not apply to them, the download finishes with the right bytes, the
// seeder uploads the torrent about once, and the cache holds none of the
// data.
func TestGetSmallCache(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "wide", 1<<20, []enginetest.FileSpec{
		{Path: "a.bin", Size: 40 << 20}, {Path: "b/c.bin", Size: 24<<20 - 1234}, {Path: "small", Size: 1234},
	})
	seeder := enginetest.StartSeeder(t, "127.0.7.82", c.Torrent, c.Dir)
	out := t.TempDir()
	cacheDir := t.TempDir()
	p := startSwarmfs(t, "get", "--no-dht", "--cache-dir", cacheDir, "--cache-size", "1MiB", "--peer", seeder.Addr, "-o", out, c.Torrent)
	waitExit(t, p, 3*time.Minute)
	if p.ExitCode() != 0 {
		t.Fatalf("get exited %d:\n%s", p.ExitCode(), p.Output())
	}
	sameFiles(t, c, out)
	total := c.Meta.Info.TotalLength
	up := uploadedAfter(t, seeder)
	t.Logf("the seeder uploaded %.2fx the torrent", float64(up)/float64(total))
	if up > total*12/10 {
		t.Errorf("the seeder uploaded %d bytes, %.2fx the torrent\n%s", up, float64(up)/float64(total), p.Output())
	}
	if used := diskUsed(cacheDir); used > 256<<10 {
		t.Errorf("the cache holds %d bytes on disk: a copy of the data", used)
	}
}

// diskUsed is the space that the regular files below dir take on disk.
func diskUsed(dir string) int64 {
	var used int64
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			used += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return used
}

// TestSeedDownloadsTheRest seeds a directory where one file is whole, one
// is missing and one truncated, with a full libtorrent seeder given by
// --peer: swarmfs must say it downloads the rest into the directory, do
// so (the files there end up whole), and a libtorrent leecher that knows
// only swarmfs then gets everything.
func TestSeedDownloadsTheRest(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "half", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 3 << 20}, {Path: "b.bin", Size: 3 << 20}, {Path: "c/d.bin", Size: 2<<20 + 555},
	})
	full := enginetest.StartSeeder(t, "127.0.7.83", c.Torrent, c.Dir)
	part := t.TempDir()
	if err := os.MkdirAll(filepath.Join(part, "half", "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.Files["a.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "half", "a.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(c.Files["c/d.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "half", "c", "d.bin"), data[:1<<20+1000], 0o644); err != nil {
		t.Fatal(err)
	}
	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", t.TempDir(), "--port", fmt.Sprint(port), "--peer", full.Addr, c.Torrent, part)
	p.WaitLine(t, "seeding half", 60*time.Second)
	if want := "downloading the rest into " + filepath.Join(part, "half"); !strings.Contains(p.Output(), want) {
		t.Errorf("seed does not say %q:\n%s", want, p.Output())
	}
	// Its status line (every 5 s) says when it has everything; then only
	// swarmfs can serve the leecher.
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(p.Output(), "seeding 100.0%") {
		if time.Now().After(deadline) {
			t.Fatalf("swarmfs seed did not download the rest:\n%s", p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	full.Kill()
	sameFiles(t, c, part)
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.7.84", Torrent: c.Torrent, SavePath: dst, Peers: []string{fmt.Sprintf("127.0.0.1:%d", port)},
		ExitWhenDone: true, Timeout: 2 * time.Minute,
	})
	if _, _, err := lt.WaitDone(t.Context()); err != nil {
		t.Fatalf("a leecher of swarmfs seed did not get everything: %v\nswarmfs:\n%s", err, p.Output())
	}
	for rel, src := range c.Files {
		got, err := os.ReadFile(filepath.Join(dst, "half", rel))
		want, _ := os.ReadFile(src)
		if err != nil || sha1.Sum(got) != sha1.Sum(want) {
			t.Errorf("%s: leecher's copy differs (%v)", rel, err)
		}
	}
}

// TestMountDiskFull mounts a torrent whose cache directory fills up: the
// read that needs a piece that cannot be stored fails with EIO, the log
// says so once (not once per block), and once space returns a later read
// of the same bytes succeeds.
func TestMountDiskFull(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	cacheDir := smallTmpfs(t, "8m")
	filler := filepath.Join(cacheDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := enginetest.MakeContent(t, "full", 256<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 32 << 20}})
	seeder := enginetest.StartSeeder(t, "127.0.7.85", c.Torrent, c.Dir)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--no-dht", "--read-timeout", "60s", "--peer", seeder.Addr, c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)

	want, err := os.ReadFile(c.Files["a.bin"])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mp, "full", "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var off int64
	var rerr error
	start := time.Now()
	for off < int64(len(want)) {
		n, err := f.ReadAt(buf, off)
		if err != nil && n < len(buf) && off+int64(n) < int64(len(want)) {
			rerr = err
			break
		}
		if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
			t.Fatalf("bytes at %d differ", off)
		}
		off += int64(n)
	}
	if !errors.Is(rerr, syscall.EIO) {
		t.Fatalf("reading 32 MiB through a cache with 4 MiB free: error %v at %d after %v, want EIO\n%s", rerr, off, time.Since(start), p.Output())
	}
	t.Logf("EIO at offset %d after %v", off, time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // blocks still in flight fail too
	out := p.Output()
	// The engine logs the error once; the mount logs the one failed read.
	if n := strings.Count(out, `msg="cannot store pieces in the cache`); n != 1 {
		t.Errorf("the disk error was logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "no space left on device"); n > 2 {
		t.Errorf("\"no space left on device\" is in %d log lines, want 2:\n%s", n, out)
	}

	// Space returns: a later read of the same bytes succeeds.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a read retries at once only a second after the error
	n, err := f.ReadAt(buf, off)
	if err != nil && n < len(buf) {
		t.Fatalf("read at %d after space returned: %v\n%s", off, err, p.Output())
	}
	if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
		t.Fatalf("bytes at %d differ after space returned", off)
	}
}
