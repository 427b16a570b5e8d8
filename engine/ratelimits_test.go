package engine

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/ratelimit"
)

// Rate-limit tests run at rateCap over rateBytes: long enough (10 s and
// more) that the bucket's initial burst is lost in the average.
const (
	rateCap   = 1 << 20
	rateBytes = 12 << 20
)

// rateWindow measures a byte counter's average rate, from the moment it
// first passes 1 MiB (connecting, handshakes and the first burst are
// behind) until it reaches want or ctx ends.
func rateWindow(t *testing.T, ctx context.Context, count func() int64, want int64) float64 {
	t.Helper()
	var t0 time.Time
	var n0 int64
	for {
		n := count()
		now := time.Now()
		if t0.IsZero() && n >= 1<<20 {
			t0, n0 = now, n
		}
		if n >= want {
			if t0.IsZero() || now.Sub(t0) <= 0 {
				t.Fatalf("%d bytes moved at once", n)
			}
			return float64(n-n0) / now.Sub(t0).Seconds()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d bytes: %v", n, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkRate asserts a measured rate is within 10% above the cap, and not
// far below it (a loaded machine may be slower, never faster).
func checkRate(t *testing.T, what string, rate float64, limit int64) {
	t.Helper()
	t.Logf("%s: %.0f B/s with a cap of %d B/s (%.1f%%)", what, rate, limit, 100*rate/float64(limit))
	if rate > 1.1*float64(limit) {
		t.Errorf("%s at %.0f B/s, over the cap of %d B/s by more than 10%%", what, rate, limit)
	}
	if rate < 0.5*float64(limit) {
		t.Errorf("%s at %.0f B/s, under half the cap of %d B/s", what, rate, limit)
	}
}

// TestDownloadRateLimit downloads from a fast libtorrent seeder under a
// download cap.
func TestDownloadRateLimit(t *testing.T) {
	f := makeFixture(t, "capped-down", 256<<10, nil, rateBytes)
	seeder := startSeeder(t, "127.0.46.2", f)
	c := newTestClient(t, "127.0.46.1", Config{MaxDownloadRate: rateCap})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rate := rateWindow(t, ctx, func() int64 { return tor.Stats().Downloaded }, f.mi.Info.TotalLength)
	checkRate(t, "download", rate, rateCap)
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}

// TestUploadRateLimit seeds to a fast libtorrent leecher under an upload
// cap.
func TestUploadRateLimit(t *testing.T) {
	f := makeFixture(t, "capped-up", 256<<10, nil, rateBytes)
	c := newTestClient(t, "127.0.46.3", Config{MaxUploadRate: rateCap})
	tor := seedFixture(t, c, f)
	dst := t.TempDir()
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.46.4", Torrent: f.torrent, SavePath: dst,
		Peers: []string{c.Addr().String()}, ExitWhenDone: true,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rate := rateWindow(t, ctx, func() int64 { return tor.Stats().Uploaded }, f.mi.Info.TotalLength)
	checkRate(t, "upload", rate, rateCap)
	if _, _, err := lt.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	checkDir(t, dst, f)
}

// TestSetRateLimits lifts a download cap at run time: the rest of the
// download is no longer held to it.
func TestSetRateLimits(t *testing.T) {
	f := makeFixture(t, "uncapped", 256<<10, nil, 8<<20)
	seeder := startSeeder(t, "127.0.46.5", f)
	c := newTestClient(t, "127.0.46.6", Config{MaxDownloadRate: 64 << 10})
	if up, down := c.RateLimits(); up != 0 || down != 64<<10 {
		t.Fatalf("RateLimits = %d, %d", up, down)
	}
	if err := c.SetRateLimits(-1, 0); err == nil {
		t.Fatal("a negative rate was accepted")
	}
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for tor.Stats().Downloaded < 256<<10 {
		select {
		case <-ctx.Done():
			t.Fatalf("capped download did not start: %+v", tor.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// At 64 KiB/s the 8 MiB would take two minutes, past the deadline.
	if err := c.SetRateLimits(0, 0); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ctx, tor.Complete(), "download after lifting the cap", tor)
}

// TestReadUnderSaturatedUpload reads a file from a libtorrent seeder while
// the same client seeds another torrent to a fast leecher through an
// upload cap the leecher saturates: our requests still go out, the read's
// first byte arrives.
func TestReadUnderSaturatedUpload(t *testing.T) {
	seeded := makeFixture(t, "saturating", 256<<10, nil, 16<<20)
	read := makeFixture(t, "wanted", 64<<10, nil, 2<<20)
	c := newTestClient(t, "127.0.46.7", Config{MaxUploadRate: 128 << 10})
	up := seedFixture(t, c, seeded)
	enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.46.8", Torrent: seeded.torrent, SavePath: t.TempDir(), Peers: []string{c.Addr().String()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for up.Stats().Uploaded < 256<<10 {
		select {
		case <-ctx.Done():
			t.Fatalf("the leecher does not download: %+v", up.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	seeder := startSeeder(t, "127.0.46.9", read)
	tor, err := c.AddTorrent(read.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, seeder.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 1)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	start := time.Now()
	if _, err := r.ReadAt(rctx, buf, 1<<20); err != nil {
		t.Fatalf("read under a saturated upload cap: %v; stats %+v", err, tor.Stats())
	}
	if buf[0] != read.fileData(0)[1<<20] {
		t.Fatal("wrong byte")
	}
	t.Logf("first byte after %v; uploading at %.0f B/s", time.Since(start), up.Stats().UpRate)
}

// TestReadClassFollowsNowRequests checks that a peer's connection reads in
// the Urgent class exactly while requests of ours for Now pieces are
// outstanding at it.
func TestReadClassFollowsNowRequests(t *testing.T) {
	f := makeFixture(t, "classes", 16<<10, nil, 256<<10)
	c := newTestClient(t, "127.0.46.10", Config{MaxDownloadRate: 1 << 20})
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lc := ratelimit.Wrap(a, nil, nil)
	var stream net.Conn = &streamConn{Conn: lc, r: lc, w: lc}
	err = tor.do(func() {
		ls := tor.ls
		p := newPeer(tor, stream, handshakeResult{}, true, ls.conns.newID())
		if p.lim != lc {
			t.Error("the rate-limited conn beneath a streamConn was not found")
		}
		ls.conns.add(p)
		defer ls.conns.remove(p)
		ls.pk.SetRanges(1, []picker.Range{{First: 3, End: 4, Prio: picker.Now}})
		ls.updateReadClasses()
		if p.urgent {
			t.Error("urgent with no request outstanding")
		}
		p.reqSent[picker.Request{Piece: 5, Length: 16 << 10}] = time.Now()
		ls.updateReadClasses()
		if p.urgent {
			t.Error("urgent with a request for a piece that is not Now")
		}
		p.reqSent[picker.Request{Piece: 3, Length: 16 << 10}] = time.Now()
		ls.updateReadClasses()
		if !p.urgent {
			t.Error("not urgent with a request for a Now piece outstanding")
		}
		delete(p.reqSent, picker.Request{Piece: 3, Length: 16 << 10})
		ls.updateReadClasses()
		if p.urgent {
			t.Error("still urgent after the Now request was answered")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoUpload connects a libtorrent leecher to a client with NoUpload
// and the whole torrent: the leecher stays connected, choked, and gets no
// piece byte.
func TestNoUpload(t *testing.T) {
	f := makeFixture(t, "kept", 32<<10, nil, 2<<20)
	c := newTestClient(t, "127.0.46.11", Config{NoUpload: true})
	tor := seedFixture(t, c, f)
	enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "127.0.46.12", Torrent: f.torrent, SavePath: t.TempDir(), Peers: []string{c.Addr().String()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var since time.Time
	for {
		ps := tor.Peers()
		if len(ps) > 0 && ps[0].PeerInterested && since.IsZero() {
			since = time.Now()
		}
		for _, p := range ps {
			if !p.AmChoking {
				t.Fatalf("peer %v unchoked", p.Addr)
			}
		}
		if st := tor.Stats(); st.Uploaded != 0 {
			t.Fatalf("uploaded %d bytes with NoUpload", st.Uploaded)
		}
		// Unlimited, the 2 MiB would be gone well within this time.
		if !since.IsZero() && time.Since(since) > 5*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no interested leecher: peers %+v", ps)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(tor.Peers()) == 0 {
		t.Fatal("the leecher was disconnected")
	}
}

// TestPerTorrentConns checks the default of Config.MaxConnsPerTorrent.
func TestPerTorrentConns(t *testing.T) {
	for _, tc := range []struct{ global, want int }{
		{DefaultMaxConns, DefaultMaxConnsPerTorrent}, {1000, 250}, {20, 10}, {4, 4}, {1, 1},
	} {
		if got := PerTorrentConns(tc.global); got != tc.want {
			t.Errorf("PerTorrentConns(%d) = %d, want %d", tc.global, got, tc.want)
		}
	}
}

// TestConnLimits fills a torrent with peers that connect to it: it never
// holds more than MaxConnsPerTorrent of them, and two torrents together
// never more than MaxConns.
func TestConnLimits(t *testing.T) {
	f1 := makeFixture(t, "limited-1", 32<<10, nil, 1<<20)
	f2 := makeFixture(t, "limited-2", 32<<10, nil, 1<<20)
	c := newTestClient(t, "127.0.46.13", Config{MaxConns: 7, MaxConnsPerTorrent: 4})
	var tors []*Torrent
	for _, f := range []*fixture{f1, f2} {
		tor, err := c.AddTorrent(f.mi, AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tors = append(tors, tor)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	n := 0
	for i, f := range []*fixture{f1, f2} {
		for k := 0; k < 6; k++ {
			n++
			go func() {
				defer func() { done <- struct{}{} }()
				squat(ctx, c, "127.0.46."+strconv.Itoa(100+i*10+k), f.mi.InfoHash, i*10+k)
			}()
		}
	}
	defer func() {
		cancel()
		for ; n > 0; n-- {
			<-done
		}
	}()
	full := 0
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline) || full == 0; {
		p1, p2 := tors[0].Stats().Peers, tors[1].Stats().Peers
		if p1 > 4 || p2 > 4 {
			t.Fatalf("%d and %d peers, over the per-torrent limit of 4", p1, p2)
		}
		if p1+p2 > 7 {
			t.Fatalf("%d+%d peers, over the client's limit of 7", p1, p2)
		}
		if p1+p2 == 7 {
			full++
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never full: %d and %d peers", p1, p2)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestNowPiecesFirstUnderDownloadCap saturates a download cap with a
// prefetch from one libtorrent seeder, then reads a file of another
// torrent from a second seeder: while the read waits, its peer's
// connection reads in the Urgent class, so the read's bytes take most of
// the cap and the prefetch gets less than they do.
func TestNowPiecesFirstUnderDownloadCap(t *testing.T) {
	bulk := makeFixture(t, "bulk", 256<<10, nil, 32<<20)
	read := makeFixture(t, "urgent", 64<<10, nil, 4<<20)
	s1 := startSeeder(t, "127.0.46.50", bulk)
	s2 := startSeeder(t, "127.0.46.51", read)
	c := newTestClient(t, "127.0.46.52", Config{MaxDownloadRate: 512 << 10})
	bt, err := c.AddTorrent(bulk.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, s1.Addr)}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.AddTorrent(read.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, s2.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for bt.Stats().Downloaded < 1<<20 || rt.Stats().Peers == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no prefetch or no peer: %+v %+v", bt.Stats(), rt.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	r, err := rt.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b0, r0 := bt.Stats().Downloaded, rt.Stats().Downloaded
	buf := make([]byte, 64<<10)
	for off := int64(1 << 20); off < 3<<20; off += int64(len(buf)) {
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	bulkBytes, readBytes := bt.Stats().Downloaded-b0, rt.Stats().Downloaded-r0
	t.Logf("during the read: %d bytes for it, %d for the prefetch", readBytes, bulkBytes)
	if bulkBytes >= readBytes {
		t.Errorf("the prefetch got %d bytes while the read got %d: the read did not go first", bulkBytes, readBytes)
	}
}

// TestWebSeedRateLimit downloads from a web seed (nginx) under a download
// cap: web seed bytes are charged to the same bucket as peers'.
func TestWebSeedRateLimit(t *testing.T) {
	f := makeFixture(t, "capped-web", 256<<10, nil, 8<<20)
	base := enginetest.StartNginx(t, f.dir)
	c := newTestClient(t, "127.0.46.60", Config{MaxDownloadRate: rateCap})
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true, WebSeeds: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rate := rateWindow(t, ctx, func() int64 { return tor.Stats().WebSeedBytes }, f.mi.Info.TotalLength)
	checkRate(t, "web seed download", rate, rateCap)
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}
