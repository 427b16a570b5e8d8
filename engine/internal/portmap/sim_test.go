package portmap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// syncBuffer is a bytes.Buffer for a logger written from the Mapper's
// goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitStatus waits until ok(Status) or fails after 60 s.
func waitStatus(t *testing.T, m *Mapper, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if st := m.Status(); ok(st) {
			return st
		}
		select {
		case <-m.Changed():
		case <-deadline:
			t.Fatalf("status not reached in 60 s: %+v", m.Status())
		}
	}
}

// dialTCP connects from h to addr within 5 s.
func dialTCP(h *enginetest.NetHost, addr netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.DialContext(ctx, "tcp4", addr.String())
}

// TestMapperInSimulatedInternet maps a NATed host's TCP and UDP ports
// through a responder that speaks PCP, only NAT-PMP, or only UPnP, and
// checks that a public host then reaches the host through the router's
// kernel NAT, that mappings are renewed, and that Close removes them.
func TestMapperInSimulatedInternet(t *testing.T) {
	for _, c := range []struct {
		name           string
		pmp, pcp, upnp bool
		want           Method
		renewal        string
	}{
		{"PCP", true, true, false, MethodPCP, "PCP map TCP 6881 lifetime 4"},
		{"NAT-PMP", true, false, false, MethodNATPMP, "NAT-PMP map TCP 6881 lifetime 4"},
		{"UPnP", false, false, true, MethodUPnP, "UPnP map TCP 6881 lease 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := enginetest.NewNetSim(t)
			pub := sim.PublicHost("peer")
			r := sim.Router("home", enginetest.ConeNAT)
			alice := r.Host("alice")
			rs := startResponder(t, r, c.pmp, c.pcp, c.upnp)

			ln, err := alice.Listen("tcp4", alice.Addr().String()+":6881")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			uc, err := alice.ListenPacket(context.Background(), "udp4", alice.Addr().String()+":6881")
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			ext := netip.AddrPortFrom(r.ExternalAddr(), 6881)
			if c, err := dialTCP(pub, ext); err == nil {
				c.Close()
				t.Fatal("reached the host before any mapping")
			}

			var logs syncBuffer
			m := Start(context.Background(), Config{
				Gateway: r.Addr(), Lease: 4 * time.Second, Timeout: 3 * time.Second, RetryAfter: time.Minute,
				Dial: alice.DialContext, ListenPacket: alice.ListenPacket,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}, Port{TCP, 6881}, Port{UDP, 6881})
			defer m.Close()
			st := waitStatus(t, m, func(s Status) bool { return s.Method != MethodNone || s.Attempts > 0 })
			if st.Method != c.want || st.Err != nil {
				t.Fatalf("status %+v, want method %v; log:\n%s", st, c.want, logs.String())
			}
			if st.External != r.ExternalAddr() || st.ExternalPort(Port{TCP, 6881}) != 6881 || st.ExternalPort(Port{UDP, 6881}) != 6881 {
				t.Fatalf("status %+v, want external %v with port 6881 for TCP and UDP", st, r.ExternalAddr())
			}

			// TCP through the kernel's DNAT.
			accepted := make(chan string, 1)
			go func() {
				_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
				c, err := ln.Accept()
				if err != nil {
					accepted <- err.Error()
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(io.LimitReader(c, 5))
				accepted <- c.RemoteAddr().(*net.TCPAddr).IP.String() + " " + string(b)
			}()
			conn, err := dialTCP(pub, ext)
			if err != nil {
				t.Fatalf("public host to the mapped port: %v (map: %s)", err, rs.Elements())
			}
			conn.Write([]byte("hello"))
			conn.Close()
			if got := <-accepted; got != pub.Addr().String()+" hello" {
				t.Fatalf("accepted %q", got)
			}
			// UDP too.
			pc, err := pub.ListenPacket(context.Background(), "udp4", pub.Addr().String()+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			if _, err := pc.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(ext)); err != nil {
				t.Fatal(err)
			}
			_ = uc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 16)
			if n, _, err := uc.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("UDP through the mapping: %q %v", buf[:n], err)
			}

			// Renewal at half the 4 s lease.
			deadline := time.Now().Add(30 * time.Second)
			for count(rs.Calls(), c.renewal) < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("no renewal; calls %q", rs.Calls())
				}
				time.Sleep(100 * time.Millisecond)
			}

			m.Close()
			if st := m.Status(); st.Method != MethodNone || len(st.Mappings) != 0 {
				t.Errorf("after Close: %+v", st)
			}
			if e := strings.TrimSpace(rs.Elements()); e != "" {
				t.Fatalf("mappings left on the router after Close: %s; calls %q", e, rs.Calls())
			}
			if c, err := dialTCP(pub, ext); err == nil {
				c.Close()
				t.Fatal("reached the host after Close")
			}
		})
	}
}

func count(calls []string, s string) int {
	n := 0
	for _, c := range calls {
		if c == s {
			n++
		}
	}
	return n
}

// TestMapperMiniupnpd runs Debian's miniupnpd on a simulated router. Our
// client finds it by SSDP and over NAT-PMP/PCP, and every method is refused
// because the router's external address is reserved (100.64.0.0/10): the
// Mapper reports a typed refusal and logs each failure once, however many
// times it retries.
func TestMapperMiniupnpd(t *testing.T) {
	bin := "/usr/sbin/miniupnpd"
	if _, err := os.Stat(bin); err != nil {
		bin = enginetest.RequireTool(t, "miniupnpd", "miniupnpd-nftables")
	}
	sim := enginetest.NewNetSim(t)
	r := sim.Router("home", enginetest.ConeNAT)
	alice := r.Host("alice")
	// Debian 12's nft_init.sh is broken: make miniupnpd's chains here.
	if err := r.Nft(`
table inet filter {
	chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
	chain miniupnpd { }
	chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
	chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
	chain prerouting_miniupnpd { }
	chain postrouting_miniupnpd { }
}
`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(conf, []byte(`ext_ifname=wan0
listening_ip=lan0
port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=no
system_uptime=yes
lease_file=`+filepath.Join(dir, "leases")+`
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
allow 1024-65535 10.0.0.0/8 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mu := r.Start(t, bin, "-f", conf, "-d", "-P", filepath.Join(dir, "pid"))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(mu.Output(), "Listening for NAT-PMP/PCP traffic") || !strings.Contains(mu.Output(), "HTTP listening on port") {
		if time.Now().After(deadline) {
			t.Fatalf("miniupnpd did not start:\n%s", mu.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var logs syncBuffer
	m := Start(context.Background(), Config{
		Gateway: r.Addr(), Timeout: 3 * time.Second, RetryAfter: 200 * time.Millisecond,
		Dial: alice.DialContext, ListenPacket: alice.ListenPacket,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, Port{TCP, 6881}, Port{UDP, 6881})
	defer m.Close()
	st := waitStatus(t, m, func(s Status) bool { return s.Attempts >= 3 })
	var ue *UPnPError
	if st.Method != MethodNone || !errors.Is(st.Err, ErrRefused) || !errors.As(st.Err, &ue) || ue.Action != "AddPortMapping" {
		t.Fatalf("status %+v (%v), want a refused UPnP AddPortMapping; log:\n%s\nminiupnpd:\n%s", st, st.Err, logs.String(), mu.Output())
	}
	out := logs.String()
	for _, what := range []string{"PCP failed", "NAT-PMP failed", "UPnP failed"} {
		if n := strings.Count(out, what); n != 1 {
			t.Errorf("%q logged %d times, want once; log:\n%s", what, n, out)
		}
	}
	if !strings.Contains(out, "NAT-PMP result 3 (network failure)") {
		t.Errorf("NAT-PMP refusal not in the log:\n%s", out)
	}
	if !strings.Contains(mu.Output(), "SSDP M-SEARCH from "+alice.Addr().String()) {
		t.Errorf("miniupnpd saw no SSDP search from %v", alice.Addr())
	}
}

// TestMapperLibtorrentReached maps the port of a libtorrent seeder behind
// a NAT router (through the test's PCP responder) and has a public
// libtorrent leecher download from the router's external address and the
// mapped port: the path an incoming BitTorrent connection takes.
func TestMapperLibtorrentReached(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	sim := enginetest.NewNetSim(t)
	pub := sim.PublicHost("leech")
	r := sim.Router("home", enginetest.SymmetricNAT)
	alice := r.Host("seed")
	startResponder(t, r, true, true, false)
	c := enginetest.MakeContent(t, "mapped", 32<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 400_000}})
	seed := alice.StartLibtorrent(t, enginetest.LTOptions{Torrent: c.Torrent, SavePath: c.Dir, Port: 6881})
	seed.WaitSeeding(t, 2*time.Minute)

	m := Start(context.Background(), Config{Gateway: r.Addr(), Timeout: 3 * time.Second,
		Dial: alice.DialContext, ListenPacket: alice.ListenPacket}, Port{TCP, 6881}, Port{UDP, 6881})
	defer m.Close()
	st := waitStatus(t, m, func(s Status) bool { return s.Attempts > 0 })
	if st.Err != nil || !st.External.IsValid() || st.ExternalPort(Port{TCP, 6881}) == 0 {
		t.Fatalf("status %+v", st)
	}
	ext := netip.AddrPortFrom(st.External, st.ExternalPort(Port{TCP, 6881}))
	leech := pub.StartLibtorrent(t, enginetest.LTOptions{Torrent: c.Torrent, SavePath: t.TempDir(), Peers: []string{ext.String()}, ExitWhenDone: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, _, err := leech.WaitDone(ctx); err != nil {
		t.Fatalf("public leecher through %v: %v\n%s", ext, err, leech.Output())
	}
}
