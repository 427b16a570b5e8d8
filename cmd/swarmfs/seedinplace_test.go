package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// leechFrom has a libtorrent leecher on ip that knows only the swarmfs
// seeder at port download torrent, and returns its save path.
func leechFrom(t *testing.T, p *enginetest.Proc, ip, torrent string, port int) string {
	t.Helper()
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: ip, Torrent: torrent, SavePath: dst, Peers: []string{"127.0.0.1:" + strconv.Itoa(port)},
		ExitWhenDone: true, Timeout: 2 * time.Minute,
	})
	if _, _, err := lt.WaitDone(t.Context()); err != nil {
		t.Fatalf("a leecher of swarmfs seed did not get everything: %v\nswarmfs:\n%s", err, p.Output())
	}
	return dst
}

// sameTree checks that every file below want is in got with the same bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	filepath.Walk(want, func(path string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, path)
		n++
		if fileSHA1Maybe(filepath.Join(got, rel)) != fileSHA1(t, path) {
			t.Errorf("%s differs", rel)
		}
		return nil
	})
	if n == 0 {
		t.Fatalf("no files below %s", want)
	}
}

// TestSeedAria2Data seeds what aria2c downloaded (from a libtorrent seeder
// found through a tracker) where aria2 left it, its control files beside
// it: every piece verifies in place, and a libtorrent leecher that knows
// only swarmfs gets every byte.
func TestSeedAria2Data(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "byaria", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 2<<20 + 4321}, {Path: "sub/b.bin", Size: 300_000},
	})
	tr := enginetest.StartOpentracker(t, "127.0.7.100", c.Meta.InfoHash.String())
	setAnnounce(t, c, tr.HTTP)
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.7.101", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	seeder.WaitSeeding(t, time.Minute)
	ariaDir := t.TempDir()
	aria := enginetest.StartAria2(t, enginetest.Aria2Options{IP: "127.0.7.102", Torrent: c.Torrent, Dir: ariaDir})
	select {
	case <-aria.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatalf("aria2c did not finish:\n%s", aria.Output())
	}
	if aria.ExitCode() != 0 {
		t.Fatalf("aria2c exited %d:\n%s", aria.ExitCode(), aria.Output())
	}
	sameFiles(t, c, ariaDir)
	seeder.Kill()

	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", t.TempDir(), "--port", strconv.Itoa(port), c.Torrent, ariaDir)
	n := c.Meta.Info.NumPieces()
	if line := p.WaitLine(t, "byaria: ", time.Minute); !strings.Contains(line, fmt.Sprintf("all %d pieces verified in %s", n, filepath.Join(ariaDir, "byaria"))) {
		t.Fatalf("aria2's data did not verify: %q\n%s", line, p.Output())
	}
	p.WaitLine(t, "seeding byaria", time.Minute)
	sameFiles(t, c, leechFrom(t, p, "127.0.7.103", c.Torrent, port))
}

// TestSeedSourceTrees makes torrents of a directory tree with
// transmission-create and mktorrent and of a single file with
// transmission-create, and seeds each source in place by naming the
// content itself (the tree's top directory, the file): a libtorrent leecher
// gets the same bytes, and nothing of them is in the cache.
func TestSeedSourceTrees(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	tcBin := enginetest.RequireTool(t, "transmission-create", "transmission-cli")
	mk := enginetest.RequireTool(t, "mktorrent", "mktorrent")
	c := enginetest.MakeContent(t, "tree", 64<<10, []enginetest.FileSpec{
		{Path: "x/one.bin", Size: 1<<20 + 17}, {Path: "two.bin", Size: 200_000}, {Path: "y/z/three", Size: 5},
	})
	tree := filepath.Join(c.Dir, "tree")
	single := c.Files["two.bin"]
	for i, tc := range []struct {
		name, src string
		args      []string
	}{
		{"transmission-create", tree, []string{tcBin, "-s", "64", "-t", "http://127.0.0.1:1/announce"}},
		{"mktorrent", tree, []string{mk, "-l", "16", "-a", "http://127.0.0.1:1/announce"}},
		{"transmission-create file", single, []string{tcBin, "-s", "32", "-t", "http://127.0.0.1:1/announce"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			torrent := filepath.Join(t.TempDir(), "src.torrent")
			args := append(tc.args[1:], "-o", torrent, tc.src)
			if out, err := exec.Command(tc.args[0], args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", tc.name, err, out)
			}
			mi, err := metainfo.LoadFile(torrent)
			if err != nil {
				t.Fatal(err)
			}
			cacheDir := t.TempDir()
			port := enginetest.FreePort(t, "127.0.0.1")
			p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", cacheDir, "--port", strconv.Itoa(port), torrent, tc.src)
			p.WaitLine(t, "seeding ", time.Minute)
			if want := fmt.Sprintf("all %d pieces verified in %s", mi.Info.NumPieces(), tc.src); !strings.Contains(p.Output(), want) {
				t.Fatalf("want %q:\n%s", want, p.Output())
			}
			dst := leechFrom(t, p, fmt.Sprintf("127.0.7.%d", 110+i), torrent, port)
			if tc.src == single {
				if fileSHA1Maybe(filepath.Join(dst, filepath.Base(tc.src))) != fileSHA1(t, tc.src) {
					t.Fatalf("the leecher's %s differs", filepath.Base(tc.src))
				}
			} else {
				sameTree(t, tc.src, filepath.Join(dst, mi.Info.Name))
			}
			if used := diskUsed(cacheDir); used > 256<<10 {
				t.Errorf("the cache holds %d bytes on disk: a copy of the data", used)
			}
		})
	}
}

// TestSeedFileReplaced replaces a seeded file behind swarmfs's back
// between two runs (same size, other bytes): run again, seed re-verifies
// that file (its mtime changed under the resume state) and drops its
// pieces instead of trusting the resume state, and says how many it has.
func TestSeedFileReplaced(t *testing.T) {
	c := enginetest.MakeContent(t, "swapped", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 1 << 20}, {Path: "b.bin", Size: 512 << 10},
	})
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(c.Dir, "swapped"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	cacheDir := t.TempDir()
	n := c.Meta.Info.NumPieces()
	p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", cacheDir, c.Torrent, dir)
	p.WaitLine(t, "seeding swapped", time.Minute)
	if want := fmt.Sprintf("all %d pieces verified", n); !strings.Contains(p.Output(), want) {
		t.Fatalf("want %q:\n%s", want, p.Output())
	}

	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)

	// Replaced as an editor or a copy tool does: a new file renamed over it.
	name := filepath.Join(dir, "swapped", "b.bin")
	other := make([]byte, 512<<10)
	for i := range other {
		other[i] = byte(i * 7)
	}
	if err := os.WriteFile(name+".new", other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+".new", name); err != nil {
		t.Fatal(err)
	}
	p = startSwarmfs(t, "seed", "--no-dht", "--cache-dir", cacheDir, c.Torrent, dir)
	line := p.WaitLine(t, "swapped: ", time.Minute)
	for !strings.Contains(line, "pieces verified") {
		line = p.WaitLine(t, "swapped: ", time.Minute)
	}
	if want := fmt.Sprintf("%d of %d pieces verified", n-8, n); !strings.Contains(line, want) {
		t.Fatalf("after b.bin was replaced: %q, want %q\n%s", line, want, p.Output())
	}
}

// TestSeedFileChangedWhileSeeding rewrites a seeded file in place while
// seed runs (same size, one byte changed in its second piece): the first
// read of it for a leecher finds the change, and seed drops and re-verifies
// that file's pieces, then downloads the changed piece again from the one
// other seeder (libtorrent), which restores the file. Stopped cleanly and
// run again, seed trusts everything.
func TestSeedFileChangedWhileSeeding(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	c := enginetest.MakeContent(t, "changing", 64<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 1 << 20}, {Path: "b.bin", Size: 512 << 10},
	})
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join(c.Dir, "changing"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	other := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.7.121", Torrent: c.Torrent, SavePath: c.Dir, Peers: []string{}})
	other.WaitSeeding(t, time.Minute)
	cacheDir := t.TempDir()
	n := c.Meta.Info.NumPieces()
	port := enginetest.FreePort(t, "127.0.0.1")
	p := startSwarmfs(t, "seed", "--no-dht", "--cache-dir", cacheDir, "--port", strconv.Itoa(port), "--peer", other.Addr, c.Torrent, dir)
	p.WaitLine(t, "seeding changing", time.Minute)
	if want := fmt.Sprintf("all %d pieces verified", n); !strings.Contains(p.Output(), want) {
		t.Fatalf("want %q:\n%s", want, p.Output())
	}

	name := filepath.Join(dir, "changing", "b.bin")
	good := fileSHA1(t, name)
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := f.ReadAt(one, 64<<10+5); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0xff
	if _, err := f.WriteAt(one, 64<<10+5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.7.120", Torrent: c.Torrent, SavePath: t.TempDir(), Peers: []string{"127.0.0.1:" + strconv.Itoa(port)},
		Timeout: 2 * time.Minute,
	})
	p.WaitOutput(t, regexp.MustCompile(`changed behind the store's back`), time.Minute)
	lt.Kill()
	for deadline := time.Now().Add(time.Minute); fileSHA1(t, name) != good; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("seed did not download the changed piece of b.bin again:\n%s", p.Output())
		}
	}

	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
	p = startSwarmfs(t, "seed", "--no-dht", "--cache-dir", cacheDir, c.Torrent, dir)
	line := p.WaitLine(t, "changing: ", time.Minute)
	for !strings.Contains(line, "pieces verified") {
		line = p.WaitLine(t, "changing: ", time.Minute)
	}
	if want := fmt.Sprintf("all %d pieces verified", n); !strings.Contains(line, want) {
		t.Fatalf("after b.bin was restored while seeding: %q, want %q\n%s", line, want, p.Output())
	}
}
