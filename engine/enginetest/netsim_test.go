package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// acceptOne accepts one connection on l within a deadline and returns the
// peer's address as the listener saw it.
func acceptOne(t *testing.T, l net.Listener) <-chan netip.AddrPort {
	t.Helper()
	ch := make(chan netip.AddrPort, 1)
	go func() {
		defer close(ch)
		_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
		c, err := l.Accept()
		if err != nil {
			return
		}
		ch <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.Close()
	}()
	return ch
}

// dialFrom connects from h (optionally from local port lport) to addr.
func dialFrom(h *NetHost, lport int, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var c net.Conn
	err := h.Do(func() (err error) {
		d := net.Dialer{}
		if lport != 0 {
			d.LocalAddr = &net.TCPAddr{Port: lport}
			// The same local port dials several hosts in turn; the
			// flow closed before may still hold it (TIME_WAIT).
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				}); err != nil {
					return err
				}
				return serr
			}
		}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

func TestNetSimNAT(t *testing.T) {
	var prefix string
	t.Run("build", func(t *testing.T) {
		sim := NewNetSim(t)
		prefix = sim.Prefix()
		pub := sim.PublicHost("tracker")
		pub2 := sim.PublicHost("other")
		cone := sim.Router("home1", ConeNAT)
		alice := cone.Host("alice")
		sym := sim.Router("home2", SymmetricNAT)
		bob := sym.Host("bob")
		if !pub.Addr().Is4() || !strings.HasPrefix(pub.Addr().String(), "100.64.") || !strings.HasPrefix(alice.Addr().String(), "10.") {
			t.Fatalf("addresses %v %v", pub.Addr(), alice.Addr())
		}
		out, err := alice.Run(context.Background(), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if err != nil || !strings.Contains(out, alice.Addr().String()) {
			t.Fatalf("Run in alice's namespace: %q %v", out, err)
		}

		ls := map[*NetHost]net.Listener{}
		for _, h := range []*NetHost{pub, pub2} {
			l, err := h.Listen("tcp4", h.Addr().String()+":7000")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ls[h] = l
		}
		// The NATed host reaches public hosts from its router's external
		// address; the cone router keeps the port, for every destination.
		seen := func(from *NetHost, lport int, to *NetHost) netip.AddrPort {
			t.Helper()
			got := acceptOne(t, ls[to])
			c, err := dialFrom(from, lport, to.Addr().String()+":7000")
			if err != nil {
				t.Fatalf("%s -> %s: %v", from.Name(), to.Name(), err)
			}
			defer c.Close()
			ap, ok := <-got
			if !ok {
				t.Fatalf("%s did not accept", to.Name())
			}
			return ap
		}
		for _, to := range []*NetHost{pub, pub2} {
			ap := seen(alice, 41000, to)
			if ap.Addr() != cone.ExternalAddr() || ap.Port() != 41000 {
				t.Errorf("cone NAT: %s sees %v, want %v:41000", to.Name(), ap, cone.ExternalAddr())
			}
		}
		// The symmetric router picks a random port per flow: among a few
		// pairs of flows from one local port, some differ.
		differ := false
		for i := 0; i < 4 && !differ; i++ {
			a := seen(bob, 42000+i, pub)
			b := seen(bob, 42000+i, pub2)
			if a.Addr() != sym.ExternalAddr() || b.Addr() != sym.ExternalAddr() {
				t.Fatalf("symmetric NAT: seen from %v and %v, want %v", a, b, sym.ExternalAddr())
			}
			differ = a.Port() != b.Port()
		}
		if !differ {
			t.Error("symmetric NAT kept one external port for different destinations")
		}

		// IPv6 is masqueraded the same way.
		l6, err := pub.Listen("tcp6", netip.AddrPortFrom(pub.Addr6(), 7006).String())
		if err != nil {
			t.Fatal(err)
		}
		defer l6.Close()
		got6 := acceptOne(t, l6)
		c6, err := dialFrom(alice, 0, netip.AddrPortFrom(pub.Addr6(), 7006).String())
		if err != nil {
			t.Fatalf("IPv6 through the router: %v", err)
		}
		c6.Close()
		if ap := <-got6; ap.Addr() != cone.ExternalAddr6() {
			t.Errorf("IPv6: public host sees %v, want %v", ap, cone.ExternalAddr6())
		}
		la6, err := alice.Listen("tcp6", netip.AddrPortFrom(alice.Addr6(), 7001).String())
		if err != nil {
			t.Fatal(err)
		}
		defer la6.Close()
		if c, err := dialFrom(pub, 0, netip.AddrPortFrom(cone.ExternalAddr6(), 7001).String()); err == nil {
			c.Close()
			t.Fatal("an unsolicited IPv6 connection passed the router")
		}
		if err := cone.DNAT("tcp", 7001, netip.AddrPortFrom(alice.Addr6(), 7001)); err != nil {
			t.Fatal(err)
		}
		gotIn6 := acceptOne(t, la6)
		if c, err := dialFrom(pub, 0, netip.AddrPortFrom(cone.ExternalAddr6(), 7001).String()); err != nil {
			t.Fatalf("IPv6 through the forward: %v", err)
		} else {
			c.Close()
		}
		if ap := <-gotIn6; ap.Addr() != pub.Addr6() {
			t.Errorf("IPv6 forward: the NATed host saw %v, want %v", ap, pub.Addr6())
		}

		// Unsolicited connections from outside fail: to the private address
		// (no route) and to the router's external address (nothing there).
		la, err := alice.Listen("tcp4", alice.Addr().String()+":7001")
		if err != nil {
			t.Fatal(err)
		}
		defer la.Close()
		if c, err := dialFrom(pub, 0, alice.Addr().String()+":7001"); err == nil {
			c.Close()
			t.Fatal("a public host reached a private address")
		}
		ext := cone.ExternalAddr().String() + ":7001"
		if c, err := dialFrom(pub, 0, ext); err == nil {
			c.Close()
			t.Fatal("an unsolicited connection passed the router without a forward")
		}
		// A destination NAT rule on the router (a port forward) opens it.
		if err := cone.DNAT("tcp", 7001, netip.AddrPortFrom(alice.Addr(), 7001)); err != nil {
			t.Fatal(err)
		}
		got := acceptOne(t, la)
		c, err := dialFrom(pub, 0, ext)
		if err != nil {
			t.Fatalf("through the forward: %v", err)
		}
		c.Close()
		if ap := <-got; ap.Addr() != pub.Addr() {
			t.Errorf("the NATed host saw %v, want %v", ap, pub.Addr())
		}
	})
	if prefix == "" {
		return
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left after cleanup:\n%s", out)
	}
}

// TestNetSimDoErrors checks that Do reports errors of fn and of a namespace
// that is gone.
func TestNetSimDoErrors(t *testing.T) {
	sim := NewNetSim(t)
	h := sim.PublicHost("x")
	want := errors.New("boom")
	if err := h.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do returned %v", err)
	}
	gone := &NetHost{sim: sim, name: sim.Prefix() + "missing"}
	if err := gone.Do(func() error { return nil }); err == nil {
		t.Fatal("Do in a missing namespace succeeded")
	}
}

// TestNetSimLibtorrent runs real libtorrent sessions and opentracker in the
// simulated internet: a leecher behind a symmetric NAT finds a public seeder
// through the tracker and downloads, and a public leecher downloads from a
// seeder behind a cone NAT through a port forward.
func TestNetSimLibtorrent(t *testing.T) {
	RequireLibtorrent(t)
	sim := NewNetSim(t)
	pub, pub2 := sim.PublicHost("pubseed"), sim.PublicHost("publeech")
	sym := sim.Router("home1", SymmetricNAT)
	cone := sim.Router("home2", ConeNAT)
	natLeech, natSeed := sym.Host("leech"), cone.Host("seed")
	trk := sim.PublicHost("tracker")
	c := MakeContent(t, "netsim", 32<<10, []FileSpec{{Path: "a.bin", Size: 600_000}}, trk.TrackerURL())
	dir := c.Dir
	trk.StartOpentracker(t, c.Meta.InfoHash.String())

	// The NATed leecher finds the public seeder through the tracker.
	seed := pub.StartLibtorrent(t, LTOptions{Torrent: c.Torrent, SavePath: dir})
	seed.WaitSeeding(t, 2*time.Minute)
	leech := natLeech.StartLibtorrent(t, LTOptions{Torrent: c.Torrent, SavePath: t.TempDir(), ExitWhenDone: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := leech.WaitDone(ctx); err != nil {
		t.Fatalf("NATed leecher from public seeder: %v\n%s", err, leech.Output())
	}

	// Then the only seeder is behind the cone NAT.
	seed.Kill()
	select {
	case <-seed.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the public seeder did not exit")
	}
	seed2 := natSeed.StartLibtorrent(t, LTOptions{Torrent: c.Torrent, SavePath: dir, Port: 6881})
	seed2.WaitSeeding(t, 2*time.Minute)
	if err := cone.DNAT("tcp", 6881, netip.AddrPortFrom(natSeed.Addr(), 6881)); err != nil {
		t.Fatal(err)
	}
	ext := netip.AddrPortFrom(cone.ExternalAddr(), 6881).String()
	leech2 := pub2.StartLibtorrent(t, LTOptions{Torrent: c.Torrent, SavePath: t.TempDir(), Peers: []string{ext}, ExitWhenDone: true})
	if _, _, err := leech2.WaitDone(ctx); err != nil {
		t.Fatalf("public leecher from NATed seeder: %v\n%s", err, leech2.Output())
	}
}

// fatalRecorder is a testing.TB whose Fatal ends only the calling goroutine
// and records the message, to test the harness's own failures.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestNetSimDuplicateName checks that a second host of one name fails the
// test, and that cleanup still deletes the first one.
func TestNetSimDuplicateName(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	var sim *NetSim
	done := make(chan struct{})
	go func() {
		defer close(done)
		sim = NewNetSim(rec)
		sim.PublicHost("dup")
		sim.PublicHost("dup")
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("building timed out")
	}
	if !strings.Contains(rec.msg, "two namespaces") {
		t.Fatalf("Fatal message %q", rec.msg)
	}
	sim.cleanup()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), sim.Prefix()) {
		t.Errorf("namespaces left after cleanup:\n%s", out)
	}
}
