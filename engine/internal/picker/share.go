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
