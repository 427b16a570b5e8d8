package fs

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// prefetchFake is a fake torrent that records its Prefetch calls and
// refuses the value "bad".
type prefetchFake struct {
	*fakeTorrent
	mu    sync.Mutex // guards calls
	calls []string
}

func (p *prefetchFake) Prefetch(file int, value []byte) error {
	if string(value) == "bad" {
		return fmt.Errorf("%w: %q", ErrBadValue, value)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("%d:%s", file, value))
	return nil
}

// TestSetxattrPrefetch sets user.swarmfs.prefetch through the mount: a good
// value reaches the torrent with the file's index, a bad one gives EINVAL,
// and any other attribute stays read-only. The mount is made as `swarmfs
// mount` makes it: before the kernel mount lost "ro" this failed with
// EROFS, refused by the kernel before asking the filesystem.
func TestSetxattrPrefetch(t *testing.T) {
	ft := &prefetchFake{fakeTorrent: multiFake("pf", fakeOptions{})}
	_, dir := mountT(t, []Torrent{ft}, Options{})
	path := filepath.Join(dir, "pf", "sub", "b.bin")
	set := func(name, v string) error {
		var err error
		within(t, 10*time.Second, "setxattr", func() error {
			err = unix.Setxattr(path, name, []byte(v), 0)
			return nil
		})
		return err
	}
	if err := set(XattrPrefetch, "4096+64K"); err != nil {
		t.Fatalf("setxattr prefetch: %v", err)
	}
	if err := set(XattrPrefetch, "bad"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("setxattr of a bad value: %v, want EINVAL", err)
	}
	if err := set("user.other", "x"); err == nil {
		t.Error("setxattr of another attribute succeeded")
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	idx := -1
	for i, f := range ft.Info().Files {
		if f.DisplayPath() == "sub/b.bin" {
			idx = i
		}
	}
	if want := []string{fmt.Sprintf("%d:4096+64K", idx)}; !slices.Equal(ft.calls, want) {
		t.Fatalf("prefetch calls %q, want %q", ft.calls, want)
	}
}
