package engine

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/metadata"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// fakePeer is a minimal seeder written with the wire codec. It serves
// blocks of content, corrupting them when corrupt is set, and closes each
// connection after closeAfter blocks when closeAfter > 0.
type fakePeer struct {
	addr       netip.AddrPort
	ih         [20]byte
	content    []byte
	pieceLen   int64
	corrupt    bool
	closeAfter int
	delay      time.Duration // pause before each block; requests queue up and honour Cancel
	meta       []byte        // info dictionary served with ut_metadata (maybe a lie); nil = none
	// allowed, when set, makes the peer never unchoke us: it sends these
	// pieces as BEP 6 allowed-fast, serves requests for them and rejects
	// any other request.
	allowed    []int
	metaServed int

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	sent  int   // blocks sent over all connections
	order []int // pieces of the blocks sent, in order
}

func startFakePeer(t *testing.T, ip string, f *fixture, corrupt bool, closeAfter int) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	var content []byte
	for i := range f.mi.Info.Files {
		content = append(content, f.fileData(i)...)
	}
	fp := &fakePeer{
		addr: ln.Addr().(*net.TCPAddr).AddrPort(), ih: f.mi.InfoHash, content: content,
		pieceLen: f.mi.Info.PieceLength, corrupt: corrupt, closeAfter: closeAfter, ln: ln,
	}
	fp.wg.Add(1)
	go fp.accept()
	t.Cleanup(func() {
		ln.Close()
		fp.mu.Lock()
		for _, c := range fp.conns {
			c.Close()
		}
		fp.mu.Unlock()
		fp.wg.Wait()
	})
	return fp
}

func (fp *fakePeer) accept() {
	defer fp.wg.Done()
	for {
		c, err := fp.ln.Accept()
		if err != nil {
			return
		}
		fp.mu.Lock()
		fp.conns = append(fp.conns, c)
		fp.mu.Unlock()
		fp.wg.Add(1)
		go func() {
			defer fp.wg.Done()
			defer c.Close()
			fp.serve(c)
		}()
	}
}

func (fp *fakePeer) blocksSent() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.sent
}

func (fp *fakePeer) served() []int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]int(nil), fp.order...)
}

func (fp *fakePeer) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := wire.ReadHandshake(c); err != nil {
		return
	}
	var id [20]byte
	copy(id[:], "-XX0001-fakepeer0000")
	if fp.corrupt {
		copy(id[:], "-XX0001-badpeer00000")
	}
	if err := wire.WriteHandshake(c, wire.NewHandshake(fp.ih, id)); err != nil {
		return
	}
	var out []byte
	if fp.meta != nil {
		h := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: 3}, MetadataSize: len(fp.meta)}
		b, _ := h.Marshal()
		out = wire.AppendMessage(out, wire.Message{ID: wire.Extended, ExtID: 0, Data: b})
	}
	out = wire.AppendMessage(out, wire.Message{ID: wire.HaveAll})
	if fp.allowed == nil {
		out = wire.AppendMessage(out, wire.Message{ID: wire.Unchoke})
	}
	for _, i := range fp.allowed {
		out = wire.AppendMessage(out, wire.Message{ID: wire.AllowedFast, Index: uint32(i)})
	}
	if _, err := c.Write(out); err != nil {
		return
	}
	br := bufio.NewReader(c)
	buf := make([]byte, 64<<10)
	var qmu, wmu sync.Mutex
	var queue []wire.Message
	wake := make(chan struct{}, 1)
	go func() {
		defer close(wake)
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			m, err := wire.ReadMessage(br, 0, buf)
			if err != nil {
				c.Close()
				return
			}
			if m.ID == wire.Extended && m.ExtID == 3 && fp.meta != nil {
				req, err := wire.ParseMetadataMsg(m.Data)
				if err == nil && req.Type == wire.MetadataRequest {
					piece, _ := metadata.Piece(fp.meta, req.Piece)
					fp.mu.Lock()
					fp.metaServed++
					fp.mu.Unlock()
					payload := wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataData, Piece: req.Piece, TotalSize: len(fp.meta), Data: piece})
					// Its ut_metadata id for us is ours (2), from our handshake.
					wmu.Lock()
					_, err = c.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Extended, ExtID: wire.ExtMetadataID, Data: payload}))
					wmu.Unlock()
					if err != nil {
						c.Close()
						return
					}
				}
				continue
			}
			if m.ID == wire.Request && fp.allowed != nil && !slices.Contains(fp.allowed, int(m.Index)) {
				wmu.Lock()
				_, err := c.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length}))
				wmu.Unlock()
				if err != nil {
					c.Close()
					return
				}
				continue
			}
			qmu.Lock()
			switch m.ID {
			case wire.Request:
				queue = append(queue, m)
			case wire.Cancel:
				for i, q := range queue {
					if q.Index == m.Index && q.Begin == m.Begin {
						queue = append(queue[:i], queue[i+1:]...)
						break
					}
				}
			}
			qmu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	n := 0
	for {
		qmu.Lock()
		var m wire.Message
		ok := len(queue) > 0
		if ok {
			m, queue = queue[0], queue[1:]
		}
		qmu.Unlock()
		if !ok {
			if _, alive := <-wake; !alive {
				return
			}
			continue
		}
		if fp.delay > 0 {
			time.Sleep(fp.delay)
		}
		off := int64(m.Index)*fp.pieceLen + int64(m.Begin)
		block := append([]byte(nil), fp.content[off:off+int64(m.Length)]...)
		if fp.corrupt {
			for i := range block {
				block[i] ^= 0x5a
			}
		}
		wmu.Lock()
		_, err := c.Write(wire.AppendMessage(nil, wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Data: block}))
		wmu.Unlock()
		if err != nil {
			return
		}
		fp.mu.Lock()
		fp.sent++
		fp.order = append(fp.order, int(m.Index))
		fp.mu.Unlock()
		n++
		if fp.closeAfter > 0 && n >= fp.closeAfter {
			return
		}
	}
}

// TestCorruptPeerBanned downloads from an honest libtorrent seeder and a
// peer that corrupts every block: the liar is banned, the data is right.
func TestCorruptPeerBanned(t *testing.T) {
	f := makeFixture(t, "corrupt", 32<<10, nil, 2<<20)
	bad := startFakePeer(t, "127.0.2.50", f, true, 0)
	honest := startSeeder(t, "127.0.2.51", f)
	c := newTestClient(t, "127.0.2.1", Config{})
	// The liar first, so that it gets requests before the honest peer.
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{bad.addr}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Let the liar serve alone until it is banned.
	for {
		if slices.Contains(tor.Banned(), bad.addr.Addr()) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("corrupt peer not banned after %d blocks; stats %+v", bad.blocksSent(), tor.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if tor.Stats().PiecesHave != 0 {
		t.Fatal("pieces from the corrupt peer were accepted")
	}
	tor.AddPeers(addrPort(t, honest.Addr), bad.addr)
	waitClosed(t, ctx, tor.Complete(), "download from the honest peer", tor)
	checkFiles(t, ctx, tor, f)
	var conns int
	for _, p := range tor.Peers() {
		if p.Addr.Addr() == bad.addr.Addr() {
			conns++
		}
	}
	if conns != 0 {
		t.Fatalf("still connected to the banned peer")
	}
}

// TestPeerDisconnectsMidPiece downloads from a peer that hangs up after a
// few blocks, in the middle of pieces, and an honest seeder: nothing is
// lost, nobody is banned.
func TestPeerDisconnectsMidPiece(t *testing.T) {
	f := makeFixture(t, "flaky", 64<<10, nil, 1<<20)
	flaky := startFakePeer(t, "127.0.2.52", f, false, 3)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{flaky.addr}, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for flaky.blocksSent() < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("flaky peer sent %d blocks", flaky.blocksSent())
		case <-time.After(10 * time.Millisecond):
		}
	}
	honest := startSeeder(t, "127.0.2.53", f)
	tor.AddPeers(addrPort(t, honest.Addr))
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
	if banned := len(tor.Banned()); banned != 0 {
		t.Fatalf("%d addresses banned after an honest disconnect", banned)
	}
	// Blocks received before each hang-up were kept, not fetched again:
	// only endgame duplicates may exceed the torrent's size.
	if st := tor.Stats(); st.Downloaded > f.mi.Info.TotalLength+16*wire.BlockSize {
		t.Fatalf("downloaded %d bytes for %d", st.Downloaded, f.mi.Info.TotalLength)
	}
}

// TestSeekMovesPriority reads the start of a file from a slow peer, then
// seeks far ahead: the new position's pieces must come before the rest of
// the abandoned window, whose requests are cancelled.
func TestSeekMovesPriority(t *testing.T) {
	f := makeFixture(t, "seek.bin", 16<<10, nil, 8<<20)
	slow := startFakePeer(t, "127.0.2.54", f, false, 0)
	slow.delay = 20 * time.Millisecond
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 4 << 20})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{slow.addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := f.fileData(0)
	buf := make([]byte, 32<<10)
	for off := int64(0); off < 128<<10; off += int64(len(buf)) {
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
	}
	// Let the rate estimate deepen the pipeline: many requests of the
	// window are then outstanding at the peer when we seek.
	time.Sleep(1200 * time.Millisecond)
	before := len(slow.served())
	seek := int64(7 << 20)
	n, err := r.ReadAt(ctx, buf, seek)
	if err != nil || !bytes.Equal(buf[:n], want[seek:seek+int64(n)]) {
		t.Fatalf("read after seek: n=%d err=%v", n, err)
	}
	target := int(seek / f.mi.Info.PieceLength)
	order := slow.served()
	lastPiece := f.mi.Info.NumPieces() - 1
	oldAfterSeek := 0
	for _, p := range order[before:] {
		if p == target {
			break
		}
		if p < target && p != 0 {
			oldAfterSeek++
		}
	}
	// Blocks already on the wire when the Cancel arrived may still come.
	if oldAfterSeek > 8 {
		t.Fatalf("%d pieces of the abandoned window came before the seek target (order after seek: %v)", oldAfterSeek, order[before:])
	}
	// A moment later, the abandoned window is not being fetched any more.
	time.Sleep(200 * time.Millisecond)
	late := slow.served()
	stale := 0
	for _, p := range late[len(order):] {
		if p < target && p != 0 && p != lastPiece {
			stale++
		}
	}
	if stale > 8 {
		t.Fatalf("%d pieces of the abandoned window fetched after the seek completed", stale)
	}
}

// TestReaderCloseDropsPriority: once the only reader closes, the pieces of
// its window stop being fetched.
func TestReaderCloseDropsPriority(t *testing.T) {
	f := makeFixture(t, "closed.bin", 16<<10, nil, 4<<20)
	slow := startFakePeer(t, "127.0.2.55", f, false, 0)
	slow.delay = 20 * time.Millisecond
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{slow.addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(ctx, make([]byte, 1000), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the window is being fetched
	r.Close()
	time.Sleep(200 * time.Millisecond) // blocks on the wire may still land
	n := len(slow.served())
	time.Sleep(500 * time.Millisecond)
	if more := len(slow.served()) - n; more > 2 {
		t.Fatalf("%d more blocks fetched after the reader closed", more)
	}
	if n >= f.mi.Info.NumPieces() {
		t.Fatal("the whole torrent was fetched")
	}
}

// TestAllowedFastWhileChoked reads from a peer that never unchokes us but
// allows one piece fast (BEP 6): that piece arrives; others are not
// requested from it.
func TestAllowedFastWhileChoked(t *testing.T) {
	f := makeFixture(t, "fast.bin", 64<<10, nil, 8*64<<10)
	fp := startFakePeer(t, "127.0.2.56", f, false, 0)
	fp.allowed = []int{5}
	c := newTestClient(t, "127.0.2.1", Config{MaxReadahead: 64 << 10})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{fp.addr}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	buf := make([]byte, 64<<10)
	if _, err := r.ReadAt(ctx, buf, 5*64<<10); err != nil {
		t.Fatalf("reading the allowed-fast piece from a choking peer: %v", err)
	}
	if !bytes.Equal(buf, f.fileData(0)[5*64<<10:6*64<<10]) {
		t.Fatal("wrong bytes")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := r.ReadAt(short, buf, 2*64<<10); err == nil {
		t.Fatal("read a piece the choking peer does not allow")
	}
	for _, p := range fp.served() {
		if p != 5 {
			t.Fatalf("the choking peer served piece %d", p)
		}
	}
}
