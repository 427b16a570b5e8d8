package fs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// roCase is one attempt to change the filesystem. op gets the directory
// that holds the torrent's directory "pf" (multiFake's files).
type roCase struct {
	name string
	op   func(root string) error
	want syscall.Errno // 0: must succeed
}

// roDiffers lists the cases where a "ro" mount answers otherwise: it
// refuses unlink and rmdir before looking the name up, while here the
// kernel looks it up in the filesystem first.
var roDiffers = map[string]syscall.Errno{
	"unlink a missing name": unix.EROFS,
	"rmdir a missing name":  unix.EROFS,
}

// openClose opens path with flags and closes it.
func openClose(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// withFd runs f on path opened read-only.
func withFd(path string, f func(fd int) error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f(fd)
}

// roCases are the modifying system calls, with what a read-only
// filesystem answers (TestReadOnlyLikeRoMount checks the answers against a
// read-only bind mount), and the reading calls around them that must keep
// working.
func roCases(outside string) []roCase {
	a := func(root string) string { return filepath.Join(root, "pf", "a.txt") }
	sub := func(root string) string { return filepath.Join(root, "pf", "sub") }
	return []roCase{
		{"open O_WRONLY", func(r string) error { return openClose(a(r), unix.O_WRONLY) }, unix.EROFS},
		{"open O_RDWR", func(r string) error { return openClose(a(r), unix.O_RDWR) }, unix.EROFS},
		{"open O_RDONLY|O_TRUNC", func(r string) error { return openClose(a(r), unix.O_RDONLY|unix.O_TRUNC) }, unix.EROFS},
		{"open O_WRONLY|O_CREAT existing", func(r string) error { return openClose(a(r), unix.O_WRONLY|unix.O_CREAT) }, unix.EROFS},
		{"open O_CREAT|O_EXCL existing", func(r string) error { return openClose(a(r), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL) }, unix.EEXIST},
		{"open O_CREAT new", func(r string) error { return openClose(filepath.Join(sub(r), "new"), unix.O_RDONLY|unix.O_CREAT) }, unix.EROFS},
		{"open O_TMPFILE", func(r string) error { return openClose(sub(r), unix.O_TMPFILE|unix.O_WRONLY) }, unix.EROFS},
		{"mkfifo", func(r string) error { return unix.Mkfifo(filepath.Join(sub(r), "fifo"), 0o644) }, unix.EROFS},
		{"mkdir", func(r string) error { return unix.Mkdir(filepath.Join(sub(r), "d"), 0o755) }, unix.EROFS},
		{"mkdir at the root", func(r string) error { return unix.Mkdir(filepath.Join(r, "d"), 0o755) }, unix.EROFS},
		{"mkdir existing", func(r string) error { return unix.Mkdir(sub(r), 0o755) }, unix.EEXIST},
		{"unlink", func(r string) error { return unix.Unlink(a(r)) }, unix.EROFS},
		{"unlink a missing name", func(r string) error { return unix.Unlink(filepath.Join(sub(r), "nope")) }, unix.ENOENT},
		{"rmdir", func(r string) error { return unix.Rmdir(filepath.Join(sub(r), "deeper")) }, unix.EROFS},
		{"rmdir a missing name", func(r string) error { return unix.Rmdir(filepath.Join(sub(r), "nope")) }, unix.ENOENT},
		{"rmdir torrent directory", func(r string) error { return unix.Rmdir(filepath.Join(r, "pf")) }, unix.EROFS},
		{"rename", func(r string) error { return unix.Rename(a(r), a(r)+".2") }, unix.EROFS},
		{"rename over a file", func(r string) error { return unix.Rename(a(r), filepath.Join(sub(r), "b.bin")) }, unix.EROFS},
		{"rename torrent directory", func(r string) error { return unix.Rename(filepath.Join(r, "pf"), filepath.Join(r, "pf2")) }, unix.EROFS},
		{"rename exchange", func(r string) error {
			return unix.Renameat2(unix.AT_FDCWD, a(r), unix.AT_FDCWD, filepath.Join(r, "pf", "run.sh"), unix.RENAME_EXCHANGE)
		}, unix.EROFS},
		{"rename into the mount", func(r string) error { return unix.Rename(outside, filepath.Join(sub(r), "in")) }, unix.EXDEV},
		{"link", func(r string) error { return unix.Link(a(r), filepath.Join(sub(r), "hard")) }, unix.EROFS},
		{"symlink", func(r string) error { return unix.Symlink("a.txt", filepath.Join(sub(r), "sym")) }, unix.EROFS},
		{"chmod file", func(r string) error { return unix.Chmod(a(r), 0o644) }, unix.EROFS},
		{"chmod directory", func(r string) error { return unix.Chmod(sub(r), 0o755) }, unix.EROFS},
		{"chown", func(r string) error { return unix.Lchown(a(r), os.Getuid(), os.Getgid()) }, unix.EROFS},
		{"truncate", func(r string) error { return unix.Truncate(a(r), 10) }, unix.EROFS},
		{"utimes", func(r string) error {
			ts := []unix.Timespec{unix.NsecToTimespec(1e9), unix.NsecToTimespec(1e9)}
			return unix.UtimesNano(a(r), ts)
		}, unix.EROFS},
		{"utimes now (touch)", func(r string) error { return unix.UtimesNanoAt(unix.AT_FDCWD, a(r), nil, 0) }, unix.EROFS},
		{"setxattr file", func(r string) error { return unix.Setxattr(a(r), "user.other", []byte("x"), 0) }, unix.EROFS},
		{"setxattr swarmfs attribute", func(r string) error { return unix.Setxattr(a(r), XattrStatus, []byte("x"), 0) }, unix.EROFS},
		{"setxattr directory", func(r string) error { return unix.Setxattr(sub(r), "user.other", []byte("x"), 0) }, unix.EROFS},
		{"removexattr file", func(r string) error { return unix.Removexattr(a(r), XattrInfoHash) }, unix.EROFS},
		{"removexattr directory", func(r string) error { return unix.Removexattr(sub(r), XattrInfoHash) }, unix.EROFS},
		{"access W_OK file", func(r string) error { return unix.Access(a(r), unix.W_OK) }, unix.EROFS},
		{"access R_OK|W_OK directory", func(r string) error { return unix.Access(sub(r), unix.R_OK|unix.W_OK) }, unix.EROFS},
		{"write", func(r string) error {
			return withFd(a(r), func(fd int) error { _, err := unix.Write(fd, []byte("x")); return err })
		}, unix.EBADF},
		{"ftruncate", func(r string) error { return withFd(a(r), func(fd int) error { return unix.Ftruncate(fd, 1) }) }, unix.EINVAL},
		{"fallocate", func(r string) error {
			return withFd(a(r), func(fd int) error { return unix.Fallocate(fd, 0, 0, 4096) })
		}, unix.EBADF},
		{"copy_file_range into the mount", func(r string) error {
			return withFd(a(r), func(dst int) error {
				return withFd(outside, func(src int) error {
					_, err := unix.CopyFileRange(src, nil, dst, nil, 4, 0)
					return err
				})
			})
		}, unix.EBADF},
		{"fchmod", func(r string) error { return withFd(a(r), func(fd int) error { return unix.Fchmod(fd, 0o600) }) }, unix.EROFS},
		{"fsetxattr", func(r string) error {
			return withFd(a(r), func(fd int) error { return unix.Fsetxattr(fd, "user.other", []byte("x"), 0) })
		}, unix.EROFS},
		{"chattr (FS_IOC_SETFLAGS)", func(r string) error {
			return withFd(a(r), func(fd int) error { return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, 0) })
		}, unix.EROFS},

		// What a read-only filesystem still allows.
		{"open O_RDONLY|O_CREAT existing", func(r string) error { return openClose(a(r), unix.O_RDONLY|unix.O_CREAT) }, 0},
		{"access R_OK file", func(r string) error { return unix.Access(a(r), unix.R_OK) }, 0},
		{"access R_OK|X_OK directory", func(r string) error { return unix.Access(sub(r), unix.R_OK|unix.X_OK) }, 0},
		{"access X_OK executable", func(r string) error { return unix.Access(filepath.Join(r, "pf", "run.sh"), unix.X_OK) }, 0},
		{"access X_OK not executable", func(r string) error { return unix.Access(a(r), unix.X_OK) }, unix.EACCES},
		{"fsync of a file open for reading", func(r string) error { return withFd(a(r), unix.Fsync) }, 0},
		{"sendfile out of the mount", func(r string) error {
			f, err := os.CreateTemp(filepath.Dir(outside), "copy")
			if err != nil {
				return err
			}
			defer f.Close()
			return withFd(a(r), func(src int) error {
				n, err := unix.Sendfile(int(f.Fd()), src, nil, 1000)
				if err == nil && n != 1000 {
					return errors.New("short copy")
				}
				return err
			})
		}, 0},
		{"lsattr (FS_IOC_GETFLAGS)", func(r string) error {
			return withFd(a(r), func(fd int) error { _, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS); return err })
		}, 0},
	}
}

// runCase runs c.op on root with a deadline and returns its errno (0 for
// success); any other error fails the test.
func runCase(t *testing.T, c roCase, root string) syscall.Errno {
	t.Helper()
	var err error
	within(t, 10*time.Second, c.name, func() error { err = c.op(root); return nil })
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		t.Fatalf("%s: %v (not an errno)", c.name, err)
	}
	return errno
}

// snapshot lists the tree under dir with each file's contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range tree(t, dir) {
		b.WriteString(line)
		if rel, _, _ := strings.Cut(line, " "); strings.HasSuffix(rel, ".txt") {
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatalf("read %s: %v", rel, err)
			}
			b.Write(data)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// outsideFile makes a small file outside the mount (a source for rename
// and copy_file_range).
func outsideFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(p, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadOnlyRefusesChanges tries every modifying system call on a mount
// made as `swarmfs mount` makes it, fixed and dynamic: each fails with
// the errno of a read-only filesystem (EROFS, or what the kernel decides
// before asking: EEXIST, EXDEV, EBADF), nothing changes and nothing
// reaches the torrent; reading, access(R_OK), fsync and copying out keep
// working.
func TestReadOnlyRefusesChanges(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		name := "fixed"
		if dynamic {
			name = "dynamic"
		}
		t.Run(name, func(t *testing.T) {
			ft := &prefetchFake{fakeTorrent: multiFake("pf", fakeOptions{})}
			var dir string
			if dynamic {
				var s *Server
				s, dir = mountT(t, nil, Options{Dynamic: true})
				if _, err := s.AddTorrent(ft); err != nil {
					t.Fatal(err)
				}
			} else {
				_, dir = mountT(t, []Torrent{ft}, Options{})
			}
			before := snapshot(t, dir)
			for _, c := range roCases(outsideFile(t)) {
				if got := runCase(t, c, dir); got != c.want {
					t.Errorf("%s: %v, want %v", c.name, errnoText(got), errnoText(c.want))
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the mount changed:\n%s\nwas:\n%s", after, before)
			}
			// Without default_permissions the kernel still checks the
			// execute bits before it runs a file. The files run in sh,
			// never from this process: its execve of a file on its own
			// mount waits (vfork) for the FUSE server inside the process,
			// which a garbage collection stops, waiting for that thread.
			if out := run(t, 10*time.Second, "sh", "-c", `"$1"`, "sh", filepath.Join(dir, "pf", "run.sh")); out != "hi\n" {
				t.Errorf("run.sh printed %q", out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "sh", "-c", `"$1"`, "sh", filepath.Join(dir, "pf", "a.txt")).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Permission denied") {
				t.Errorf("running a file not marked executable: %v, %q; want permission denied", err, out)
			}
			ft.mu.Lock()
			defer ft.mu.Unlock()
			if len(ft.calls) != 0 {
				t.Errorf("prefetch calls %q, want none", ft.calls)
			}
		})
	}
}

func errnoText(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	return unix.ErrnoName(e) + " (" + e.Error() + ")"
}

// TestReadOnlyLikeRoMount checks roCases' answers against the kernel's
// own read-only filesystem: a read-only bind mount of a directory with
// the same files (root only, to bind mount).
func TestReadOnlyLikeRoMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a read-only bind mount needs root")
	}
	src := t.TempDir()
	for _, f := range multiFake("pf", fakeOptions{}).full.Files {
		p := filepath.Join(append([]string{src, "pf"}, f.Path...)...)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o444)
		if f.Executable {
			mode = 0o555
		}
		if err := os.WriteFile(p, make([]byte, f.Length), mode); err != nil {
			t.Fatal(err)
		}
	}
	ref := t.TempDir()
	if err := unix.Mount(src, ref, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ref, unix.MNT_DETACH) })
	if err := unix.Mount("", ref, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	before := snapshot(t, ref)
	for _, c := range roCases(outsideFile(t)) {
		want := c.want
		if ro, ok := roDiffers[c.name]; ok {
			want = ro
		}
		if got := runCase(t, c, ref); got != want {
			t.Errorf("%s on a read-only bind mount: %v, the table says %v", c.name, errnoText(got), errnoText(want))
		}
	}
	if after := snapshot(t, ref); after != before {
		t.Errorf("the read-only bind mount changed:\n%s\nwas:\n%s", after, before)
	}
}
