package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/utp"
)

// connLog is a slog handler that records the transport and encryption of
// every "peer connected" log record.
type connLog struct {
	mu   sync.Mutex
	seen []string // "transport/crypto"
}

func (c *connLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *connLog) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *connLog) WithGroup(string) slog.Handler            { return c }
func (c *connLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "peer connected" {
		return nil
	}
	var tr, crypto string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "transport":
			tr = a.Value.String()
		case "crypto":
			crypto = a.Value.String()
		}
		return true
	})
	c.mu.Lock()
	c.seen = append(c.seen, tr+"/"+crypto)
	c.mu.Unlock()
	return nil
}

func (c *connLog) connections() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// expect fails t unless a connection was logged and every one was want.
func (c *connLog) expect(t *testing.T, want string) {
	t.Helper()
	got := c.connections()
	if len(got) == 0 {
		t.Fatal("no peer connection was logged")
	}
	for _, g := range got {
		if g != want {
			t.Fatalf("connections %q, want all %q", got, want)
		}
	}
}

func TestParseTransports(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Transport
		err  bool
	}{
		{"utp,tcp", []Transport{TransportUTP, TransportTCP}, false},
		{"tcp", []Transport{TransportTCP}, false},
		{" UTP , utp", []Transport{TransportUTP}, false},
		{"quic", nil, true},
		{"", nil, true},
	} {
		got, err := ParseTransports(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParseTransports(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := New(Config{Transports: []Transport{}, CacheDir: t.TempDir(), NoDHT: true}); err == nil {
		t.Error("New with no transport succeeded")
	}
}

// ltEncryptionFor is the libtorrent encryption of an interop case: forced
// RC4 with MSE, disabled without.
func ltEncryptionFor(mse bool) enginetest.LTEncryption {
	if mse {
		return enginetest.LTEncryption{Out: "forced", In: "forced", Level: "rc4"}
	}
	return enginetest.LTEncryption{Out: "disabled", In: "disabled"}
}

// TestUTPDownloadFromLibtorrent downloads from a libtorrent seeder that
// speaks only uTP, in plain BitTorrent and inside MSE.
func TestUTPDownloadFromLibtorrent(t *testing.T) {
	for i, mse := range []bool{false, true} {
		t.Run(fmt.Sprintf("mse=%v", mse), func(t *testing.T) {
			f := makeFixture(t, "utpseed", 32<<10, nil, 3<<20, 100001)
			seeder := enginetest.StartLibtorrentEncrypted(t, enginetest.LTOptions{
				IP: fmt.Sprintf("127.0.15.%d", 20+i), Torrent: f.torrent, SavePath: f.dir, Settings: enginetest.LTUTPOnly,
			}, ltEncryptionFor(mse))
			seeder.WaitSeeding(t, time.Minute)
			log := &connLog{}
			c := newTestClient(t, fmt.Sprintf("127.0.15.%d", 1+i), Config{Logger: slog.New(log)})
			tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			waitClosed(t, ctx, tor.Complete(), "download over uTP", tor)
			checkFiles(t, ctx, tor, f)
			want := "utp/none"
			if mse {
				want = "utp/mse rc4"
			}
			log.expect(t, want)
		})
	}
}

// TestUTPSeedToLibtorrent seeds to a libtorrent leecher that speaks only
// uTP and connects to us, in plain BitTorrent and inside MSE.
func TestUTPSeedToLibtorrent(t *testing.T) {
	for i, mse := range []bool{false, true} {
		t.Run(fmt.Sprintf("mse=%v", mse), func(t *testing.T) {
			f := makeFixture(t, "utpleech", 32<<10, nil, 3<<20, 100002)
			log := &connLog{}
			c := newTestClient(t, fmt.Sprintf("127.0.15.%d", 3+i), Config{Logger: slog.New(log)})
			tor := seedFixture(t, c, f)
			dst := t.TempDir()
			lt := enginetest.StartLibtorrentEncrypted(t, enginetest.LTOptions{
				IP: fmt.Sprintf("127.0.15.%d", 30+i), Torrent: f.torrent, SavePath: dst,
				Peers: []string{c.Addr().String()}, ExitWhenDone: true, Settings: enginetest.LTUTPOnly,
			}, ltEncryptionFor(mse))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, _, err := lt.WaitDone(ctx); err != nil {
				t.Fatalf("%v; our stats %+v", err, tor.Stats())
			}
			checkDir(t, dst, f)
			want := "utp/none"
			if mse {
				want = "utp/mse rc4"
			}
			log.expect(t, want)
		})
	}
}

// TestTransportTCPOnly: a client restricted to TCP reaches our other
// client over TCP although both speak uTP, and never reaches a uTP-only
// libtorrent seeder; a client restricted to uTP reaches ours over uTP.
// Peers reports the transport. The clients run a DHT node, so that a
// TCP-only client has a UDP socket too.
func TestTransportTCPOnly(t *testing.T) {
	f := makeFixture(t, "tcponly", 16<<10, nil, 1<<20, 100003)
	seed := newTestClient(t, "127.0.15.5", Config{})
	seedFixture(t, seed, f)
	ltSeed := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.15.40", Torrent: f.torrent, SavePath: f.dir, Settings: enginetest.LTUTPOnly,
	})
	ltSeed.WaitSeeding(t, time.Minute)
	lt := addrPort(t, ltSeed.Addr)
	for i, tc := range []struct {
		transports []Transport
		peers      []netip.AddrPort
		want       Transport
	}{
		// TCP only: the uTP-only seeder is never reached, ours is.
		{[]Transport{TransportTCP}, []netip.AddrPort{lt, seed.Addr()}, TransportTCP},
		// uTP only: the uTP-only seeder is the only one given.
		{[]Transport{TransportUTP}, []netip.AddrPort{lt}, TransportUTP},
		// The default reaches both over uTP.
		{nil, []netip.AddrPort{lt, seed.Addr()}, TransportUTP},
	} {
		t.Run(fmt.Sprint(tc.transports), func(t *testing.T) {
			log := &connLog{}
			c := newTestClient(t, fmt.Sprintf("127.0.15.%d", 6+i), Config{
				Transports: tc.transports, Logger: slog.New(log),
				DHTBootstrap: []string{}, // a DHT node on the UDP socket, which uTP must not use when off
			})
			tor, err := c.AddTorrent(f.mi, AddOptions{Peers: tc.peers, Prefetch: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			waitClosed(t, ctx, tor.Complete(), "download", tor)
			checkFiles(t, ctx, tor, f)
			peers := tor.Peers()
			for _, p := range peers {
				if p.Transport != tc.want {
					t.Errorf("peer %v over %v, want %v", p.Addr, p.Transport, tc.want)
				}
				if p.Addr == lt && tc.want == TransportTCP {
					t.Error("a TCP-only client connected to a uTP-only seeder")
				}
			}
			r := tor.Reach()
			if len(r.Transports) > 1 || (len(peers) > 0 && r.Transports[tc.want] == 0) {
				t.Errorf("Reach %+v for peers %+v", r, peers)
			}
			log.expect(t, tc.want.String()+"/mse plaintext")
		})
	}
}

// TestDialerFallsBack dials a peer that listens on TCP only: uTP is tried
// first and TCP after the head start; a peer known to take TCP is dialed
// over TCP at once; an address with neither fails fast (TCP refused cuts
// the uTP attempt short).
func TestDialerFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.15.50:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	us, err := utp.Listen("udp4", "127.0.15.51:0", utp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	d := &dialer{tcp: true, utp4: us}
	peer := ln.Addr().(*net.TCPAddr).AddrPort()
	ctx := context.Background()
	for _, prefer := range []Transport{TransportUnknown, TransportTCP} {
		conn, tr, err := d.connect(ctx, peer, prefer)
		if err != nil || tr != TransportTCP {
			t.Fatalf("prefer %v: %v over %v", prefer, err, tr)
		}
		conn.Close()
	}
	if got := d.order(peer, TransportUnknown); !slices.Equal(got, []Transport{TransportUTP, TransportTCP}) {
		t.Fatalf("order %v", got)
	}
	if got := d.order(peer, TransportTCP); !slices.Equal(got, []Transport{TransportTCP, TransportUTP}) {
		t.Fatalf("order %v", got)
	}
	ln.Close()
	dead := netip.AddrPortFrom(peer.Addr(), peer.Port())
	done := make(chan error, 1)
	go func() {
		_, _, err := d.connect(ctx, dead, TransportUnknown)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("dialing a closed port succeeded")
		}
	case <-time.After(dialTimeout - time.Second):
		t.Fatal("a refused TCP dial did not cut the uTP attempt short")
	}
}
