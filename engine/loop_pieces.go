package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// Events posted by the disk workers.
type (
	blockWritten struct {
		piece int
		err   error
	}
	pieceHashed struct {
		piece int
		err   error
	}
)

// maxAllowedIn caps the allowed-fast pieces we remember per peer (BEP 6
// suggests sets of about 10).
const maxAllowedIn = 32

// pipeline returns how many requests to keep outstanding at p: about one
// second of data at its measured rate, bounded.
func (ls *loopState) pipeline(p *peer) int {
	d := int(p.downRate/wire.BlockSize) + minPipeline
	d = min(max(d, minPipeline), maxPipeline)
	if p.ext != nil && p.ext.Reqq > 0 {
		d = min(d, p.ext.Reqq)
	}
	return d
}

// fillRequests tops up the request pipelines of the peers marked for it.
func (ls *loopState) fillRequests() {
	if ls.pk == nil || ls.paused {
		clear(ls.refill)
		ls.refillAll = false
		return
	}
	if ls.writing >= maxWriting {
		return // refilled when writes complete
	}
	ls.pk.SetClock(time.Now())
	if ls.refillAll {
		for p := range ls.peers {
			ls.fillPeer(p)
		}
	} else {
		for p := range ls.refill {
			ls.fillPeer(p)
		}
	}
	clear(ls.refill)
	ls.refillAll = false
}

func (ls *loopState) fillPeer(p *peer) {
	if p.removed || !p.amInterested {
		return
	}
	choked := p.peerChoking
	if choked && (!p.hs.fast || len(p.allowedIn) == 0) {
		return
	}
	depth := ls.pipeline(p)
	out := ls.pk.Outstanding(p.id)
	if out >= depth {
		return
	}
	var reqs []picker.Request
	if choked {
		// BEP 6: a choking peer still serves its allowed-fast pieces.
		reqs = ls.pk.PickAllowed(p.id, depth-out, p.allowedIn)
	} else {
		reqs = ls.pk.Pick(p.id, depth-out)
	}
	if len(reqs) == 0 {
		return
	}
	now := time.Now()
	ms := make([]wire.Message, 0, len(reqs))
	for _, r := range reqs {
		if len(p.reqSent) == 0 {
			p.lastPiece = now // the request timeout counts from here
		}
		if _, again := p.reqSent[r]; again {
			p.supersede(r, now) // sent before, timed out, not answered yet
		}
		p.reqSent[r] = now
		ms = append(ms, wire.Message{ID: wire.Request, Index: uint32(r.Piece), Begin: uint32(r.Begin), Length: uint32(r.Length)})
	}
	p.send(ms...)
}

// cancelUnwanted sends Cancel for requests of pieces no longer wanted.
func (ls *loopState) cancelUnwanted() {
	if ls.pk == nil {
		return
	}
	for _, pr := range ls.pk.CancelUnwanted() {
		ls.sendCancel(pr)
	}
}

// sendCancel cancels one request at a peer. The send becomes stale: a block
// already on its way, or the peer's BEP 6 reject of the cancelled request,
// is then no protocol violation, even if we request the block again.
func (ls *loopState) sendCancel(pr picker.PeerRequest) {
	q := ls.byID[pr.Peer]
	if q == nil || q.removed {
		return
	}
	if _, ok := q.reqSent[pr.Request]; ok {
		delete(q.reqSent, pr.Request)
		q.supersede(pr.Request, time.Now())
	}
	q.send(wire.Message{ID: wire.Cancel, Index: uint32(pr.Piece), Begin: uint32(pr.Begin), Length: uint32(pr.Length)})
}

// supersede records one more unanswered send of r that no longer counts as
// the live request.
func (p *peer) supersede(r picker.Request, now time.Time) {
	s := p.stale[r]
	p.stale[r] = staleSend{n: s.n + 1, at: now}
}

// answered matches a block or reject for r from p to what we sent: a stale
// send first (answers come in order), else the live request. It reports
// whether anything matched and whether it was the live request.
func (p *peer) answered(r picker.Request) (ok, live bool) {
	if s, found := p.stale[r]; found {
		if s.n <= 1 {
			delete(p.stale, r)
		} else {
			p.stale[r] = staleSend{n: s.n - 1, at: s.at}
		}
		return true, false
	}
	if _, found := p.reqSent[r]; found {
		delete(p.reqSent, r)
		return true, true
	}
	return false, false
}

// onPiece validates a received block and hands it to a disk worker.
func (ls *loopState) onPiece(p *peer, m wire.Message) {
	r := picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: len(m.Data)}
	if r.Piece >= ls.info.NumPieces() {
		ls.dropPeer(p, fmt.Sprintf("block for piece %d of %d", r.Piece, ls.info.NumPieces()))
		return
	}
	if ok, _ := p.answered(r); !ok {
		ls.dropPeer(p, fmt.Sprintf("block we did not request (piece %d begin %d length %d)", r.Piece, r.Begin, r.Length))
		return
	}
	// A block answering a cancelled send is still used if we lack it.
	p.lastPiece = time.Now()
	ls.refill[p] = true
	rc := ls.pk.Received(p.id, r)
	for _, c := range rc.Cancels {
		ls.sendCancel(c)
	}
	if !rc.New {
		putBlock(m.Data) // a duplicate, or for a piece we have
	} else {
		ips := ls.contrib[r.Piece]
		if ips == nil {
			ips = make(map[netip.Addr]bool, 1)
			ls.contrib[r.Piece] = ips
		}
		ips[p.addr.Addr()] = true
		ls.writes[r.Piece]++
		ls.writing++
		ls.writeBlock(r.Piece, r.Begin, m.Data)
	}
	if rc.PieceReady {
		ls.ready[r.Piece] = true
		ls.maybeHash(r.Piece)
	}
}

// pieceWriter writes the received blocks of one piece to the cache one at
// a time, in the order they arrived. Blocks of a piece mostly arrive in
// order, and the cache hashes in-order blocks as they are written, while
// they are in the CPU cache; written concurrently they would race, break
// that order, and make FinishPiece read the piece back from disk.
type pieceWriter struct {
	mu      sync.Mutex
	queue   []queuedBlock
	running bool
}

type queuedBlock struct {
	begin int
	data  []byte
}

// writeBlock queues a block for its piece's writer goroutine, starting one
// when none runs. Each written block posts blockWritten.
func (ls *loopState) writeBlock(piece, begin int, data []byte) {
	w := ls.writers[piece]
	if w == nil {
		w = &pieceWriter{}
		ls.writers[piece] = w
	}
	w.mu.Lock()
	w.queue = append(w.queue, queuedBlock{begin, data})
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if !start {
		return
	}
	st, t := ls.store, ls.t
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			w.mu.Lock()
			b := w.queue[0]
			w.queue[0] = queuedBlock{}
			w.queue = w.queue[1:]
			w.mu.Unlock()
			err := st.WriteBlock(piece, b.begin, b.data)
			putBlock(b.data) // the cache has copied it
			w.mu.Lock()
			more := len(w.queue) > 0
			w.running = more
			w.mu.Unlock()
			select {
			case t.events <- blockWritten{piece: piece, err: err}:
			case <-t.closing:
				return
			}
			if !more {
				return
			}
		}
	}()
}

func (ls *loopState) onBlockWritten(ev blockWritten) {
	if ls.writing == maxWriting {
		ls.refillAll = true // requests were held back
	}
	ls.writing--
	ls.writes[ev.piece]--
	if ls.writes[ev.piece] <= 0 {
		delete(ls.writes, ev.piece)
		delete(ls.writers, ev.piece) // its goroutine is done with it
	}
	if ev.err != nil {
		ls.t.log.Warn("writing block to the cache", "piece", ev.piece, "err", ev.err)
		ls.writeFailed(ev.piece)
	}
	ls.maybeHash(ev.piece)
}

// writeFailed remembers a piece whose staged blocks are incomplete.
func (ls *loopState) writeFailed(piece int) {
	if ls.failedWrites == nil {
		ls.failedWrites = make(map[int]bool)
	}
	ls.failedWrites[piece] = true
}

// maybeHash starts verifying a piece once all its blocks are written.
func (ls *loopState) maybeHash(piece int) {
	if !ls.ready[piece] || ls.writes[piece] > 0 || ls.hashing[piece] {
		return
	}
	delete(ls.ready, piece)
	if ls.failedWrites[piece] {
		delete(ls.failedWrites, piece)
		delete(ls.contrib, piece)
		ls.pk.PieceFailed(piece) // no blame: the disk failed, not the peers
		ls.refillAll = true
		return
	}
	ls.hashing[piece] = true
	st, t := ls.store, ls.t
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := st.FinishPiece(piece)
		select {
		case t.events <- pieceHashed{piece: piece, err: err}:
		case <-t.closing:
		}
	}()
}

func (ls *loopState) onPieceHashed(ev pieceHashed) {
	delete(ls.hashing, ev.piece)
	i := ev.piece
	defer delete(ls.contrib, i)
	switch {
	case ev.err == nil:
		ls.credit(ls.contrib[i])
		ls.pk.PieceComplete(i)
		ls.announceHave(i)
		ls.checkComplete()
	case errors.Is(ev.err, cache.ErrHashMismatch):
		ls.pk.PieceFailed(i)
		ls.blame(i, ls.contrib[i])
		ls.refillAll = true
	default:
		ls.t.log.Warn("verifying piece", "piece", i, "err", ev.err) // not the peers' fault
		ls.pk.PieceFailed(i)
		ls.refillAll = true
	}
}

// announceHave tells peers about a new piece and updates our interest.
func (ls *loopState) announceHave(i int) {
	for p := range ls.peers {
		if p.have.Len() > 0 && p.have.Get(i) {
			ls.updateInterest(p)
			continue
		}
		p.send(wire.Message{ID: wire.Have, Index: uint32(i)})
		ls.updateInterest(p)
	}
}

// checkTimeouts returns requests that a peer sits on to the pool.
func (ls *loopState) checkTimeouts(p *peer, now time.Time) {
	if ls.pk == nil {
		return
	}
	if out := ls.pk.Outstanding(p.id); out > 0 {
		idle := now.Sub(p.lastPiece)
		switch {
		case idle > requestTimeout:
			for _, r := range ls.pk.Requests(p.id) {
				ls.pk.TimedOut(p.id, r)
			}
			ls.refillAll = true
			p.log.Debug("requests timed out")
		case idle > nowTimeout:
			// A reader is blocked on these: let other peers have them.
			for _, r := range ls.pk.Requests(p.id) {
				if ls.pk.Priority(r.Piece) == picker.Now {
					ls.pk.TimedOut(p.id, r)
					ls.refillAll = true
				}
			}
		}
	}
	for r, at := range p.reqSent {
		if now.Sub(at) > 3*requestTimeout {
			delete(p.reqSent, r)
		}
	}
	for r, s := range p.stale {
		if now.Sub(s.at) > 3*requestTimeout {
			delete(p.stale, r) // a peer without BEP 6 may drop cancelled requests silently
		}
	}
}

// whyMissing explains why piece i is not here yet, for reader errors.
func (ls *loopState) whyMissing(i int) string {
	switch {
	case ls.info == nil:
		return fmt.Sprintf("metadata not received yet (%d peers)", len(ls.peers))
	case ls.paused:
		return "torrent paused"
	case len(ls.peers) == 0:
		return fmt.Sprintf("no peers (%d addresses known, %d connecting)", len(ls.known), ls.halfOpen)
	case i < 0 || i >= ls.info.NumPieces():
		return fmt.Sprintf("piece %d out of range", i)
	}
	n := ls.pk.Availability(i)
	if n == 0 {
		return fmt.Sprintf("no connected peer has piece %d (%d peers)", i, len(ls.peers))
	}
	unchoked := 0
	for p := range ls.peers {
		if p.have.Len() > 0 && p.have.Get(i) && !p.peerChoking {
			unchoked++
		}
	}
	if unchoked == 0 {
		return fmt.Sprintf("piece %d: all %d peers that have it choke us", i, n)
	}
	return fmt.Sprintf("piece %d still downloading from %d peers", i, unchoked)
}
