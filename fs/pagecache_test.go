package fs

import (
	"bytes"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// readTwice reads the same 64 KiB of file i twice and returns how many
// ReadAt calls reached the torrent for the second read.
func readTwice(t *testing.T, ft *fakeTorrent, dir string, i int) int64 {
	t.Helper()
	f, err := os.Open(filePath(dir, ft, i))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	want := fileData(ft, i)[:len(buf)]
	var before int64
	for pass := range 2 {
		before = ft.calls.Load()
		within(t, 20*time.Second, "a read", func() error {
			_, err := f.ReadAt(buf, 0)
			return err
		})
		if !bytes.Equal(buf, want) {
			t.Fatalf("pass %d: wrong bytes", pass)
		}
	}
	return ft.calls.Load() - before
}

// TestPageCacheModes checks which opens go through the page cache: in auto
// mode a complete file is served from it on a second read, a file still
// downloading is read directly (every read reaches the torrent); always and
// never do what they say whatever the file's state.
func TestPageCacheModes(t *testing.T) {
	for _, tc := range []struct {
		mode     PageCacheMode
		complete bool
		cached   bool
	}{
		{PageCacheAuto, true, true},
		{PageCacheAuto, false, false},
		{PageCacheAlways, false, true},
		{PageCacheNever, true, false},
	} {
		name := tc.mode.String() + map[bool]string{true: "-complete", false: "-downloading"}[tc.complete]
		t.Run(name, func(t *testing.T) {
			fo := fakeOptions{}
			if !tc.complete {
				fo.delay = time.Millisecond
			}
			ft := contentFake(fo)
			_, dir := mountT(t, []Torrent{ft}, Options{PageCache: tc.mode})
			again := readTwice(t, ft, dir, 0)
			if tc.cached && again != 0 {
				t.Errorf("second read reached the torrent %d times; want it served from the page cache", again)
			}
			if !tc.cached && again == 0 {
				t.Error("second read was served from the page cache; want direct_io")
			}
		})
	}
}

// TestMmapWhileDownloading maps a file that is still downloading (auto mode
// opens it with direct_io) in another process and hashes it through the
// mapping. (Not in this process: a page fault on the mount holds the
// faulting process's mmap lock, which the server in the same process may
// need to allocate memory.)
func TestMmapWhileDownloading(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	ft := contentFake(fakeOptions{delay: time.Millisecond})
	s, dir := mountT(t, []Torrent{ft}, Options{})
	if s.direct != PageCacheAuto {
		t.Skip("this kernel cannot mmap direct_io files; every file uses the page cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := "import hashlib, mmap, sys\n" +
		"with open(sys.argv[1], 'rb') as f:\n" +
		"    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\n" +
		"    print(hashlib.sha1(m).hexdigest())\n"
	out, err := exec.CommandContext(ctx, py, "-c", script, filePath(dir, ft, 0)).CombinedOutput()
	if err != nil {
		t.Fatalf("mmap through python: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("%x", sha1.Sum(fileData(ft, 0))); got != want {
		t.Fatalf("sha1 through the mapping %s, want %s", got, want)
	}
	if ft.calls.Load() == 0 {
		t.Fatal("no read reached the torrent")
	}
}
