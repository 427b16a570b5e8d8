package fs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestInterruptCommand sends SIGINT to commands blocked reading a missing
// piece: all must exit at once, long before the read timeout. cat and dd
// die of the signal; Python catches it, so its read must fail with EINTR
// (the file is still downloading, so auto mode opened it with direct_io)
// for it to stop with KeyboardInterrupt.
func TestInterruptCommand(t *testing.T) {
	const py = "/usr/bin/python3"
	for _, tc := range []struct {
		name string
		args func(path string) []string
		sync bool // the read reaches the server as the process's own request
		// caught: the process catches SIGINT, and says so on stderr
		caught string
	}{
		{"cat", func(p string) []string { return []string{"cat", p} }, false, ""},
		{"dd-direct", func(p string) []string {
			return []string{"dd", "if=" + p, "of=/dev/null", "bs=64k", "iflag=direct"}
		}, true, ""},
		{"python", func(p string) []string {
			return []string{py, "-c", "import sys\nwith open(sys.argv[1], 'rb') as f:\n    f.read(65536)", p}
		}, true, "KeyboardInterrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := contentFake(fakeOptions{gated: true})
			s, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: time.Minute})
			args := tc.args(filePath(dir, ft, 0))
			if tc.caught != "" {
				if _, err := os.Stat(args[0]); err != nil {
					t.Skipf("no %s", args[0])
				}
				if s.direct != PageCacheAuto {
					t.Skip("this kernel cannot mmap direct_io files; auto keeps every file in the page cache")
				}
			}
			cmd := exec.Command(args[0], args[1:]...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			eventually(t, 10*time.Second, "the read to block", func() bool { return ft.waiting.Load() > 0 })
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				exited <- err
				if tc.caught != "" {
					if err == nil || !strings.Contains(stderr.String(), tc.caught) {
						t.Errorf("%s: %v, stderr %q; want %s", tc.name, err, stderr.String(), tc.caught)
					}
					break
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
					t.Errorf("%s: %v, want death by SIGINT", tc.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not exit within 10 s of SIGINT", tc.name)
			}
			if tc.sync {
				eventually(t, 10*time.Second, "the request to be interrupted", func() bool { return ft.canceled.Load() > 0 })
			}
		})
	}
}

// TestInterruptThread interrupts a blocked O_DIRECT pread with a signal to
// its thread: the kernel sends FUSE_INTERRUPT and the read fails with EINTR.
func TestInterruptThread(t *testing.T) {
	ft := contentFake(fakeOptions{gated: true})
	_, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: time.Minute})
	fd, err := unix.Open(filePath(dir, ft, 0), unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tids := make(chan int, 1)
	res := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		buf := make([]byte, 64<<10)
		_, err := unix.Pread(fd, buf, 0)
		res <- err
	}()
	tid := <-tids
	eventually(t, 10*time.Second, "the read to block", func() bool { return ft.waiting.Load() > 0 })
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// SIGURG is harmless to the Go runtime (it uses it for preemption).
		if err := unix.Tgkill(os.Getpid(), tid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-res:
			if !errors.Is(err, unix.EINTR) {
				t.Errorf("interrupted pread: %v, want EINTR", err)
			}
			if ft.canceled.Load() == 0 {
				t.Errorf("the reader's context was not cancelled")
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("the interrupted pread did not return within 10 s")
		}
	}
}

// TestUnmountDuringBlockedRead unmounts while a read waits for a missing
// piece: the read fails, Unmount returns and nothing stays mounted.
func TestUnmountDuringBlockedRead(t *testing.T) {
	ft := contentFake(fakeOptions{gated: true})
	s, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: time.Minute})
	f, err := os.Open(filePath(dir, ft, 0))
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 4096), 0)
		f.Close()
		res <- err
	}()
	eventually(t, 10*time.Second, "the read to block", func() bool { return ft.waiting.Load() > 0 })
	within(t, 20*time.Second, "Unmount", func() error {
		if err := s.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
		return nil
	})
	select {
	case err := <-res:
		if err == nil {
			t.Errorf("blocked read succeeded after unmount")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked read not released by Unmount")
	}
	if isMountpoint(dir) {
		t.Errorf("still mounted")
	}
	select {
	case <-s.Done():
	default:
		t.Errorf("Done not closed after Unmount")
	}
	if o, c := ft.opens.Load(), ft.closes.Load(); o != c {
		t.Errorf("%d readers opened, %d closed", o, c)
	}
}

// TestUnmountFromOutside unmounts with the package-level Unmount, as
// `swarmfs unmount` does from another shell: Done closes.
func TestUnmountFromOutside(t *testing.T) {
	ft := contentFake(fakeOptions{})
	s, dir := mountT(t, []Torrent{ft}, Options{})
	if err := Unmount(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after an unmount from outside")
	}
	if err := Unmount(dir); !errors.Is(err, ErrNotMounted) {
		t.Errorf("second Unmount: %v, want ErrNotMounted", err)
	}
}

// TestUnmountBusy holds a file open: Unmount from outside reports EBUSY,
// UnmountLazy detaches, and the server stops once the file is closed.
func TestUnmountBusy(t *testing.T) {
	ft := contentFake(fakeOptions{})
	s, dir := mountT(t, []Torrent{ft}, Options{})
	f, err := os.Open(filePath(dir, ft, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := Unmount(dir); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("Unmount of a busy mount: %v, want EBUSY", err)
	}
	if err := UnmountLazy(dir); err != nil {
		t.Fatal(err)
	}
	if isMountpoint(dir) {
		t.Errorf("still in the namespace after UnmountLazy")
	}
	select {
	case <-s.Done():
		t.Errorf("server stopped while a file was still open")
	default:
	}
	buf := make([]byte, 100)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Errorf("read through a detached mount: %v", err)
	}
	f.Close()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after the last file was closed")
	}
}

func TestMountTwice(t *testing.T) {
	ft := contentFake(fakeOptions{})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	if s, err := Mount(dir, []Torrent{ft}, Options{}); !errors.Is(err, ErrMounted) {
		if s != nil {
			_ = s.Unmount()
		}
		t.Errorf("second Mount on a live mount: %v, want ErrMounted", err)
	}
}
