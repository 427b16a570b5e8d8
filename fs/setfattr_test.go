package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileIndex returns the index of the file at display path p in ft's info.
func fileIndex(t *testing.T, ft *prefetchFake, p string) int {
	t.Helper()
	for i, f := range ft.Info().Files {
		if f.DisplayPath() == p {
			return i
		}
	}
	t.Fatalf("no file %s", p)
	return -1
}

// prefetchCalls returns the Prefetch calls ft has seen.
func (p *prefetchFake) prefetchCalls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// TestSetfattrTool runs setfattr(1) on a mount made as `swarmfs mount`
// makes it (no test-only option): the value reaches the torrent's
// Prefetch with the file's index; a bad value fails with "Invalid
// argument"; on a directory the attribute gives EISDIR.
func TestSetfattrTool(t *testing.T) {
	setfattr, err := exec.LookPath("setfattr")
	if err != nil {
		t.Skip("setfattr not found (apt-get install attr)")
	}
	ft := &prefetchFake{fakeTorrent: multiFake("pf", fakeOptions{})}
	_, dir := mountT(t, []Torrent{ft}, Options{})
	file := filepath.Join(dir, "pf", "sub", "b.bin")
	run(t, 10*time.Second, setfattr, "-n", XattrPrefetch, "-v", "0+65536", file)
	want := []string{fmt.Sprintf("%d:0+65536", fileIndex(t, ft, "sub/b.bin"))}
	if got := ft.prefetchCalls(); !slices.Equal(got, want) {
		t.Errorf("prefetch calls %q, want %q", got, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, setfattr, "-n", XattrPrefetch, "-v", "bad", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Invalid argument") {
		t.Errorf("setfattr of a bad value: %v, %q; want a failure saying Invalid argument", err, out)
	}
	var serr error
	within(t, 10*time.Second, "setxattr on a directory", func() error {
		serr = unix.Setxattr(filepath.Join(dir, "pf", "sub"), XattrPrefetch, []byte("all"), 0)
		return nil
	})
	if !errors.Is(serr, syscall.EISDIR) {
		t.Errorf("prefetch on a directory: %v, want EISDIR", serr)
	}
	if got := ft.prefetchCalls(); !slices.Equal(got, want) {
		t.Errorf("prefetch calls %q after the refused ones, want %q", got, want)
	}
}

// TestSetfattrUnprivileged is the usual case: a user who is not root
// sets the attribute on a 0444 file (the kernel's default_permissions
// would refuse that write with EACCES), reads the others, and is told
// "Read-only file system" when trying to change anything. Root makes the
// mount with allow_other and runs the tools as nobody.
func TestSetfattrUnprivileged(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("runs the tools as another user: needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests need the fuse3 package and /dev/fuse")
	}
	for _, tool := range []string{"setfattr", "getfattr", "touch", "rm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	// t.TempDir's directories are 0700; nobody needs to reach the mount.
	base, err := os.MkdirTemp("", "swarmfs-setfattr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ft := &prefetchFake{fakeTorrent: multiFake("pf", fakeOptions{})}
	s, err := Mount(base, []Torrent{ft}, Options{AllowOther: true})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	file := filepath.Join(base, "pf", "a.txt")
	asNobody := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s %v as nobody did not finish within 10 s", name, args)
		}
		return string(out), err
	}
	if out, err := asNobody("getfattr", "-n", XattrInfoHash, file); err != nil || !strings.Contains(out, ft.hash.String()) {
		t.Fatalf("getfattr as nobody: %v\n%s", err, out)
	}
	if out, err := asNobody("setfattr", "-n", XattrPrefetch, "-v", "all", file); err != nil {
		t.Fatalf("setfattr as nobody: %v\n%s", err, out)
	}
	want := []string{fmt.Sprintf("%d:all", fileIndex(t, ft, "a.txt"))}
	if got := ft.prefetchCalls(); !slices.Equal(got, want) {
		t.Errorf("prefetch calls %q, want %q", got, want)
	}
	for _, args := range [][]string{{"touch", file}, {"rm", "-f", file}, {"setfattr", "-n", "user.other", "-v", "x", file}} {
		out, err := asNobody(args[0], args[1:]...)
		if err == nil || !strings.Contains(out, "Read-only file system") {
			t.Errorf("%v as nobody: %v, %q; want a failure saying Read-only file system", args, err, out)
		}
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("after rm: %v", err)
	}
}

// TestSetxattrRemovedTorrent sets the attribute through a file still open
// after its torrent left a dynamic mount: ENOENT, as an open would give,
// and the torrent is not asked.
func TestSetxattrRemovedTorrent(t *testing.T) {
	s, dir := mountT(t, nil, Options{Dynamic: true})
	ft := &prefetchFake{fakeTorrent: multiFake("pf", fakeOptions{})}
	if _, err := s.AddTorrent(ft); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "pf", "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.RemoveTorrent(ft.hash); err != nil {
		t.Fatal(err)
	}
	var serr error
	within(t, 10*time.Second, "fsetxattr", func() error {
		serr = unix.Fsetxattr(int(f.Fd()), XattrPrefetch, []byte("all"), 0)
		return nil
	})
	if !errors.Is(serr, syscall.ENOENT) {
		t.Errorf("prefetch of a removed torrent's file: %v, want ENOENT", serr)
	}
	if got := ft.prefetchCalls(); len(got) != 0 {
		t.Errorf("prefetch calls %q, want none", got)
	}
}
