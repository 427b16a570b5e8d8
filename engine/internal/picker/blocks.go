package picker

import (
	"cmp"
	"slices"
	"time"
)

// removeReq forgets that block b of piece i is outstanding at ps, returning
// the block to the pool when no other peer has it outstanding. It reports
// whether the request was outstanding.
func (p *Picker) removeReq(ps *peerState, i, b int) bool {
	id := p.blockID(i, b)
	if _, ok := ps.reqs[id]; !ok {
		return false
	}
	delete(ps.reqs, id)
	d := p.dl[i]
	if d == nil {
		return true
	}
	blk := &d.blocks[b]
	if k := slices.Index(blk.reqs, ps.id); k >= 0 {
		blk.reqs = slices.Delete(blk.reqs, k, k+1)
	}
	if !blk.recv && len(blk.reqs) == 0 {
		p.adjustFree(i, +1)
		if d.nfree == len(d.blocks) {
			// Nothing requested or received: forget the piece's blocks so
			// that active only holds pieces in progress.
			p.dropDownload(i)
		}
	}
	return true
}

// addReq records that block b of piece i is outstanding at ps.
func (p *Picker) addReq(ps *peerState, i, b int) {
	d := p.startDownload(i)
	blk := &d.blocks[b]
	if len(blk.reqs) == 0 {
		p.adjustFree(i, -1)
	}
	blk.at, blk.ahead = p.now, int32(len(ps.reqs))
	blk.reqs = append(blk.reqs, ps.id)
	d.owner = ps.id
	ps.reqs[p.blockID(i, b)] = struct{}{}
}

// dropRequests returns every outstanding request of ps to the pool.
func (p *Picker) dropRequests(ps *peerState) []Request {
	out := p.requestsOf(ps)
	for _, r := range out {
		p.release(ps, r.Piece)
		p.removeReq(ps, r.Piece, r.Begin/p.blockSize)
	}
	return out
}

// Received records that peer delivered the block r. See Receipt. Requests
// that do not match the block geometry give the zero Receipt.
func (p *Picker) Received(peer PeerID, r Request) Receipt {
	i, b, ok := p.blockOf(r)
	if !ok {
		return Receipt{}
	}
	var rc Receipt
	if ps := p.peers[peer]; ps != nil {
		rc.Expected = p.removeReq(ps, i, b)
	}
	if p.have[i] {
		return rc
	}
	d := p.startDownload(i)
	blk := &d.blocks[b]
	if blk.recv {
		return rc
	}
	if len(blk.reqs) == 0 {
		p.adjustFree(i, -1)
	}
	for _, q := range blk.reqs {
		if qs := p.peers[q]; qs != nil {
			delete(qs.reqs, p.blockID(i, b))
		}
		rc.Cancels = append(rc.Cancels, PeerRequest{q, r})
	}
	blk.reqs = nil
	blk.recv, blk.from = true, peer
	if peer != d.owner {
		d.alone = false // another peer's block: the piece is shared now
	}
	d.nrecv++
	rc.New = true
	rc.PieceReady = d.nrecv == len(d.blocks)
	return rc
}

// Rejected returns the request r of peer to the pool (BEP 6 Reject). It
// reports whether r was outstanding at that peer.
func (p *Picker) Rejected(peer PeerID, r Request) bool {
	i, b, ok := p.blockOf(r)
	ps := p.peers[peer]
	if !ok || ps == nil {
		return false
	}
	p.release(ps, i)
	return p.removeReq(ps, i, b)
}

// release opens piece i to every peer if ps held it alone: ps gave a
// block of it back.
func (p *Picker) release(ps *peerState, i int) {
	if d := p.dl[i]; d != nil && d.alone && d.owner == ps.id {
		d.alone = false
	}
}

// SetParole puts a peer on parole, or takes it off. A peer on parole only
// gets pieces no other peer has blocks of, and the pieces it starts are
// left to it alone until it gives a block back (reject, time-out, choke,
// disconnect) or another peer delivers one: a piece it sends alone that
// fails its hash check names it alone. Pieces it holds alone are opened to
// every peer when it is taken off parole.
func (p *Picker) SetParole(peer PeerID, on bool) {
	ps := p.peerFor(peer)
	ps.parole = on
	if !on {
		for _, i := range p.active {
			p.release(ps, i)
		}
	}
}

// SetDuplicateAfter sets how long a block of a Now piece may be
// outstanding at peer before Pick duplicates it at another peer while only
// readers' windows are wanted: the time that peer is expected to take to
// answer a request at the head of its queue (see SetQueueTime for the
// requests queued before it). It applies to the blocks outstanding
// already, too. Zero or less restores NowDuplicateAfter.
func (p *Picker) SetDuplicateAfter(peer PeerID, d time.Duration) {
	p.peerFor(peer).dupAfter = max(int64(d), 0)
}

// SetQueueTime sets how long peer takes to send one block (the block size
// at its rate): a block requested while k requests are outstanding at
// peer is late there k times d after the duplicate time of
// SetDuplicateAfter, as the peer sends the blocks before it first (k is
// counted when the block is requested of it, the time per block when the
// picker checks). Zero or less (the default) counts no queue.
func (p *Picker) SetQueueTime(peer PeerID, d time.Duration) {
	p.peerFor(peer).perReq = max(int64(d), 0)
}

// dupDue reports whether block blk, outstanding at the peers in its reqs,
// is late at every one of them.
func (p *Picker) dupDue(blk *block) bool {
	return p.now >= p.lateAt(blk)
}

// lateAt returns the clock at which blk is late at every peer holding it:
// its latest request plus, for each holder, the holder's duplicate time
// (SetDuplicateAfter) and the time it takes to send the requests that
// were ahead of it then (SetQueueTime). The holders' current times apply,
// so a round trip learned after the request counts.
func (p *Picker) lateAt(blk *block) int64 {
	var late int64
	for _, id := range blk.reqs {
		after := int64(NowDuplicateAfter)
		if ps, ok := p.peers[id]; ok {
			if ps.dupAfter > 0 {
				after = ps.dupAfter
			}
			after += int64(blk.ahead) * ps.perReq
		}
		late = max(late, after)
	}
	return blk.at + late
}

// NextLate returns the earliest time after the clock (SetClock) at which a
// block of a Now piece, now outstanding and not yet duplicated
// MaxDuplicates times, becomes late (see SetDuplicateAfter), so that the
// caller can pick again then for the peers that may take it over; ok is
// false when there is none. Blocks late already are left out: they wait
// for a peer to finish its share, which a block's arrival shows.
func (p *Picker) NextLate() (at time.Time, ok bool) {
	var first int64
	for _, i := range p.active {
		d := p.dl[i]
		if p.prio[i] != Now || !p.wantedP(i) {
			continue
		}
		for b := range d.blocks {
			blk := &d.blocks[b]
			if blk.recv || len(blk.reqs) == 0 || len(blk.reqs) >= MaxDuplicates {
				continue
			}
			if at := p.lateAt(blk); at > p.now && (!ok || at < first) {
				first, ok = at, true
			}
		}
	}
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, first), true
}

// TimedOut returns the request r of peer to the pool so that other peers may
// get it; if the block still arrives from that peer, Received accepts it. It
// reports whether r was outstanding at that peer.
func (p *Picker) TimedOut(peer PeerID, r Request) bool {
	return p.Rejected(peer, r)
}

// Choked returns every outstanding request of peer to the pool (a peer
// without the fast extension discards our requests when it chokes us) and
// returns them.
func (p *Picker) Choked(peer PeerID) []Request {
	ps := p.peers[peer]
	if ps == nil {
		return nil
	}
	return p.dropRequests(ps)
}

// PieceComplete records that piece i passed its hash check: we have it. It
// is SetHave(i, true).
func (p *Picker) PieceComplete(i int) { p.SetHave(i, true) }

// PieceFailed records that piece i failed its hash check: all its blocks are
// missing again. It returns the peers that delivered blocks of the piece,
// each once, in the order of their first block, so the engine can blame
// them.
func (p *Picker) PieceFailed(i int) []PeerID {
	if i < 0 || i >= p.numPieces || p.have[i] || p.dl[i] == nil {
		return nil
	}
	d := p.dl[i]
	p.detach(i, false)
	d.alone = false
	var blame []PeerID
	pending := false
	d.nfree, d.nrecv = 0, 0
	for b := range d.blocks {
		blk := &d.blocks[b]
		if blk.recv && !slices.Contains(blame, blk.from) {
			blame = append(blame, blk.from)
		}
		blk.recv, blk.from = false, 0
		if len(blk.reqs) == 0 {
			d.nfree++
		} else {
			pending = true
		}
	}
	if !pending {
		p.dropDownload(i)
	}
	p.attach(i, false)
	return blame
}

// CancelUnwanted removes and returns the outstanding requests for pieces
// that are no longer wanted (priority None, or a piece we now have), so the
// engine can send Cancel for them. They are sorted by peer, piece and
// offset.
func (p *Picker) CancelUnwanted() []PeerRequest {
	out := p.pendingCancel
	p.pendingCancel = nil
	var unwanted []int
	for _, i := range p.active {
		if p.prio[i] == None {
			unwanted = append(unwanted, i)
		}
	}
	for _, i := range unwanted {
		// removeReq may drop the piece's state; d stays readable.
		d := p.dl[i]
		for b := range d.blocks {
			for _, q := range slices.Clone(d.blocks[b].reqs) {
				if ps := p.peers[q]; ps != nil && p.removeReq(ps, i, b) {
					out = append(out, PeerRequest{q, p.request(i, b)})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b PeerRequest) int {
		return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Piece, b.Piece),
			cmp.Compare(a.Begin, b.Begin))
	})
	return out
}
