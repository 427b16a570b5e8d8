package engine

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// Slot tests: connections that hold our slots and give nothing back must
// not keep an honest peer out.

// idleSockets keeps n sockets from ips connected to target, sending
// nothing and reopening each one the engine closes, until ctx ends. It
// returns how many times sockets were opened, and waits for its
// goroutines when ctx ends (the returned func).
func idleSockets(ctx context.Context, ips []string, target netip.AddrPort, n int) (opened *atomic.Int64, wait func()) {
	opened = new(atomic.Int64)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ips[i%len(ips)])}, Timeout: 2 * time.Second}
			buf := make([]byte, 1)
			for k := 0; k < 1000 && ctx.Err() == nil; k++ {
				c, err := d.DialContext(ctx, "tcp", target.String())
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				opened.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				// Read until the engine hangs up (or ctx ends): then reopen,
				// after a short pause.
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				_, _ = c.Read(buf)
				stop()
				c.Close()
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	return opened, wg.Wait
}

// TestIdleSocketsCannotStarveDials (issue 12, row 3): 600 sockets connect
// to our port, send nothing and reconnect when closed. They used to hold
// every connection slot of the client for the 10 s handshake timeout each,
// so the download never dialed its seeder. Incoming handshakes now have a
// small budget of their own and a shorter deadline; dials always find a
// slot.
func TestIdleSocketsCannotStarveDials(t *testing.T) {
	f := makeFixture(t, "idlesockets", 32<<10, nil, 2<<20)
	seeder := startSeeder(t, "127.0.12.2", f)
	c := newTestClient(t, "127.0.12.1", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	idleCtx, stopIdle := context.WithCancel(ctx)
	ips := make([]string, 10)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.12.%d", 200+i)
	}
	opened, wait := idleSockets(idleCtx, ips, c.Addr(), 600)
	defer func() { stopIdle(); wait() }()
	// Let the idle sockets take what they can.
	for opened.Load() < 600 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	// The old handshake timeout (10 s) would free the sockets' slots 10 s
	// after they were opened: the download must be done before, which
	// takes well under a second on loopback.
	dctx, dcancel := context.WithTimeout(ctx, 8*time.Second)
	defer dcancel()
	waitClosed(t, dctx, tor.Complete(), "download beside 600 idle sockets", tor)
	checkFiles(t, ctx, tor, f)
	t.Logf("idle sockets opened %d times", opened.Load())
}

// squat connects from ip to c as a peer of ih that has nothing (HaveNone)
// and then sends only keep-alives; when the engine hangs up it connects
// again, until ctx ends.
func squat(ctx context.Context, c *Client, ip string, ih [20]byte, n int) {
	for k := 0; k < 200 && ctx.Err() == nil; k++ {
		squatOnce(ctx, c, ip, ih, n*1000+k)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func squatOnce(ctx context.Context, c *Client, ip string, ih [20]byte, n int) {
	conn, gone, err := floodConn(c, ip, ih, n)
	if err != nil {
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	msg := wire.AppendMessage(nil, wire.Message{ID: wire.HaveNone})
	for {
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(msg); err != nil {
			return
		}
		msg = wire.AppendMessage(msg[:0], wire.Message{Keepalive: true})
		select {
		case <-gone:
			return
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestSquattersEvicted (issue 12, row 2): 50 connections that handshake,
// say HaveNone and then send only keep-alives used to hold all 50 peer
// slots of a torrent, so that a read of data an honest seeder has failed,
// whether we dialed the seeder or it connected to us. Now one IP holds at
// most maxPeersPerIP slots, and a peer that has been useless for
// evictAfter makes room for a better candidate.
func TestSquattersEvicted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ips      int
		incoming bool
	}{
		{"50 IPs, seeder dialed", 50, false},
		{"50 IPs, seeder connects", 50, true},
		{"one IP, seeder dialed", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := makeFixture(t, "squat", 32<<10, nil, 1<<20)
			c := newTestClient(t, "127.0.13.1", Config{})
			tor, err := c.AddTorrent(f.mi, AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			for i := 0; i < DefaultMaxConnsPerTorrent; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					squat(ctx, c, fmt.Sprintf("127.0.13.%d", 100+i%tc.ips), f.mi.InfoHash, i)
				}()
			}
			want := min(DefaultMaxConnsPerTorrent, tc.ips*maxPeersPerIP)
			for tor.Stats().Peers < want {
				select {
				case <-ctx.Done():
					t.Fatalf("squatters: %d peers, want %d", tor.Stats().Peers, want)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if tc.incoming {
				// The squatters have been there a while when the seeder
				// comes (it does not retry soon when refused).
				select {
				case <-ctx.Done():
				case <-time.After(evictAfter + time.Second):
				}
				enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.13.2", Torrent: f.torrent, SavePath: f.dir, Peers: []string{c.Addr().String()}})
			} else {
				seeder := startSeeder(t, "127.0.13.2", f)
				tor.AddPeers(addrPort(t, seeder.Addr))
			}
			r, err := tor.NewReader(0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			buf := make([]byte, 64<<10)
			rctx, rcancel := context.WithTimeout(ctx, 40*time.Second)
			defer rcancel()
			if _, err := r.ReadAt(rctx, buf, 0); err != nil {
				t.Fatalf("read beside %d squatters: %v; stats %+v", want, err, tor.Stats())
			}
			if !bytes.Equal(buf, f.fileData(0)[:len(buf)]) {
				t.Fatal("read returned wrong data")
			}
			var fromSeeder bool
			for _, p := range tor.Peers() {
				fromSeeder = fromSeeder || p.Addr.Addr() == netip.MustParseAddr("127.0.13.2")
			}
			if !fromSeeder {
				t.Fatalf("the seeder is not among the peers %+v", tor.Peers())
			}
		})
	}
}
