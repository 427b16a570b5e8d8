package engine

import (
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// maxAllowedIn caps the allowed-fast pieces we remember per peer (BEP 6
// suggests sets of about 10).
const maxAllowedIn = 32

// pipeline returns how many requests to keep outstanding at p (see
// pipeEst.depth).
func (ls *loopState) pipeline(p *peer) int {
	d := p.pipe.depth(p.downRate.value)
	if p.ext != nil && p.ext.Reqq > 0 {
		d = min(d, p.ext.Reqq)
	}
	return d
}

// setLateTimes gives the picker the time after which each peer's blocks
// are late (pipeEst.dupAfter, pipeEst.queueTime). A peer no block came
// from yet gets twice the least round trip the others show rather than
// picker.NowDuplicateAfter: right after connecting, a rate-limited
// seeder may send nothing until its next bandwidth tick (libtorrent: up
// to 0.5 s), and the first piece a read waits on is then taken over by
// the peers that did answer.
func (ls *loopState) setLateTimes() {
	var least time.Duration
	for p := range ls.conns.peers {
		if r := p.pipe.rtt; r > 0 && (least == 0 || r < least) {
			least = r
		}
	}
	for p := range ls.conns.peers {
		d := p.pipe.dupAfter(p.downRate.value)
		if d == 0 && least > 0 {
			d = min(max(2*least, minDupAfter), maxDupAfter)
		}
		ls.pk.SetDuplicateAfter(p.id, d)
		ls.pk.SetQueueTime(p.id, p.pipe.queueTime(p.downRate.value))
	}
}

// fillRequests tops up the request pipelines of the peers marked for it.
func (ls *loopState) fillRequests() {
	if ls.pk == nil || ls.paused {
		ls.conns.clearRefill()
		return
	}
	if ls.disk.Full() {
		return // refilled when writes complete
	}
	if ls.faultHolds(time.Now()) {
		ls.conns.clearRefill()
		return // the cache cannot store pieces; retried after a backoff
	}
	ls.gatePrefetch()
	ls.pk.SetClock(time.Now())
	ls.setShares()
	ls.setLateTimes()
	if ls.conns.refillAll {
		for p := range ls.conns.peers {
			ls.fillPeer(p)
		}
	} else {
		for p := range ls.conns.refill {
			ls.fillPeer(p)
		}
	}
	ls.conns.clearRefill()
	ls.armLate()
}

// lateGap is the least time between two wake-ups of the late timer: the
// blocks queued at one peer become late a block's transfer apart (5 ms
// at 3 MB/s), and each wake-up refills every peer.
const lateGap = 10 * time.Millisecond

// armLate sets the loop's late timer for the next block of a waiting read
// to become late (picker.NextLate), lateGap from now at the soonest.
func (ls *loopState) armLate() {
	now := time.Now()
	ls.pk.SetClock(now)
	at, ok := ls.pk.NextLate()
	switch {
	case !ok:
		at = time.Time{}
	case at.Before(now.Add(lateGap)):
		at = now.Add(lateGap)
	}
	ls.late.set(at, now)
}

// setShares gives the picker each peer's weight when a piece a read waits
// on is split among peers (picker.SetShare): the rate it delivers at,
// the mean of the known rates for a peer whose rate is not known yet (1
// when none is), and 0 for a peer we cannot ask now.
func (ls *loopState) setShares() {
	var sum float64
	n := 0
	for p := range ls.conns.peers {
		if r := p.shareRate(); r > 0 {
			sum += r
			n++
		}
	}
	unknown := 1.0
	if n > 0 {
		unknown = sum / float64(n)
	}
	for p := range ls.conns.peers {
		w := p.shareRate()
		switch {
		case p.removed || !p.amInterested || (p.peerChoking && (!p.hs.fast || len(p.allowedIn) == 0)):
			w = 0
		case w == 0:
			w = unknown
		}
		ls.pk.SetShare(p.id, w)
	}
}

// shareRate is the rate p delivers at: the loop's smoothed rate, or
// before it has one the rate its recent blocks show (a burst-prone
// sample: a rate-limited libtorrent seeder sends its quota in bursts);
// 0 when neither is known.
func (p *peer) shareRate() float64 {
	if p.downRate.value > 0 {
		return p.downRate.value
	}
	return p.pipe.rate
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
	if ls.pk.Priority(reqs[0].Piece) == picker.Now {
		// The timeline of a waiting read, for -v.
		p.log.Debug("requests for a waiting read", "n", len(reqs), "piece", reqs[0].Piece,
			"begin", reqs[0].Begin, "outstanding", out, "depth", depth, "choked", choked)
	}
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
	q := ls.conns.get(pr.Peer)
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

// onPiece validates a received block and hands it to the disk pipeline.
func (ls *loopState) onPiece(p *peer, m wire.Message) {
	r := picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: len(m.Data)}
	if n := ls.info().NumPieces(); r.Piece >= n {
		ls.dropPeer(p, fmt.Sprintf("block for piece %d of %d", r.Piece, n))
		return
	}
	sent := p.reqSent[r] // answered forgets it
	ok, live := p.answered(r)
	if !ok {
		ls.dropPeer(p, fmt.Sprintf("block we did not request (piece %d begin %d length %d)", r.Piece, r.Begin, r.Length))
		return
	}
	if !live {
		sent = time.Time{} // it answers an earlier, superseded send
	}
	// A block answering a cancelled send is still used if we lack it.
	p.lastPiece = time.Now()
	p.pipe.block(p.lastPiece, sent, len(m.Data))
	ls.conns.wantRefill(p)
	rc := ls.pk.Received(p.id, r)
	for _, c := range rc.Cancels {
		ls.sendCancel(c)
	}
	if !rc.New {
		putBlock(m.Data) // a duplicate, or for a piece we have
	} else {
		ls.disk.Received(r.Piece, r.Begin, m.Data, p.addr.Addr())
	}
	if rc.PieceReady {
		ls.applyDisk(ls.disk.Ready(r.Piece))
	}
}

func (ls *loopState) onBlockWritten(ev blockWritten) {
	switch {
	case ev.err == nil:
	case isDiskFault(ev.err):
		ls.onDiskFault(ev.err, time.Now())
	default:
		ls.t.log.Debug("writing block to the cache", "piece", ev.piece, "err", ev.err)
	}
	ls.applyDisk(ls.disk.Written(ev))
}

// applyDisk does what a step of the disk pipeline decided.
func (ls *loopState) applyDisk(o diskOutcome) {
	if o.unblocked {
		ls.conns.refillAll = true // requests were held back
	}
	i := o.piece
	switch o.kind {
	case outcomeVerified:
		ls.book.Credit(o.from)
		if len(o.from) == 1 {
			ls.setParole(o.from[0], false)
		}
		for _, ip := range o.liars {
			ls.ban(ip, "sent a block that differs from the verified piece")
		}
		if ls.fault.backoff != 0 {
			ls.faultStored()
		}
		if !ls.store().Has(i) {
			// Verified and then evicted before this outcome arrived: its
			// eviction may already have been handled, so the picker must
			// not count it as had (it would never be fetched again and
			// we would announce a piece we cannot serve). A later
			// eviction of a piece still present is handled as usual.
			ls.pk.PieceComplete(i) // ends its download
			ls.pk.SetHave(i, false)
			ls.pk.SetSpent(i, true) // evicted: see onEvicted
			ls.conns.refillAll = true
			break
		}
		if ls.pk.Priority(i) == picker.Now {
			ls.t.log.Debug("piece verified for a waiting read", "piece", i, "from", o.from)
		}
		ls.pk.PieceComplete(i)
		ls.webSeedHave(i)
		ls.announceHave(i)
		ls.checkComplete()
		ls.dirty = true
	case outcomeHashFailed:
		ls.tally.hashFailed++
		ls.pk.PieceFailed(i)
		if len(o.from) == 1 {
			ls.blame(i, o.from) // it sent the whole piece: it lied
		} else {
			// One of them lied: the piece is fetched again and its
			// blocks compared (diskPipe); meanwhile each gets whole
			// pieces alone, so that its next bad piece names it.
			ls.t.log.Info("piece from several peers failed the hash check; they are on parole", "piece", i, "ips", o.from)
			for _, ip := range o.from {
				ls.setParole(ip, true)
			}
		}
		ls.conns.refillAll = true
	case outcomeLost:
		switch {
		case isDiskFault(o.err):
			ls.onDiskFault(o.err, time.Now())
		case o.err != nil:
			ls.t.log.Debug("verifying piece", "piece", i, "err", o.err) // not the peers' fault
		}
		ls.pk.PieceFailed(i) // no blame: the disk failed, not the peers
		ls.conns.refillAll = true
	}
}

// announceHave tells peers about a new piece and updates our interest.
func (ls *loopState) announceHave(i int) {
	for p := range ls.conns.peers {
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
			ls.conns.refillAll = true
			p.log.Debug("requests timed out")
		case idle > nowTimeout:
			// A reader is blocked on these: let other peers have them.
			for _, r := range ls.pk.Requests(p.id) {
				if ls.pk.Priority(r.Piece) == picker.Now {
					ls.pk.TimedOut(p.id, r)
					ls.conns.refillAll = true
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
	info := ls.info()
	switch {
	case info == nil:
		return fmt.Sprintf("metadata not received yet (%d peers)", ls.conns.len())
	case ls.paused:
		return "torrent paused"
	case ls.conns.len() == 0:
		return fmt.Sprintf("no peers (%d addresses known, %d connecting)%s", ls.book.Len(), ls.conns.halfOpen, ls.webSeedsWhy())
	case i < 0 || i >= info.NumPieces():
		return fmt.Sprintf("piece %d out of range", i)
	}
	n := ls.pk.Availability(i)
	if n == 0 {
		return fmt.Sprintf("no connected peer has piece %d (%d peers)", i, ls.conns.len())
	}
	unchoked := 0
	for p := range ls.conns.peers {
		if p.have.Len() > 0 && p.have.Get(i) && !p.peerChoking {
			unchoked++
		}
	}
	if unchoked == 0 {
		return fmt.Sprintf("piece %d: all %d peers that have it choke us", i, n)
	}
	return fmt.Sprintf("piece %d still downloading from %d peers", i, unchoked)
}
