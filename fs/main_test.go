package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// childEnv makes the test binary act as a mounting child process (see
// TestStaleMount): it mounts a fake torrent at the directory named by the
// variable, prints "ready" and blocks until killed.
const childEnv = "SWARMFS_FS_TEST_CHILD_MOUNT"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMount(dir))
	}
	os.Exit(enginetest.RunCheckingLeaks(m, "swarmfs/fs.", "go-fuse"))
}

func childMount(dir string) int {
	ft := newFake("child", []fakeFile{{path: []string{"child.bin"}, data: randomBytes(7, 100_000)}}, fakeOptions{single: true})
	if _, err := Mount(dir, []Torrent{ft}, Options{}); err != nil {
		fmt.Println("mount:", err)
		return 1
	}
	fmt.Println("ready")
	time.Sleep(2 * time.Minute) // the parent kills us long before this
	return 1
}

// mountT mounts torrents in a fresh directory and unmounts in Cleanup,
// checking that nothing stays mounted.
func mountT(t testing.TB, torrents []Torrent, opts Options) (*Server, string) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests need the fuse3 package and /dev/fuse")
	}
	dir := t.TempDir()
	s, err := Mount(dir, torrents, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil && !errors.Is(err, ErrConnectionLingers) {
			t.Errorf("Unmount: %v", err)
		}
		if isMountpoint(dir) {
			t.Errorf("%s still mounted after Unmount", dir)
			_ = detach(dir)
		}
	})
	return s, dir
}

// within runs f and fails the test if it returns an error or does not
// return within d, so a wedged mount cannot hang the run (Cleanup then
// detaches the mount, which releases f).
func within(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
	}
}

// run runs a command with a deadline and returns its combined output.
func run(t testing.TB, d time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v", name, args, d)
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
