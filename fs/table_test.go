package fs

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
	"golang.org/x/sys/unix"
)

// tableOf builds a table of files with the given paths, one byte each.
func tableOf(paths ...string) (*fileTable, []skipped) {
	info := &metainfo.Info{Name: "t", PieceLength: 16}
	for i, p := range paths {
		info.Files = append(info.Files, metainfo.File{Path: strings.Split(p, "/"), Length: 1, Offset: int64(i)})
	}
	info.TotalLength = int64(len(paths))
	return buildTable(info)
}

// listing returns the names below directory d in readdir order, with "/"
// after directories.
func listing(t *fileTable, d int32) []string {
	var out []string
	for _, r := range t.dirs[d].kids {
		n := t.name(r)
		if r < 0 {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func TestTableOrderAndLookup(t *testing.T) {
	tab, skips := tableOf("z.txt", "sub/b", "a.txt", "sub/deep/c", "sub/a", "m/x")
	if len(skips) != 0 {
		t.Fatalf("skipped %+v", skips)
	}
	if got, want := listing(tab, 0), []string{"z.txt", "sub/", "a.txt", "m/"}; !slices.Equal(got, want) {
		t.Errorf("top lists %q, want %q (torrent order)", got, want)
	}
	sub, ok := tab.lookup(0, "sub")
	if !ok || sub >= 0 {
		t.Fatalf("lookup sub: %d %v", sub, ok)
	}
	if got, want := listing(tab, ^sub), []string{"b", "deep/", "a"}; !slices.Equal(got, want) {
		t.Errorf("sub lists %q, want %q", got, want)
	}
	deep, _ := tab.lookup(^sub, "deep")
	if c, ok := tab.lookup(^deep, "c"); !ok || c != 3 {
		t.Errorf("lookup sub/deep/c = %d %v, want file 3", c, ok)
	}
	for _, miss := range []string{"", "c", "sub/b", "zz", "A.txt"} {
		if _, ok := tab.lookup(0, miss); ok {
			t.Errorf("lookup %q found something", miss)
		}
	}
	if tab.files != 6 {
		t.Errorf("files = %d, want 6", tab.files)
	}
	// Node numbers are distinct across files and directories.
	seen := map[uint64]bool{}
	var walk func(d int32)
	walk = func(d int32) {
		for _, r := range tab.dirs[d].kids {
			n := tab.node(r)
			if seen[n] {
				t.Errorf("node number %d used twice", n)
			}
			seen[n] = true
			if r < 0 {
				walk(^r)
			}
		}
	}
	walk(0)
	if len(seen) != 6+3 {
		t.Errorf("%d nodes, want 9", len(seen))
	}
}

// TestTableRevisitsDirectories places files whose directories change from
// one file to the next (deeper, shallower, same names under other parents,
// a directory met again later): each lands in the right directory.
func TestTableRevisitsDirectories(t *testing.T) {
	tab, skips := tableOf("a/b/c/d", "a/b/e", "x/b/f", "a/b/c/g", "a/h", "x/b/i", "a/x/b/j")
	if len(skips) != 0 {
		t.Fatalf("skipped %+v", skips)
	}
	dir := func(path ...string) int32 {
		d := int32(0)
		for _, c := range path {
			r, ok := tab.lookup(d, c)
			if !ok || r >= 0 {
				t.Fatalf("no directory %q", path)
			}
			d = ^r
		}
		return d
	}
	for _, tt := range []struct {
		path []string
		want []string
	}{
		{nil, []string{"a/", "x/"}},
		{[]string{"a"}, []string{"b/", "h", "x/"}},
		{[]string{"a", "b"}, []string{"c/", "e"}},
		{[]string{"a", "b", "c"}, []string{"d", "g"}},
		{[]string{"x", "b"}, []string{"f", "i"}},
		{[]string{"a", "x", "b"}, []string{"j"}},
	} {
		if got := listing(tab, dir(tt.path...)); !slices.Equal(got, tt.want) {
			t.Errorf("%q lists %q, want %q", tt.path, got, tt.want)
		}
	}
	if len(tab.dirs) != 8 { // the top and 7 below it
		t.Errorf("%d directories, want 8", len(tab.dirs))
	}
}

func TestTableSkipsBadAndCollidingPaths(t *testing.T) {
	tab, skips := tableOf("a", "a", "a/b", "ok/..", "d/e", "d", "d/f", "x//y", "fine")
	var got []int
	for _, s := range skips {
		got = append(got, s.file)
	}
	// 1: duplicate of 0; 2: below the file a; 3 and 7: bad components;
	// 5: the file d collides with the directory d made by file 4.
	if want := []int{1, 2, 3, 5, 7}; !slices.Equal(got, want) {
		t.Errorf("skipped files %v, want %v (%+v)", got, want, skips)
	}
	if got, want := listing(tab, 0), []string{"a", "d/", "fine"}; !slices.Equal(got, want) {
		t.Errorf("top lists %q, want %q", got, want)
	}
	if tab.files != 4 {
		t.Errorf("files = %d, want 4", tab.files)
	}
}

// TestMountListsInTorrentOrder reads directories with getdents (no
// sorting) and looks a deep path up before anything above it was listed.
func TestMountListsInTorrentOrder(t *testing.T) {
	files := []fakeFile{
		{path: []string{"z.txt"}, data: []byte("z")},
		{path: []string{"sub", "deep", "c"}, data: []byte("c")},
		{path: []string{"a.txt"}, data: []byte("a")},
		{path: []string{"sub", "b"}, data: []byte("b")},
	}
	ft := newFake("order", files, fakeOptions{gated: true})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	var fi os.FileInfo
	within(t, 10*time.Second, "stat of a deep path", func() error {
		var err error
		fi, err = os.Stat(filepath.Join(dir, "order", "sub", "deep", "c"))
		return err
	})
	if fi.Size() != 1 {
		t.Errorf("deep file size %d", fi.Size())
	}
	for rel, want := range map[string][]string{
		"order":     {"z.txt", "sub", "a.txt"},
		"order/sub": {"deep", "b"},
	} {
		var got []string
		within(t, 10*time.Second, "getdents", func() error {
			var err error
			got, err = getdents(filepath.Join(dir, rel))
			return err
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %q, want %q (torrent order)", rel, got, want)
		}
	}
	if ft.opens.Load() != 0 {
		t.Errorf("listing opened %d readers", ft.opens.Load())
	}
}

// getdents returns a directory's entries in the order the filesystem gives
// them, without "." and "..".
func getdents(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// TestTableMemoryPerFile checks that the table of a torrent of many files
// takes a few bytes per file (one 4-byte reference in its directory's
// list, which serves lookups too when the torrent is sorted, and the
// list's room to grow) and allocations per directory, not per file.
func TestTableMemoryPerFile(t *testing.T) {
	s := manyShape{top: 20, sub: 10, files: 100}
	info, err := metainfo.ParseInfo(manyFilesInfo(t, "many", s))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, skips := buildTable(info)
	runtime.ReadMemStats(&after)
	if len(skips) != 0 || tab.files != s.count() {
		t.Fatalf("table of %d files, skipped %v", tab.files, skips)
	}
	dirs := 1 + s.top + s.top*s.sub
	allocs := after.Mallocs - before.Mallocs
	perFile := float64(after.TotalAlloc-before.TotalAlloc) / float64(s.count())
	t.Logf("%d allocations for %d directories, %.1f bytes per file", allocs, dirs, perFile)
	if allocs > uint64(16*dirs) {
		t.Errorf("%d allocations for %d files in %d directories, want at most %d", allocs, s.count(), dirs, 16*dirs)
	}
	if perFile > 16 {
		t.Errorf("%.1f bytes per file, want at most 16", perFile)
	}
}
