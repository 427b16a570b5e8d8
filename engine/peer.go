package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/ratelimit"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/engine/internal/wire/bitfield"
)

// peer is one connection. The reader and writer goroutines own the socket's
// two directions; the torrent loop owns the fields marked "loop".
type peer struct {
	t        *Torrent
	conn     net.Conn
	lim      *ratelimit.Conn // the rate-limited connection beneath conn, or nil
	addr     netip.AddrPort
	hs       handshakeResult
	outgoing bool
	source   PeerSource // where we learned of it; SourceIncoming when it dialed us
	log      *slog.Logger
	id       picker.PeerID
	since    time.Time

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error // set once by close; read only after calling close

	// down and up count payload bytes; written by the reader and writer
	// (with the torrent's counters, see count), read by the loop.
	down, up atomic.Int64

	mu          sync.Mutex // guards queue, queuedBytes and serve
	queue       []wire.Message
	queuedBytes int              // memory held by queue, see queueCost
	serve       []picker.Request // requests of the peer we will answer, in order
	wake        chan struct{}    // cap 1: the writer has work

	// loop state
	amChoking, amInterested     bool
	peerChoking, peerInterested bool
	have                        bitfield.Bitfield // valid once info is known
	rawBitfield                 []byte            // bitfield received before info
	rawHaves                    []int             // haves received before info
	haveAll                     bool
	seenHave                    bool // got a bitfield/have all/have none
	ext                         *wire.ExtHandshake
	metaClaim                   int            // the first metadata_size it claimed; 0 for none
	listen                      netip.AddrPort // where the peer accepts connections, if known
	allowedOut                  map[int]bool   // pieces the peer may request while we choke it
	allowedIn                   []int          // pieces we may request while it chokes us (BEP 6), capped
	downRate, upRate            rate
	usefulAt                    time.Time // connected, or last moved payload (at a tick)
	wantedAt                    time.Time // last time we wanted a piece it has (updateInterest)
	lastPiece                   time.Time // last block received
	reqSent                     map[picker.Request]time.Time
	pipe                        pipeEst // round trip and rate, for pipeline depth and duplicates
	// stale counts sends of a request whose answer (a block, or a BEP 6
	// reject) may still come although the request was cancelled or sent
	// again: answers arrive in order, so they are matched to stale sends first.
	stale   map[picker.Request]staleSend
	removed bool
	urgent  bool // lim reads in the Urgent class (updateReadClasses)
}

// staleSend is the number of unanswered superseded sends of one request and
// when the last was superseded.
type staleSend struct {
	n  int
	at time.Time
}

func newPeer(t *Torrent, conn net.Conn, hs handshakeResult, outgoing bool, id picker.PeerID) *peer {
	addr, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	now := time.Now()
	return &peer{
		t: t, conn: conn, lim: limitedConn(conn), addr: addr, hs: hs, outgoing: outgoing, id: id,
		log:         t.log.With("peer", addr.String()),
		since:       now,
		usefulAt:    now,
		closed:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
		amChoking:   true,
		peerChoking: true,
		reqSent:     make(map[picker.Request]time.Time),
		stale:       make(map[picker.Request]staleSend),
	}
}

// String returns the peer's address, for logs.
func (p *peer) String() string { return p.addr.String() }

// start runs the reader and writer goroutines.
func (p *peer) start() {
	p.t.wg.Add(2)
	go func() {
		defer p.t.wg.Done()
		p.readLoop()
	}()
	go func() {
		defer p.t.wg.Done()
		p.writeLoop()
	}()
}

// close shuts the connection down once; both goroutines then end.
func (p *peer) close(err error) {
	p.closeOnce.Do(func() {
		p.closeErr = err
		close(p.closed)
		p.conn.Close()
	})
}

// maxSendQueueBytes caps the memory of the messages queued for one peer's
// writer. A peer that keeps asking (requests we reject, ut_metadata pieces)
// while it does not read what we send would otherwise make us queue
// without end: it is disconnected instead.
const maxSendQueueBytes = 4 << 20

// queueCost is the memory a queued message holds: the Message itself and
// its payload.
func queueCost(m wire.Message) int { return int(unsafe.Sizeof(m)) + len(m.Data) }

// send queues messages for the writer. It never blocks. When the queue
// would pass maxSendQueueBytes the peer is closed instead (the loop then
// removes it with that reason).
func (p *peer) send(ms ...wire.Message) {
	n := 0
	for _, m := range ms {
		n += queueCost(m)
	}
	p.mu.Lock()
	over := p.queuedBytes+n > maxSendQueueBytes
	if !over {
		p.queue = append(p.queue, ms...)
		p.queuedBytes += n
	}
	queued := p.queuedBytes
	p.mu.Unlock()
	if over {
		p.close(fmt.Errorf("send queue over %d bytes (%d queued): the peer does not read", maxSendQueueBytes, queued))
		return
	}
	p.poke()
}

func (p *peer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// queueServe queues a block request of the peer for the writer to answer.
func (p *peer) queueServe(r picker.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.serve) >= maxServeQueue {
		return false
	}
	p.serve = append(p.serve, r)
	p.poke()
	return true
}

// cancelServe drops a queued request of the peer (its Cancel).
func (p *peer) cancelServe(r picker.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.serve {
		if s == r {
			p.serve = append(p.serve[:i], p.serve[i+1:]...)
			return true
		}
	}
	return false
}

// clearServe drops every queued request of the peer (we choked it) and
// returns them.
func (p *peer) clearServe() []picker.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.serve
	p.serve = nil
	return s
}

// maxServeQueue caps the requests of one peer we hold; more are rejected.
const maxServeQueue = 512

// Events posted by peer goroutines to the torrent loop.
type (
	peerMsg struct {
		p *peer
		m wire.Message // Data owned by the event
	}
	// peerGone says the reader ended; err is why the connection closed.
	peerGone struct {
		p   *peer
		err error
	}
	// peerExtHandshake is a peer's BEP 10 handshake, decoded by its reader.
	peerExtHandshake struct {
		p *peer
		h wire.ExtHandshake
	}
	// peerBroke reports a peer its reader found breaking the protocol or
	// over its share; the loop drops it with the reason.
	peerBroke struct {
		p      *peer
		reason string
	}
	// peerServed reports a block the writer could not serve (evicted).
	peerServeFailed struct {
		p *peer
		r picker.Request
	}
)

// post delivers an event to the loop unless the peer or torrent is gone.
func (p *peer) post(ev any) bool {
	select {
	case p.t.events <- ev:
		return true
	case <-p.closed:
		return false
	case <-p.t.closing:
		return false
	}
}

// readLoop reads messages until the connection fails.
func (p *peer) readLoop() {
	defer func() {
		// Tell the loop the peer is gone even when it was closed by the
		// loop itself; the loop ignores the second notice. The reason is
		// read after close: its Once orders the first closer's write
		// before this read, whichever goroutine closed first.
		p.close(nil)
		select {
		case p.t.events <- peerGone{p, p.closeErr}:
		case <-p.t.closing:
		}
	}()
	br := bufio.NewReaderSize(p.conn, 64<<10)
	buf := make([]byte, 32<<10)
	maxLen := uint32(wire.DefaultMaxMessageLen)
	extLimit := newTokenBucket(extHandshakeBurst, extHandshakeEvery, time.Now())
	bitfieldLimit := newTokenBucket(bitfieldBurst, bitfieldEvery, time.Now())
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(idleTimeout))
		m, err := wire.ReadMessageInto(br, maxLen, buf, getBlock)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("connection closed by peer")
			}
			p.close(fmt.Errorf("read: %w", err))
			return
		}
		if m.Keepalive || !m.ID.Known() || (m.ID == wire.Extended && p.hs.ext && !advertisedExt(m.ExtID)) {
			// BEP 3 and 10: ignore messages and extensions we do not know,
			// here, without copying them (up to 1 MiB each) to the loop.
			continue
		}
		// Large control messages are checked (and extension handshakes
		// decoded) here, at the sender's cost: what goes to the loop is
		// small.
		var bad error
		switch {
		case m.ID == wire.Bitfield:
			// Some clients (aria2) send their bitfield again; a
			// peer that keeps sending large ones is dropped.
			if !bitfieldLimit.take(time.Now()) {
				bad = errBitfieldFlood
			}
		case m.ID == wire.Extended && p.hs.ext && m.ExtID == wire.ExtHandshakeID:
			if !extLimit.take(time.Now()) {
				bad = errExtFlood
				break
			}
			h, err := wire.ParseExtHandshake(m.Data)
			if err != nil {
				bad = err
				break
			}
			if !p.post(peerExtHandshake{p, h}) {
				return
			}
			continue
		case m.ID == wire.Extended && p.hs.ext && m.ExtID == wire.ExtMetadataID && len(m.Data) > wire.MaxMetadataMsgLen:
			bad = fmt.Errorf("ut_metadata message of %d bytes, over the cap of %d", len(m.Data), wire.MaxMetadataMsgLen)
		case m.ID == wire.Extended && p.hs.ext && m.ExtID == wire.ExtPexID && len(m.Data) > wire.MaxPexMessageLen:
			bad = fmt.Errorf("ut_pex message of %d bytes, over the cap of %d", len(m.Data), wire.MaxPexMessageLen)
		}
		if bad != nil {
			p.post(peerBroke{p, bad.Error()})
			p.close(bad)
			return
		}
		if m.ID == wire.Piece {
			p.countDown(len(m.Data))
		}
		if len(m.Data) > 0 && m.ID != wire.Piece { // a block has its own buffer
			m.Data = append(make([]byte, 0, len(m.Data)), m.Data...)
		}
		if !p.post(peerMsg{p, m}) {
			return
		}
	}
}

// countDown and countUp count payload bytes received from and sent to the
// peer, for the peer and for its torrent.
func (p *peer) countDown(n int) {
	p.down.Add(int64(n))
	p.t.bytes.down.Add(int64(n))
}

func (p *peer) countUp(n int) {
	if n > 0 {
		p.up.Add(int64(n))
		p.t.bytes.up.Add(int64(n))
	}
}

// advertisedExt reports whether id is one of the extension ids our
// extension handshake gives out (or the handshake itself).
func advertisedExt(id uint8) bool {
	return id == wire.ExtHandshakeID || id == wire.ExtMetadataID || id == wire.ExtPexID || id == extHolepunchID
}

// blockPool recycles the buffers that received blocks of the usual size
// travel in, from a peer's reader to the piece's disk writer, so that a
// download does not allocate (and clear) one per block.
var blockPool = sync.Pool{New: func() any { return new([wire.BlockSize]byte) }}

// getBlock returns a buffer for a received block of n bytes: from the pool
// for full-size blocks.
func getBlock(n int) []byte {
	if n == wire.BlockSize {
		return blockPool.Get().(*[wire.BlockSize]byte)[:]
	}
	return make([]byte, n)
}

// putBlock returns the buffer of a received block once nothing refers to
// it any more (written to the cache, or not needed).
func putBlock(b []byte) {
	if len(b) == wire.BlockSize && cap(b) == wire.BlockSize {
		blockPool.Put((*[wire.BlockSize]byte)(b))
	}
}

// writeLoop writes queued messages and served blocks, and keep-alives when
// idle.
func (p *peer) writeLoop() {
	ka := time.NewTimer(keepAliveEvery)
	defer ka.Stop()
	var out []byte
	block := make([]byte, wire.BlockSize)
	for {
		select {
		case <-p.closed:
			return
		case <-p.t.closing:
			p.close(errors.New("torrent closing"))
			return
		case <-ka.C:
			out = append(out[:0], 0, 0, 0, 0)
			if err := p.write(out); err != nil {
				return
			}
			ka.Reset(keepAliveEvery)
			continue
		case <-p.wake:
		}
		for {
			p.mu.Lock()
			q := p.queue
			p.queue, p.queuedBytes = nil, 0
			var r picker.Request
			serving := len(q) == 0 && len(p.serve) > 0
			if serving {
				r = p.serve[0]
				p.serve = p.serve[1:]
			}
			p.mu.Unlock()
			if len(q) == 0 && !serving {
				break
			}
			out = out[:0]
			for _, m := range q {
				out = wire.AppendMessage(out, m)
			}
			sent := 0 // block bytes in out
			if serving {
				if r.Length > len(block) {
					block = make([]byte, r.Length)
				}
				st := p.t.storeOrNil()
				ok := st != nil && p.readBlock(st, r, block[:r.Length])
				if ok {
					out = wire.AppendMessage(out, wire.Message{ID: wire.Piece, Index: uint32(r.Piece), Begin: uint32(r.Begin), Data: block[:r.Length]})
					sent = r.Length
				} else if !p.post(peerServeFailed{p, r}) {
					return
				}
			}
			if len(out) > 0 {
				// Count the block before writing it: once the write
				// returns, the peer may have it, hang up, and be removed
				// (its counter read for the last time) before we get here.
				p.countUp(sent)
				p.setWriteClass(sent > 0)
				if err := p.write(out); err != nil {
					return
				}
			}
			ka.Reset(keepAliveEvery)
		}
	}
}

// readBlock reads a verified block from the cache (which protects the
// piece from eviction while it reads).
func (p *peer) readBlock(st *cache.Store, r picker.Request, dst []byte) bool {
	return st.ReadBlock(r.Piece, r.Begin, dst) == nil
}

// setWriteClass makes a write that carries a served block wait for upload
// tokens in the Normal class and one of protocol messages only (our
// requests among them) in the Urgent class, so that seeding under a
// saturated upload cap does not hold back what a reader waits for.
func (p *peer) setWriteClass(block bool) {
	if p.lim == nil {
		return
	}
	if block {
		p.lim.SetWriteClass(ratelimit.Normal)
	} else {
		p.lim.SetWriteClass(ratelimit.Urgent)
	}
}

func (p *peer) write(b []byte) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := p.conn.Write(b); err != nil {
		p.close(fmt.Errorf("write: %w", err))
		return err
	}
	return nil
}
