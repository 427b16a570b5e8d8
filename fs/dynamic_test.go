package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// names returns the names in dir, in the order readdir gives them.
func names(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	within(t, 10*time.Second, "readdir", func() error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		out, err = f.Readdirnames(-1)
		return err
	})
	return strings.Join(out, " ")
}

// TestDynamicAddRemove adds torrents to an empty dynamic mount and removes
// one while a file of it is open: each change is visible as soon as the
// call returns (the kernel had the names cached), the open file reads to
// its end, and the torrent can be added again.
func TestDynamicAddRemove(t *testing.T) {
	s, dir := mountT(t, nil, Options{Dynamic: true})
	if got := names(t, dir); got != "" {
		t.Fatalf("empty mount lists %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "album")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat before the add: %v", err)
	}
	album := multiFake("album", fakeOptions{})
	clip := newFake("clip.bin", []fakeFile{{path: []string{"clip.bin"}, data: randomBytes(5, 5000)}}, fakeOptions{single: true})
	for _, ft := range []*fakeTorrent{album, clip} {
		if name, err := s.AddTorrent(ft); err != nil || name != ft.name {
			t.Fatalf("AddTorrent(%s) = %q, %v", ft.name, name, err)
		}
	}
	// No waiting: the add told the kernel.
	b := filepath.Join(dir, "album", "sub", "b.bin")
	fi, err := os.Stat(b)
	if err != nil || fi.Size() != 200_000 {
		t.Fatalf("stat right after the add: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "clip.bin", "clip.bin")); err != nil || fi.Size() != 5000 {
		t.Errorf("a single-file torrent gets a directory in a dynamic mount: %v, %v", fi, err)
	}
	if got := names(t, dir); got != "album clip.bin" {
		t.Errorf("root lists %q", got)
	}
	if _, err := s.AddTorrent(album); !errors.Is(err, ErrExists) {
		t.Errorf("adding twice: %v", err)
	}
	if n, err := unix.Getxattr(dir, XattrInfoHash, nil); err != nil || n != 2*40+1 {
		t.Errorf("root infohash xattr of two torrents: %d bytes, %v", n, err)
	}
	albumIno := fi.Sys().(*syscall.Stat_t).Ino

	// A reader holds a file and the directory; the torrent is removed.
	f, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dirFD, err := unix.Open(filepath.Join(dir, "album"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirFD)
	head := make([]byte, 1000)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTorrent(album.hash); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "album")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat right after the remove: %v", err)
	}
	if got := names(t, dir); got != "clip.bin" {
		t.Errorf("root lists %q after the remove", got)
	}
	if fd, err := unix.Openat(dirFD, "a.txt", unix.O_RDONLY, 0); err != unix.ENOENT {
		unix.Close(fd)
		t.Errorf("opening in a removed torrent's directory: %v", err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(append(head, rest...), album.data[1000:201_000]) {
		t.Errorf("the open file did not read to its end intact: %d bytes, %v", len(head)+len(rest), err)
	}
	f.Close()
	eventually(t, 10*time.Second, "the reader to be closed", func() bool { return album.opens.Load() == album.closes.Load() })
	if err := s.RemoveTorrent(album.hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}

	// Added again: the same inode numbers, readable.
	if _, err := s.AddTorrent(album); err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(b)
	if err != nil || fi.Sys().(*syscall.Stat_t).Ino != albumIno {
		t.Errorf("re-added torrent: %v, inode %v want %d", err, fi, albumIno)
	}
	var got []byte
	within(t, 10*time.Second, "read", func() error { got, err = os.ReadFile(b); return err })
	if !bytes.Equal(got, album.data[1000:201_000]) {
		t.Error("re-added torrent reads wrong bytes")
	}
	other := multiFake("album", fakeOptions{})
	if name, err := s.AddTorrent(other); err != nil || name != "album (2)" {
		t.Errorf("a second torrent named album: %q, %v", name, err)
	}
}

// TestDynamicMagnet adds magnets: one fills when its info arrives, one is
// removed before (its watcher ends; TestMain checks for leaks).
func TestDynamicMagnet(t *testing.T) {
	s, dir := mountT(t, nil, Options{Dynamic: true})
	m1 := multiFake("m1", fakeOptions{magnet: true})
	m2 := multiFake("m2", fakeOptions{magnet: true})
	for _, m := range []*fakeTorrent{m1, m2} {
		if _, err := s.AddTorrent(m); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, filepath.Join(dir, "m1")); got != "" {
		t.Errorf("magnet directory before its info: %q", got)
	}
	if err := s.RemoveTorrent(m2.hash); err != nil {
		t.Fatal(err)
	}
	m1.setInfo()
	eventually(t, 10*time.Second, "the magnet's directory to fill", func() bool {
		_, err := os.Stat(filepath.Join(dir, "m1", "sub", "deeper", "c.bin"))
		return err == nil
	})
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil || sfs.Files != 5 {
		t.Errorf("statfs counts %d files, want 5 (%v)", sfs.Files, err)
	}
}

// TestFixedMount checks what a mount that is not dynamic refuses.
func TestFixedMount(t *testing.T) {
	if _, err := Mount(t.TempDir(), nil, Options{}); !errors.Is(err, ErrNoTorrents) {
		t.Errorf("Mount with no torrents: %v", err)
	}
	ft := multiFake("album", fakeOptions{})
	s, _ := mountT(t, []Torrent{ft}, Options{})
	if _, err := s.AddTorrent(multiFake("x", fakeOptions{})); !errors.Is(err, ErrFixed) {
		t.Errorf("AddTorrent: %v", err)
	}
	if err := s.RemoveTorrent(ft.hash); !errors.Is(err, ErrFixed) {
		t.Errorf("RemoveTorrent: %v", err)
	}
}

// TestDynamicChurn adds and removes torrents while other goroutines list
// and walk the mount (run with -race), then unmounts with a magnet still
// waiting for its info.
func TestDynamicChurn(t *testing.T) {
	first := newFake("one.bin", []fakeFile{{path: []string{"one.bin"}, data: randomBytes(9, 100)}}, fakeOptions{single: true})
	s, dir := mountT(t, []Torrent{first}, Options{Dynamic: true})
	if got := names(t, dir); got != "one.bin" {
		t.Fatalf("a dynamic mount of one single-file torrent lists %q", got)
	}
	if _, err := s.AddTorrent(multiFake("waiting", fakeOptions{magnet: true})); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					_, _ = os.ReadDir(filepath.Join(dir, e.Name()))
				}
				var b [256]byte
				_, _ = unix.Getxattr(dir, XattrStatus, b[:])
			}
		})
	}
	within(t, 60*time.Second, "churn", func() error {
		for i := range 30 {
			ft := multiFake("t", fakeOptions{})
			if _, err := s.AddTorrent(ft); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, "t", "a.txt")); err != nil {
				return err
			}
			if i%2 == 0 {
				if err := s.RemoveTorrent(ft.hash); err != nil {
					return err
				}
			}
		}
		return nil
	})
	close(stop)
	wg.Wait()
	// one.bin, waiting, and the 15 kept: t, t (2), ... t (15).
	if got := names(t, dir); !strings.HasPrefix(got, "one.bin waiting t t (2) ") || !strings.HasSuffix(got, " t (15)") {
		t.Errorf("root after the churn: %s", got)
	}
}

// TestUnmountWithACopyElsewhere unmounts while another mount namespace
// (unshare -m) holds a copy of the mount: Unmount must not wait for that
// namespace forever. It reports ErrConnectionLingers, and the connection
// ends (Done closes) when the namespace goes.
func TestUnmountWithACopyElsewhere(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("unshare -m needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not found (util-linux)")
	}
	s, dir := mountT(t, []Torrent{multiFake("album", fakeOptions{})}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	copyHolder := exec.CommandContext(ctx, unshare, "-m", "--propagation", "private", "sleep", "120")
	if err := copyHolder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = copyHolder.Process.Kill()
		_ = copyHolder.Wait()
	}()
	// The copy exists once the child runs sleep in its own namespace.
	eventually(t, 10*time.Second, "the namespace copy", func() bool {
		self, err1 := os.Readlink("/proc/self/ns/mnt")
		other, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", copyHolder.Process.Pid))
		b, err3 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", copyHolder.Process.Pid))
		return err1 == nil && err2 == nil && err3 == nil && self != other && strings.HasPrefix(string(b), "sleep")
	})
	var uerr error
	within(t, 30*time.Second, "Unmount", func() error { uerr = s.Unmount(); return nil })
	if !errors.Is(uerr, ErrConnectionLingers) {
		t.Errorf("Unmount with a copy elsewhere: %v", uerr)
	}
	if isMountpoint(dir) {
		t.Errorf("%s still mounted here", dir)
	}
	_ = copyHolder.Process.Kill()
	_ = copyHolder.Wait()
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the connection did not end when the namespace holding the copy went")
	}
}
