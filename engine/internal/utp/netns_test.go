package utp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// routedPair is two network namespaces, A and B, joined by veth pairs
// through a router namespace R that forwards between them and shapes the
// traffic towards B with a qdisc. The test's own sockets are made inside
// A or B (see in); everything is deleted in t.Cleanup.
type routedPair struct {
	nsA, nsR, nsB string
	addrA, addrB  string
}

func newRoutedPair(t *testing.T, qdisc string) *routedPair {
	t.Helper()
	ip := enginetest.RequireNetns(t)
	enginetest.RequireTool(t, "tc", "iproute2")
	var rnd [4]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	rp := &routedPair{nsA: "utp-a-" + id, nsR: "utp-r-" + id, nsB: "utp-b-" + id, addrA: "10.78.1.2", addrB: "10.78.2.2"}
	run := func(name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{rp.nsA, rp.nsR, rp.nsB} {
		run(ip, "netns", "add", ns)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, ip, "netns", "delete", ns).CombinedOutput(); err != nil {
				t.Errorf("netns cleanup: %v: %s", err, out)
			}
		})
		run(ip, "-n", ns, "link", "set", "lo", "up")
	}
	// Interface names are per namespace once moved; create them with
	// unique names in R directly.
	run(ip, "-n", rp.nsR, "link", "add", "ra", "type", "veth", "peer", "name", "a0", "netns", rp.nsA)
	run(ip, "-n", rp.nsR, "link", "add", "rb", "type", "veth", "peer", "name", "b0", "netns", rp.nsB)
	run(ip, "-n", rp.nsA, "addr", "add", rp.addrA+"/24", "dev", "a0")
	run(ip, "-n", rp.nsB, "addr", "add", rp.addrB+"/24", "dev", "b0")
	run(ip, "-n", rp.nsR, "addr", "add", "10.78.1.1/24", "dev", "ra")
	run(ip, "-n", rp.nsR, "addr", "add", "10.78.2.1/24", "dev", "rb")
	for _, l := range [][2]string{{rp.nsA, "a0"}, {rp.nsB, "b0"}, {rp.nsR, "ra"}, {rp.nsR, "rb"}} {
		run(ip, "-n", l[0], "link", "set", l[1], "up")
	}
	run(ip, "-n", rp.nsA, "route", "add", "default", "via", "10.78.1.1")
	run(ip, "-n", rp.nsB, "route", "add", "default", "via", "10.78.2.1")
	run(ip, "netns", "exec", rp.nsR, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run("tc", append([]string{"-n", rp.nsR, "qdisc", "add", "dev", "rb", "root"}, strings.Fields(qdisc)...)...)
	return rp
}

// in runs f on an OS thread switched into namespace ns, so the sockets f
// makes live there.
func (rp *routedPair) in(t *testing.T, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(target.Fd()); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := setns(orig.Fd()); err != nil {
			// Leave the thread locked: it exits with the goroutine.
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func setns(fd uintptr) error {
	if _, _, e := syscall.RawSyscall(sysSetns, fd, syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// sysSetns is setns(2) on linux/amd64 (the syscall package has no name
// for it).
const sysSetns = 308
