package enginetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables through which RunInNetns tells the re-executed
// test binary that it runs inside the namespace, and which addresses it has.
const (
	netnsTestEnv  = "SWARMFS_NETNS_TEST"
	netnsAddrsEnv = "SWARMFS_NETNS_ADDRS"
)

// Netns is a network namespace made by a test: only its lo is up, and it
// carries the addresses Addrs (10.77.0.1, 10.77.0.2, ... as /32), which never
// leave the namespace. Some clients (transmission) ignore peers at
// 127.0.0.0/8, so swarms with them run in one.
type Netns struct {
	// Name is "swarmfs-test-<random>".
	Name string
	// Addrs are the addresses on the namespace's lo.
	Addrs []string
}

// RequireNetns skips t unless the ip command (Debian package iproute2) is
// installed and the test runs as root, which `ip netns add` needs.
func RequireNetns(t testing.TB) string {
	t.Helper()
	bin := RequireTool(t, "ip", "iproute2")
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (ip netns add)")
	}
	return bin
}

// NewNetns creates a namespace with lo up and n addresses 10.77.0.1 ...
// 10.77.0.n on it, and deletes it in t.Cleanup (also when the test fails).
func NewNetns(t testing.TB, n int) *Netns {
	t.Helper()
	ip := RequireNetns(t)
	if n < 1 || n > 250 {
		t.Fatalf("netns: %d addresses, want 1..250", n)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	ns := &Netns{Name: "swarmfs-test-" + hex.EncodeToString(rnd[:])}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", ns.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("netns", "delete", ns.Name); err != nil {
			t.Errorf("netns cleanup: %v", err)
		}
	})
	if err := run("-n", ns.Name, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		a := fmt.Sprintf("10.77.0.%d", i)
		if err := run("-n", ns.Name, "addr", "add", a+"/32", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		ns.Addrs = append(ns.Addrs, a)
	}
	return ns
}

// RunInNetns runs the top-level test t inside a new network namespace with
// n addresses (see NewNetns). Called in the test binary as started by go
// test, it creates the namespace, re-executes the test binary there with
// -test.run selecting t alone, streams the inner run's output into t.Log,
// fails t if the inner run fails (or skips it if the inner run skipped),
// kills the inner run at timeout, and returns inside=false: the caller then
// returns at once. Called in the re-executed binary, it returns the
// namespace's addresses and inside=true: the caller does the real work
// there, and every process it starts inherits the namespace.
func RunInNetns(t *testing.T, n int, timeout time.Duration) (addrs []string, inside bool) {
	t.Helper()
	if os.Getenv(netnsTestEnv) == t.Name() {
		return strings.Split(os.Getenv(netnsAddrsEnv), ","), true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("RunInNetns works for top-level tests only")
	}
	ns := NewNetns(t, n)
	ip, _ := exec.LookPath("ip")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", ns.Name, self,
		"-test.run", "^" + regexp.QuoteMeta(t.Name()) + "$",
		"-test.v", "-test.count=1", "-test.timeout", (timeout + 30*time.Second).String()}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, args...)
	cmd.Env = append(os.Environ(), netnsTestEnv+"="+t.Name(), netnsAddrsEnv+"="+strings.Join(ns.Addrs, ","))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var (
		wg      sync.WaitGroup
		passed  bool
		skipped []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			t.Log("netns| " + line)
			trim := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trim, "--- PASS: "+t.Name()+" "):
				passed = true
			case strings.HasPrefix(trim, "--- SKIP: "+t.Name()+" "):
				skipped = append(skipped, trim)
			case len(skipped) > 0 && len(skipped) < 10 && !strings.HasPrefix(trim, "---") && !strings.HasPrefix(trim, "PASS") && trim != "":
				skipped = append(skipped, trim)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Logf("running %s in network namespace %s (addresses %s)", t.Name(), ns.Name, strings.Join(ns.Addrs, " "))
	runErr := cmd.Run()
	pw.Close()
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the run in namespace %s did not end within %v (killed)", ns.Name, timeout)
	case runErr != nil:
		t.Fatalf("the run in namespace %s failed: %v", ns.Name, runErr)
	case len(skipped) > 0:
		t.Skip(strings.Join(skipped, "; "))
	case !passed:
		t.Fatalf("the run in namespace %s did not report %s as passed", ns.Name, t.Name())
	}
	return nil, false
}
