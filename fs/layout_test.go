package fs

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// multiFake is a gated multi-file torrent: nothing is readable, so any
// listing that touched the network would hang.
func multiFake(name string, o fakeOptions) *fakeTorrent {
	return newFake(name, []fakeFile{
		{path: []string{"a.txt"}, data: randomBytes(1, 1000)},
		{path: []string{"sub", "b.bin"}, data: randomBytes(2, 200_000)},
		{path: []string{"sub", "deeper", "c.bin"}, data: randomBytes(3, 70_000)},
		{path: []string{"empty"}, data: nil},
		{path: []string{"run.sh"}, data: []byte("#!/bin/sh\necho hi\n"), exec: true},
	}, o)
}

// tree walks dir and returns "path mode size" lines.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	within(t, 10*time.Second, "walking the mount", func() error {
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			size := fi.Size()
			if fi.IsDir() {
				size = 0
			}
			lines = append(lines, strings.Join([]string{rel, fi.Mode().String(), strconv.FormatInt(size, 10)}, " "))
			return nil
		})
		if err != nil {
			t.Errorf("walk: %v", err)
		}
		return nil
	})
	sort.Strings(lines)
	return lines
}

func TestLayoutSingleFile(t *testing.T) {
	ft := newFake("movie.bin", []fakeFile{{path: []string{"movie.bin"}, data: randomBytes(4, 300_000)}},
		fakeOptions{gated: true, single: true})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	got := tree(t, dir)
	want := []string{". dr-xr-xr-x 0", "movie.bin -r--r--r-- 300000"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fi, err := os.Stat(filepath.Join(dir, "movie.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(ft.created) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), ft.created)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	// No ST_RDONLY: the kernel takes statfs flags from the mount's flags,
	// and the mount is not "ro" (see readonly.go).
	if sfs.Blocks*uint64(sfs.Bsize) < 300_000 || sfs.Bfree != 0 || sfs.Bavail != 0 {
		t.Errorf("statfs: blocks %d bsize %d free %d avail %d flags %#x", sfs.Blocks, sfs.Bsize, sfs.Bfree, sfs.Bavail, sfs.Flags)
	}
	if ft.opens.Load() != 0 {
		t.Errorf("listing opened %d readers", ft.opens.Load())
	}
	if _, err := os.OpenFile(filepath.Join(dir, "movie.bin"), os.O_WRONLY, 0); err == nil {
		t.Errorf("opening for writing succeeded on a read-only mount")
	}
}

func TestLayoutMultiFile(t *testing.T) {
	ft := multiFake("album", fakeOptions{gated: true})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	got := tree(t, dir)
	want := []string{
		". dr-xr-xr-x 0",
		"album dr-xr-xr-x 0",
		"album/a.txt -r--r--r-- 1000",
		"album/empty -r--r--r-- 0",
		"album/run.sh -r-xr-xr-x 18",
		"album/sub dr-xr-xr-x 0",
		"album/sub/b.bin -r--r--r-- 200000",
		"album/sub/deeper dr-xr-xr-x 0",
		"album/sub/deeper/c.bin -r--r--r-- 70000",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out := run(t, 10*time.Second, "ls", "-lR", dir)
	for _, name := range []string{"a.txt", "b.bin", "c.bin", "run.sh", "200000"} {
		if !strings.Contains(out, name) {
			t.Errorf("ls -lR output lacks %q:\n%s", name, out)
		}
	}
	out = run(t, 10*time.Second, "find", dir, "-type", "f")
	if n := len(strings.Fields(out)); n != 5 {
		t.Errorf("find found %d files:\n%s", n, out)
	}
	if ft.opens.Load() != 0 || ft.waiting.Load() != 0 {
		t.Errorf("listing touched the torrent: %d opens, %d waiting", ft.opens.Load(), ft.waiting.Load())
	}
}

// TestInodesStable mounts the same torrent twice and expects the same
// inode numbers.
func TestInodesStable(t *testing.T) {
	ft := multiFake("album", fakeOptions{gated: true})
	inos := func() map[string]uint64 {
		s, dir := mountT(t, []Torrent{ft}, Options{})
		m := map[string]uint64{}
		within(t, 10*time.Second, "walk", func() error {
			_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					rel, _ := filepath.Rel(dir, p)
					m[rel] = fi.Sys().(*syscall.Stat_t).Ino
				}
				return err
			})
			return nil
		})
		if err := s.Unmount(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := inos(), inos()
	if len(a) != 9 {
		t.Fatalf("walked %d entries", len(a))
	}
	seen := map[uint64]string{}
	for p, ino := range a {
		if b[p] != ino {
			t.Errorf("%s: inode %d then %d", p, ino, b[p])
		}
		if q, dup := seen[ino]; dup {
			t.Errorf("%s and %s share inode %d", p, q, ino)
		}
		seen[ino] = p
	}
}

func TestLayoutSeveral(t *testing.T) {
	a := multiFake("same", fakeOptions{gated: true})
	b := multiFake("same", fakeOptions{gated: true})
	c := newFake("clip.bin", []fakeFile{{path: []string{"clip.bin"}, data: randomBytes(5, 5000)}}, fakeOptions{gated: true, single: true})
	d := newFake("x/y", []fakeFile{{path: []string{"f"}, data: []byte("f")}}, fakeOptions{gated: true})
	_, dir := mountT(t, []Torrent{a, b, c, d}, Options{})
	var names []string
	within(t, 10*time.Second, "ReadDir", func() error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Error(err)
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return nil
	})
	want := "clip.bin same same (2) x_y"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("root holds %q, want %q", got, want)
	}
	fi, err := os.Stat(filepath.Join(dir, "clip.bin", "clip.bin"))
	if err != nil || fi.Size() != 5000 {
		t.Errorf("single-file torrent among several: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "same (2)", "sub", "deeper", "c.bin")); err != nil {
		t.Error(err)
	}
	if _, err := exec.LookPath("ls"); err == nil {
		run(t, 10*time.Second, "ls", "-lR", dir)
	}
}
