package fs

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStaleMount mounts from a child process, kills it with SIGKILL, and
// mounts again over the dead mount.
func TestStaleMount(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests need the fuse3 package and /dev/fuse")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if isMountpoint(dir) {
			_ = detach(dir)
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "ready" {
			t.Fatalf("child: %q", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not mount within 20 s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("killed child did not exit")
	}
	if err := syscall.Statfs(dir, new(syscall.Statfs_t)); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("statfs of the dead mount: %v, want ENOTCONN", err)
	}

	ft := contentFake(fakeOptions{})
	s, err := Mount(dir, []Torrent{ft}, Options{})
	if err != nil {
		t.Fatalf("Mount over a stale mount: %v", err)
	}
	defer func() {
		if err := s.Unmount(); err != nil {
			t.Error(err)
		}
	}()
	if !s.StaleReplaced() {
		t.Errorf("StaleReplaced is false")
	}
	within(t, 10*time.Second, "ReadDir", func() error {
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) != 1 || ents[0].Name() != "content" {
			t.Errorf("ReadDir after replacing a stale mount: %v %v", ents, err)
		}
		return nil
	})
}
