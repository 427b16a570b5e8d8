package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeUDP is a BEP 15 tracker on loopback whose behaviour a test can
// change. By default it answers connects with a new id and announces made
// with a known id with interval 900 and the peers in peers.
type fakeUDP struct {
	conn      *net.UDPConn
	connects  atomic.Int32
	announces atomic.Int32
	packets   chan []byte // every announce packet received (cap 64, extra dropped)

	mu     sync.Mutex
	ids    map[uint64]bool
	nextID uint64
	peers  []byte
	// hook, when set, may answer instead of the default: it returns the
	// datagrams to send and whether it handled p.
	hook func(p []byte) ([][]byte, bool)
}

func newFakeUDP(t *testing.T, addr string) *fakeUDP {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	f := &fakeUDP{conn: conn, ids: map[uint64]bool{}, nextID: 0x1122334455667788,
		packets: make(chan []byte, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, out := range f.handle(append([]byte(nil), buf[:n]...)) {
				_, _ = conn.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return f
}

func (f *fakeUDP) url() string {
	return "udp://" + f.conn.LocalAddr().String() + "/announce"
}

func (f *fakeUDP) setHook(h func(p []byte) ([][]byte, bool)) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *fakeUDP) handle(p []byte) [][]byte {
	if len(p) < 16 {
		return nil
	}
	action := binary.BigEndian.Uint32(p[8:])
	switch action {
	case actionConnect:
		f.connects.Add(1)
	case actionAnnounce:
		f.announces.Add(1)
		select {
		case f.packets <- p:
		default:
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hook != nil {
		if out, ok := f.hook(p); ok {
			return out
		}
	}
	txid := p[12:16]
	switch {
	case action == actionConnect && binary.BigEndian.Uint64(p) == udpProtocolID:
		f.nextID++
		f.ids[f.nextID] = true
		return [][]byte{binary.BigEndian.AppendUint64(hdr(actionConnect, txid), f.nextID)}
	case action == actionAnnounce && len(p) >= udpAnnounceLen:
		if !f.ids[binary.BigEndian.Uint64(p)] {
			return [][]byte{append(hdr(actionError, txid), "bad connection id"...)}
		}
		out := hdr(actionAnnounce, txid)
		out = binary.BigEndian.AppendUint32(out, 900)
		out = binary.BigEndian.AppendUint32(out, 4) // leechers
		out = binary.BigEndian.AppendUint32(out, 2) // seeders
		return [][]byte{append(out, f.peers...)}
	}
	return nil
}

func (f *fakeUDP) setPeers(p []byte) {
	f.mu.Lock()
	f.peers = p
	f.mu.Unlock()
}

func (f *fakeUDP) forgetIDs() {
	f.mu.Lock()
	f.ids = map[uint64]bool{}
	f.mu.Unlock()
}

func hdr(action uint32, txid []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, action), txid...)
}

var v4Peers = []byte{127, 0, 4, 2, 0x1a, 0xe1, 127, 0, 4, 3, 0x1a, 0xe2}

func udpClientFor(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.UDPListenAddr == "" {
		cfg.UDPListenAddr = "127.0.4.1:0"
	}
	c := NewClient(cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPAnnounce(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setPeers(append(slices.Clone(v4Peers), 127, 0, 4, 2, 0x1a, 0xe1, 9)) // a duplicate and a partial entry
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	req := testRequest()
	req.Event = EventCompleted
	r, err := c.Announce(t.Context(), f.url(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, r, &AnnounceResponse{Interval: 900 * time.Second, Seeders: 2, Leechers: 4,
		Peers: []netip.AddrPort{ap("127.0.4.2:6881"), ap("127.0.4.3:6882")}})
	p := <-f.packets
	if len(p) != udpAnnounceLen {
		t.Fatalf("announce packet of %d bytes", len(p))
	}
	u64 := func(off int) uint64 { return binary.BigEndian.Uint64(p[off:]) }
	u32 := func(off int) uint32 { return binary.BigEndian.Uint32(p[off:]) }
	if [20]byte(p[16:36]) != req.InfoHash || [20]byte(p[36:56]) != req.PeerID ||
		u64(56) != 20 || u64(64) != 30 || u64(72) != 10 || u32(80) != 1 || u32(84) != 0 ||
		u32(88) != 0xdeadbeef || u32(92) != 55 || binary.BigEndian.Uint16(p[96:]) != 6881 {
		t.Fatalf("announce packet fields wrong: % x", p)
	}
	req.NumWant = 0
	if _, err := c.Announce(t.Context(), f.url(), req); err != nil {
		t.Fatal(err)
	}
	if p := <-f.packets; int32(binary.BigEndian.Uint32(p[92:])) != -1 {
		t.Fatalf("num_want for 0 = %d, want -1", int32(binary.BigEndian.Uint32(p[92:])))
	}
}

func TestUDPConnectionIDCache(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	uc, err := c.udpClient()
	if err != nil {
		t.Fatal(err)
	}
	var clockMu sync.Mutex
	now := time.Now()
	uc.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }

	req := testRequest()
	for i := range 3 { // three torrents, one connect
		req.InfoHash[0] = byte(i)
		if _, err := c.Announce(t.Context(), f.url(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.connects.Load(); n != 1 {
		t.Fatalf("%d connects for 3 announces within a minute, want 1", n)
	}
	advance(59 * time.Second)
	if _, err := c.Announce(t.Context(), f.url(), req); err != nil {
		t.Fatal(err)
	}
	if n := f.connects.Load(); n != 1 {
		t.Fatalf("connection id not reused at 59 s: %d connects", n)
	}
	advance(2 * time.Second)
	if _, err := c.Announce(t.Context(), f.url(), req); err != nil {
		t.Fatal(err)
	}
	if n := f.connects.Load(); n != 2 {
		t.Fatalf("connection id used past a minute: %d connects, want 2", n)
	}
	// A tracker that forgot our id (restart) answers with an error: one
	// reconnect, then success.
	f.forgetIDs()
	if _, err := c.Announce(t.Context(), f.url(), req); err != nil {
		t.Fatal(err)
	}
	if n := f.connects.Load(); n != 3 {
		t.Fatalf("%d connects after the tracker forgot ids, want 3", n)
	}
}

func TestUDPRetransmit(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	var dropConnects, dropAnnounces atomic.Int32
	dropConnects.Store(2)
	dropAnnounces.Store(1)
	f.setHook(func(p []byte) ([][]byte, bool) {
		d := &dropAnnounces
		if binary.BigEndian.Uint32(p[8:]) == actionConnect {
			d = &dropConnects
		}
		if d.Add(-1) >= 0 {
			return nil, true // lost
		}
		return nil, false
	})
	c := udpClientFor(t, Config{UDPRetryBase: 10 * time.Millisecond, UDPMaxRetries: 3})
	if _, err := c.Announce(t.Context(), f.url(), testRequest()); err != nil {
		t.Fatal(err)
	}
	if nc, na := f.connects.Load(), f.announces.Load(); nc != 3 || na != 2 {
		t.Fatalf("connects %d announces %d, want 3 and 2", nc, na)
	}
	// Four losses exceed three retries: no more sends than 1 + 3.
	dropConnects.Store(100)
	f.forgetIDs()
	c2 := udpClientFor(t, Config{UDPRetryBase: 5 * time.Millisecond, UDPMaxRetries: 3})
	_, err := c2.Announce(t.Context(), f.url(), testRequest())
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("err = %v, want ErrNoResponse", err)
	}
	if nc := f.connects.Load(); nc != 3+4 {
		t.Fatalf("%d connects in total, want 7 (3 before, then 1 + 3 retries)", nc)
	}
}

func TestUDPRetransmitHonoursContext(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setHook(func([]byte) ([][]byte, bool) { return nil, true })
	c := udpClientFor(t, Config{UDPRetryBase: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Announce(ctx, f.url(), testRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// Close releases a blocked announce.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Announce(context.Background(), f.url(), testRequest())
		errc <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.connects.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release a blocked announce")
	}
}

func TestUDPErrorAction(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setHook(func(p []byte) ([][]byte, bool) {
		if binary.BigEndian.Uint32(p[8:]) == actionAnnounce {
			return [][]byte{append(hdr(actionError, p[12:16]), "torrent not registered"...)}, true
		}
		return nil, false
	})
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	u := f.url()
	_, err := c.Announce(t.Context(), u, testRequest())
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Reason != "torrent not registered" || fe.URL != u || !errors.Is(err, ErrFailure) {
		t.Fatalf("err = %#v, want FailureError from %s", err, u)
	}
	if n := f.announces.Load(); n != 1 {
		t.Fatalf("%d announces; an error to a fresh connection id must not be retried", n)
	}
	// An error answer to connect is an error too.
	f.setHook(func(p []byte) ([][]byte, bool) {
		return [][]byte{append(hdr(actionError, p[12:16]), "no"...)}, true
	})
	c2 := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	if _, err := c2.Announce(t.Context(), u, testRequest()); !errors.As(err, &fe) || fe.Reason != "no" {
		t.Fatalf("err = %v, want failure \"no\"", err)
	}
}

func TestUDPTransactionAndSourceChecked(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setPeers(v4Peers)
	other, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap("127.0.4.5:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	uc, err := c.udpClient()
	if err != nil {
		t.Fatal(err)
	}
	client := uc.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	f.setHook(func(p []byte) ([][]byte, bool) {
		if binary.BigEndian.Uint32(p[8:]) != actionAnnounce {
			return nil, false
		}
		bogus := func(txid []byte) []byte {
			return append(hdr(actionAnnounce, txid), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 10, 9, 9, 9, 0, 1)
		}
		// The right transaction id from another address...
		_, _ = other.WriteToUDPAddrPort(bogus(p[12:16]), client)
		// ...and from the tracker a wrong transaction id, both before the
		// real answer, which follows from the default handler.
		wrong := slices.Clone(p[12:16])
		wrong[0] ^= 0xff
		_, _ = f.conn.WriteToUDPAddrPort(bogus(wrong), client)
		return nil, false
	})
	r, err := c.Announce(t.Context(), f.url(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{ap("127.0.4.2:6881"), ap("127.0.4.3:6882")}) {
		t.Fatalf("peers %v: a datagram with a wrong transaction id or source was accepted", r.Peers)
	}
}

func TestUDPShortResponse(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setHook(func(p []byte) ([][]byte, bool) {
		if binary.BigEndian.Uint32(p[8:]) == actionAnnounce {
			return [][]byte{append(hdr(actionAnnounce, p[12:16]), 0, 0, 0, 1)}, true
		}
		return nil, false
	})
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	if _, err := c.Announce(t.Context(), f.url(), testRequest()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
}

func TestUDPIPv6Tracker(t *testing.T) {
	f := newFakeUDP(t, "[::1]:0")
	f.setPeers(append([]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0x1a, 0xe1},
		append(make([]byte, 10), 0xff, 0xff, 127, 0, 4, 7, 0, 80)...)) // a v4-mapped one
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second, UDPListenAddr: "[::1]:0"})
	r, err := c.Announce(t.Context(), f.url(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{ap("[2001:db8::7]:6881"), ap("127.0.4.7:80")}
	if !slices.Equal(r.Peers, want) {
		t.Fatalf("peers %v, want %v", r.Peers, want)
	}
}

func TestUDPConcurrentAnnounces(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	f.setPeers(v4Peers)
	c := udpClientFor(t, Config{UDPRetryBase: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			req := testRequest()
			req.InfoHash[0] = byte(i)
			r, err := c.Announce(ctx, f.url(), req)
			if err == nil && len(r.Peers) != 2 {
				err = errors.New("wrong peers")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.announces.Load(); n != 32 {
		t.Fatalf("%d announces for 32 calls: retransmits on loopback?", n)
	}
}

func TestUDPConnectionIDExpiresDuringRetransmit(t *testing.T) {
	f := newFakeUDP(t, "127.0.4.1:0")
	c := udpClientFor(t, Config{UDPRetryBase: 10 * time.Millisecond, UDPMaxRetries: 5})
	uc, err := c.udpClient()
	if err != nil {
		t.Fatal(err)
	}
	var clockMu sync.Mutex
	now := time.Now()
	uc.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	var dropped atomic.Bool
	f.setHook(func(p []byte) ([][]byte, bool) {
		if binary.BigEndian.Uint32(p[8:]) == actionAnnounce && !dropped.Swap(true) {
			// Lose the first announce, and let the id age meanwhile.
			clockMu.Lock()
			now = now.Add(61 * time.Second)
			clockMu.Unlock()
			return nil, true
		}
		return nil, false
	})
	if _, err := c.Announce(t.Context(), f.url(), testRequest()); err != nil {
		t.Fatal(err)
	}
	if nc, na := f.connects.Load(), f.announces.Load(); nc != 2 || na != 2 {
		t.Fatalf("connects %d announces %d; want a reconnect before the retransmission (2, 2)", nc, na)
	}
}
