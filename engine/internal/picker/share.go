package picker

import "math"

// SetShare sets the weight of peer when the blocks of a Now piece are
// split among the peers that have it: typically the rate the peer
// delivers at, in bytes per second, or any equal value while rates are
// unknown. Zero or less means the peer cannot take requests now (it
// chokes us) and gets no share. While no peer that has a Now piece has a
// weight, the piece is not split (the first peer filled takes what its
// pipeline holds).
func (p *Picker) SetShare(peer PeerID, w float64) {
	if math.IsNaN(w) || w < 0 {
		w = 0
	}
	p.peerFor(peer).share = w
	if w > 0 {
		p.shares = true
	}
}

// nowRoom returns how many more blocks of the Now piece i ps may take:
// its share of the piece's missing blocks, by weight among the peers that
// have the piece, rounded up, less the blocks of it outstanding at ps. It
// returns -1 when the piece is not split (no weights).
func (p *Picker) nowRoom(ps *peerState, i int) int {
	var total float64
	for _, q := range p.peers {
		if q.share > 0 && (q.seed || hasBit(q.has, i)) {
			total += q.share
		}
	}
	if total == 0 {
		return -1
	}
	d := p.dl[i]
	missing, held := p.numBlocks(i), 0
	if d != nil {
		missing = len(d.blocks) - d.nrecv
		for b := range d.blocks {
			if blk := &d.blocks[b]; !blk.recv && containsPeer(blk.reqs, ps.id) {
				held++
			}
		}
	}
	share := int(math.Ceil(float64(missing) * ps.share / total))
	return max(share-held, 0)
}

func containsPeer(ids []PeerID, id PeerID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// lateQueue is the most requests a peer may have outstanding and still
// take over late blocks of a Now piece (takeLate): a peer whose queue is
// deeper would answer the duplicate no sooner than the late peer.
const lateQueue = 32

// takeLate appends duplicates of the late blocks of the Now piece i for
// ps, once ps delivered its own share of it (it holds none of its blocks)
// and its queue is short: a block is late once it waited past the
// duplicate time of every peer holding it (dupDue). A rate-limited
// seeder that has spent its quota sends nothing until its next tick, so
// the peers that are done take over its share rather than the read
// waiting for it. Only with shares set (SetShare).
func (p *Picker) takeLate(ps *peerState, i int, out []Request, max int) []Request {
	d := p.dl[i]
	if !p.shares || d == nil || !p.wantedP(i) || !(ps.seed || hasBit(ps.has, i)) || !p.mayTake(ps, i) {
		return out
	}
	for b := range d.blocks {
		if blk := &d.blocks[b]; !blk.recv && containsPeer(blk.reqs, ps.id) {
			return out // it still owes blocks of this piece
		}
	}
	for b := range d.blocks {
		if len(out) >= max || len(ps.reqs) >= lateQueue {
			break
		}
		blk := &d.blocks[b]
		if blk.recv || len(blk.reqs) == 0 || len(blk.reqs) >= MaxDuplicates || !p.dupDue(blk) {
			continue
		}
		p.addReq(ps, i, b)
		out = append(out, p.request(i, b))
	}
	return out
}
