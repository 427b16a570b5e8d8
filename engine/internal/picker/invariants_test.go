package picker

import (
	"fmt"
	"slices"
)

// check recomputes every derived count of p from scratch and returns the
// first inconsistency.
func (p *Picker) check() error {
	seeds := 0
	avail := make([]int32, p.numPieces)
	for id, ps := range p.peers {
		if ps.id != id {
			return fmt.Errorf("peer %d stored as %d", ps.id, id)
		}
		if ps.seed {
			seeds++
			if ps.lidx != -1 {
				return fmt.Errorf("seed %d listed", id)
			}
			continue
		}
		if ps.lidx < 0 || ps.lidx >= len(p.plist) || p.plist[ps.lidx] != ps {
			return fmt.Errorf("peer %d not listed", id)
		}
		if c := popcount(ps.has); c != ps.count {
			return fmt.Errorf("peer %d count %d, bits %d", id, ps.count, c)
		}
		w := 0
		for i := range p.numPieces {
			if hasBit(ps.has, i) {
				avail[i]++
				if p.wantedP(i) {
					w++
				}
			}
		}
		if w != ps.wanted {
			return fmt.Errorf("peer %d wanted %d, want %d", id, ps.wanted, w)
		}
		for bid := range ps.reqs {
			i, b := bid/p.bpp, bid%p.bpp
			d := p.dl[i]
			if d == nil || !slices.Contains(d.blocks[b].reqs, id) {
				return fmt.Errorf("peer %d request %d/%d unknown to the piece", id, i, b)
			}
		}
	}
	if seeds != p.seeds || len(p.plist)+seeds != len(p.peers) {
		return fmt.Errorf("seeds %d, counted %d; plist %d", p.seeds, seeds, len(p.plist))
	}
	wanted, free, haves := 0, 0, 0
	members := [numPrio]int{}
	for i := range p.numPieces {
		if avail[i] != p.avail[i] {
			return fmt.Errorf("piece %d avail %d, want %d", i, p.avail[i], avail[i])
		}
		if p.have[i] {
			haves++
			if p.dl[i] != nil {
				return fmt.Errorf("piece %d had and downloading", i)
			}
		}
		if p.wantedP(i) {
			wanted++
		}
		if p.counted(i) {
			free += p.free(i)
		}
		if p.indexed(i) {
			members[p.prio[i]]++
			bk := p.cls[p.prio[i]].buckets
			a := int(p.avail[i])
			if p.pos[i] < 0 || a >= len(bk) || int(p.pos[i]) >= len(bk[a]) || bk[a][p.pos[i]] != int32(i) {
				return fmt.Errorf("piece %d not indexed at avail %d", i, a)
			}
		} else if p.pos[i] >= 0 {
			return fmt.Errorf("piece %d indexed but should not be", i)
		}
		if d := p.dl[i]; d != nil {
			if p.active[d.aidx] != i {
				return fmt.Errorf("piece %d not active at %d", i, d.aidx)
			}
			nf, nr := 0, 0
			for b, blk := range d.blocks {
				if blk.recv {
					nr++
					if len(blk.reqs) > 0 {
						return fmt.Errorf("block %d/%d received and requested", i, b)
					}
				} else if len(blk.reqs) == 0 {
					nf++
				}
				for _, q := range blk.reqs {
					ps := p.peers[q]
					if ps == nil {
						return fmt.Errorf("block %d/%d requested from gone peer %d", i, b, q)
					}
					if _, ok := ps.reqs[p.blockID(i, b)]; !ok {
						return fmt.Errorf("block %d/%d: peer %d lacks the request", i, b, q)
					}
				}
			}
			if nf == len(d.blocks) {
				return fmt.Errorf("piece %d active with nothing requested or received", i)
			}
			if nf != d.nfree || nr != d.nrecv {
				return fmt.Errorf("piece %d nfree %d/%d nrecv %d/%d", i, d.nfree, nf, d.nrecv, nr)
			}
		}
	}
	for c := range members {
		if members[c] != p.cls[c].n {
			return fmt.Errorf("class %d has %d, counted %d", c, p.cls[c].n, members[c])
		}
	}
	if wanted != p.wanted || free != p.freeWanted || haves != p.haveCount {
		return fmt.Errorf("wanted %d/%d free %d/%d have %d/%d",
			p.wanted, wanted, p.freeWanted, free, p.haveCount, haves)
	}
	for k, i := range p.active {
		if p.dl[i] == nil || p.dl[i].aidx != k {
			return fmt.Errorf("active[%d]=%d inconsistent", k, i)
		}
	}
	return nil
}
