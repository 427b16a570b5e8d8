package picker

import (
	"cmp"
	"slices"
)

// Pick returns up to max new requests for peer, recording them as
// outstanding at that peer. The highest priority class goes first; see the
// package documentation for the order inside a class and for endgame. It
// returns nil when the peer has nothing we want that may be requested.
// Pick does not check whether the peer chokes us; the caller does.
func (p *Picker) Pick(peer PeerID, max int) []Request {
	ps := p.peers[peer]
	if ps == nil || max <= 0 || p.wanted == 0 {
		return nil
	}
	if p.freeWanted == 0 {
		return p.pickEndgame(ps, max)
	}
	var out []Request
	p.refreshStream()
	// Streaming pieces another peer is fetching are left to it unless a
	// read waits on them: a piece from one peer arrives in order, so the
	// cache hashes and buffers it as it comes. A second pass shares them
	// when nothing else is left.
	shared := false
	near := nearShared
	for _, i := range p.stream {
		if len(out) >= max {
			return out
		}
		// The first missing Readahead pieces are the next a reader
		// waits on: split like Now pieces (see nearShared).
		split := p.prio[i] == Now
		if !split && near > 0 && p.shares && !p.have[i] {
			near--
			split = true
		}
		if !split && p.fetchedElsewhere(ps, i) {
			shared = true
			continue
		}
		out = p.takeSplit(ps, i, out, max, split)
		if p.prio[i] == Now {
			out = p.takeLate(ps, i, out, max)
		}
	}
	for k := 0; shared && k < len(p.stream) && len(out) < max; k++ {
		out = p.take(ps, p.stream[k], out, max)
	}
	for c := HeadTail; c >= Normal && len(out) < max; c-- {
		// Pieces already started first, to keep few pieces half done.
		for k := 0; k < len(p.active) && len(out) < max; k++ {
			if i := p.active[k]; p.prio[i] == c {
				out = p.take(ps, i, out, max)
			}
		}
		if len(out) < max {
			out = p.scanClass(ps, c, out, max)
		}
	}
	return out
}

// nearShared is how many missing Readahead pieces, first in streaming
// order, are split among peers by their shares like Now pieces: the
// pieces a reader reads next, right after a seek or at the start, when
// one peer fetching a whole piece alone (a third of a second at 3 MB/s)
// would make the reader wait for it.
const nearShared = 2

// fetchedElsewhere reports whether piece i, below Now, has blocks
// outstanding at a peer other than ps that requested it last.
func (p *Picker) fetchedElsewhere(ps *peerState, i int) bool {
	d := p.dl[i]
	return d != nil && p.prio[i] < Now && d.owner != ps.id && len(d.blocks)-d.nfree-d.nrecv > 0
}

// take appends requests for the free blocks of piece i, in block order, if
// the peer has the piece and it is wanted and missing.
func (p *Picker) take(ps *peerState, i int, out []Request, max int) []Request {
	return p.takeSplit(ps, i, out, max, p.prio[i] == Now)
}

// takeSplit is take, with ps taking only its share of the piece when
// split is set (nowRoom).
func (p *Picker) takeSplit(ps *peerState, i int, out []Request, max int, split bool) []Request {
	if !p.wantedP(i) || p.free(i) == 0 || !(ps.seed || hasBit(ps.has, i)) || !p.mayTake(ps, i) {
		return out
	}
	if split {
		// A read waits on it: ps takes its share, the other peers
		// theirs, so that the piece comes from all of them at once.
		if room := p.nowRoom(ps, i); room >= 0 {
			max = min(max, len(out)+room)
			if len(out) >= max {
				return out
			}
		}
	}
	fresh := p.dl[i] == nil
	d := p.startDownload(i)
	if fresh && ps.parole {
		d.alone = true // addReq makes ps its owner
	}
	for b := range d.blocks {
		if len(out) >= max || d.nfree == 0 {
			break
		}
		if blk := &d.blocks[b]; !blk.recv && len(blk.reqs) == 0 {
			p.addReq(ps, i, b)
			out = append(out, p.request(i, b))
		}
	}
	return out
}

// mayTake reports whether ps may request blocks of piece i: a peer on
// parole only those of fresh pieces or of its own alone pieces, others
// none of another peer's alone piece.
func (p *Picker) mayTake(ps *peerState, i int) bool {
	d := p.dl[i]
	if ps.parole {
		return d == nil || (d.alone && d.owner == ps.id)
	}
	return d == nil || !d.alone || d.owner == ps.id
}

// scanClass appends requests from the rarest-first index of class c: rarest
// first with a random start inside each availability bucket, or in random
// order while we have fewer than randomFirst pieces.
func (p *Picker) scanClass(ps *peerState, c Priority, out []Request, max int) []Request {
	cl := &p.cls[c]
	if cl.n == 0 {
		return out
	}
	// A peer that is not a seed only has pieces of availability >= 1.
	lo := 0
	if !ps.seed {
		lo = 1
	}
	if p.haveCount < randomFirst {
		return p.scanRandom(ps, cl, lo, out, max)
	}
	for a := lo; a < len(cl.buckets) && len(out) < max; a++ {
		bk := cl.buckets[a]
		if len(bk) == 0 {
			continue
		}
		start := p.rng.IntN(len(bk))
		for k := 0; k < len(bk) && len(out) < max; k++ {
			j := start + k
			if j >= len(bk) {
				j -= len(bk)
			}
			out = p.take(ps, int(bk[j]), out, max)
		}
	}
	return out
}

// scanRandom visits every piece of the class starting at a random one.
func (p *Picker) scanRandom(ps *peerState, cl *class, lo int, out []Request, max int) []Request {
	total := 0
	for a := lo; a < len(cl.buckets); a++ {
		total += len(cl.buckets[a])
	}
	if total == 0 {
		return out
	}
	skip := p.rng.IntN(total)
	a := lo
	for skip >= len(cl.buckets[a]) {
		skip -= len(cl.buckets[a])
		a++
	}
	for seen := 0; seen < total && len(out) < max; {
		bk := cl.buckets[a]
		for j := skip; j < len(bk) && len(out) < max; j++ {
			out = p.take(ps, int(bk[j]), out, max)
			seen++
		}
		skip = 0
		if a++; a == len(cl.buckets) {
			a = lo
		}
	}
	return out
}

// pickEndgame requests blocks already outstanding at other peers: every
// missing block of the wanted pieces is requested. Blocks outstanding at
// the fewest peers go first, then higher priority and lower index.
//
// When every missing piece is wanted (a whole download) any wanted piece
// may be duplicated. While only some are (readers' windows, the rest at
// None), a window that is all requested means the download runs ahead of
// its reader: duplicating it would fetch the same bytes twice for nothing,
// so only the pieces a read waits on (Now) get duplicates, only for
// blocks late at the peers holding them (dupDue), and only at a peer with
// fewer than lateQueue requests outstanding.
func (p *Picker) pickEndgame(ps *peerState, max int) []Request {
	whole := p.wanted == p.numPieces-p.haveCount
	if !whole && len(ps.reqs) >= lateQueue {
		// A duplicate queued behind lateQueue requests would come no
		// sooner than the late block (see takeLate).
		return nil
	}
	var cand []int
	for _, i := range p.active {
		if p.wantedP(i) && (whole || p.prio[i] == Now) && p.mayTake(ps, i) &&
			(ps.seed || hasBit(ps.has, i)) && p.dl[i].nrecv < len(p.dl[i].blocks) {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return nil
	}
	slices.SortFunc(cand, func(a, b int) int {
		return cmp.Or(cmp.Compare(p.prio[b], p.prio[a]), cmp.Compare(a, b))
	})
	var out []Request
	for level := 1; level < MaxDuplicates && len(out) < max; level++ {
		for _, i := range cand {
			d := p.dl[i]
			for b := range d.blocks {
				if len(out) >= max {
					return out
				}
				blk := &d.blocks[b]
				if blk.recv || len(blk.reqs) != level || slices.Contains(blk.reqs, ps.id) {
					continue
				}
				if !whole && !p.dupDue(blk) {
					continue // may still come in its time
				}
				p.addReq(ps, i, b)
				out = append(out, p.request(i, b))
			}
		}
	}
	return out
}

// PickAllowed is Pick restricted to the given pieces, for a peer that chokes
// us but allows fast requests for them (BEP 6 Allowed Fast). Pieces go by
// priority, highest first, then in the given order; out of range indices
// are ignored. It makes no endgame duplicates.
func (p *Picker) PickAllowed(peer PeerID, max int, allowed []int) []Request {
	ps := p.peers[peer]
	if ps == nil || max <= 0 || p.wanted == 0 {
		return nil
	}
	var cand []int
	for _, i := range allowed {
		if i >= 0 && i < p.numPieces && p.wantedP(i) && !slices.Contains(cand, i) {
			cand = append(cand, i)
		}
	}
	slices.SortStableFunc(cand, func(a, b int) int { return cmp.Compare(p.prio[b], p.prio[a]) })
	var out []Request
	for _, i := range cand {
		if len(out) >= max {
			break
		}
		out = p.take(ps, i, out, max)
	}
	return out
}
