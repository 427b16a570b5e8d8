package picker

import "math/bits"

// peerFor returns the state of peer, creating an empty non-seed one.
func (p *Picker) peerFor(peer PeerID) *peerState {
	if ps := p.peers[peer]; ps != nil {
		return ps
	}
	ps := &peerState{
		id:   peer,
		has:  make([]uint64, (p.numPieces+63)/64),
		reqs: make(map[int]struct{}),
		lidx: len(p.plist),
	}
	p.peers[peer] = ps
	p.plist = append(p.plist, ps)
	return ps
}

// unlist removes a peer from plist.
func (p *Picker) unlist(ps *peerState) {
	if ps.lidx < 0 {
		return
	}
	last := p.plist[len(p.plist)-1]
	p.plist[ps.lidx] = last
	last.lidx = ps.lidx
	p.plist = p.plist[:len(p.plist)-1]
	ps.lidx = -1
}

// setAvail changes the availability of piece i by d, keeping the indexes
// and freeWanted right.
func (p *Picker) setAvail(i int, d int32) {
	p.detach(i, false)
	p.avail[i] += d
	p.attach(i, false)
}

// clearBits removes a non-seed peer's pieces from the availability counts
// and empties its bitset.
func (p *Picker) clearBits(ps *peerState) {
	for w, word := range ps.has {
		for word != 0 {
			i := w<<6 | bits.TrailingZeros64(word)
			word &= word - 1
			p.setAvail(i, -1)
		}
		ps.has[w] = 0
	}
	ps.count, ps.wanted = 0, 0
}

// makeSeed turns ps into a seed: its bitset stops counting toward
// availability and it counts in p.seeds instead.
func (p *Picker) makeSeed(ps *peerState) {
	if ps.seed {
		return
	}
	p.clearBits(ps)
	p.unlist(ps)
	ps.seed, ps.has, ps.count = true, nil, p.numPieces
	p.seeds++
	if p.seeds == 1 {
		p.recountFree()
	}
}

// unseed turns a seed back into a peer with an empty bitset.
func (p *Picker) unseed(ps *peerState) {
	if !ps.seed {
		return
	}
	ps.seed, ps.has, ps.count = false, make([]uint64, (p.numPieces+63)/64), 0
	ps.lidx = len(p.plist)
	p.plist = append(p.plist, ps)
	p.seeds--
	if p.seeds == 0 {
		p.recountFree()
	}
}

// PeerBitfield records the pieces a peer has (have[i] for piece i), replacing
// what was known of it. Entries past NumPieces are ignored; missing entries
// mean false. A full bitfield makes the peer a seed, as PeerHaveAll does.
func (p *Picker) PeerBitfield(peer PeerID, have []bool) {
	ps := p.peerFor(peer)
	p.unseed(ps)
	p.clearBits(ps)
	n := min(len(have), p.numPieces)
	for i := range n {
		if !have[i] {
			continue
		}
		ps.has[i>>6] |= 1 << (i & 63)
		ps.count++
		if p.wantedP(i) {
			ps.wanted++
		}
		p.setAvail(i, +1)
	}
	if ps.count == p.numPieces && p.numPieces > 0 {
		p.makeSeed(ps)
	}
}

// PeerHave records that a peer has piece i. Out of range indices are ignored.
func (p *Picker) PeerHave(peer PeerID, i int) {
	if i < 0 || i >= p.numPieces {
		return
	}
	ps := p.peerFor(peer)
	if ps.seed || hasBit(ps.has, i) {
		return
	}
	ps.has[i>>6] |= 1 << (i & 63)
	ps.count++
	if p.wantedP(i) {
		ps.wanted++
	}
	p.setAvail(i, +1)
	if ps.count == p.numPieces {
		p.makeSeed(ps)
	}
}

// PeerHaveAll records that a peer has every piece (a seeder, BEP 6 HaveAll).
func (p *Picker) PeerHaveAll(peer PeerID) {
	p.makeSeed(p.peerFor(peer))
}

// PeerHaveNone records that a peer has no piece (BEP 6 HaveNone). It also
// registers a peer that sent no bitfield.
func (p *Picker) PeerHaveNone(peer PeerID) {
	p.PeerBitfield(peer, nil)
}

// PeerGone forgets a peer: its pieces no longer count for availability and
// its outstanding requests go back to the pool. It returns those requests.
func (p *Picker) PeerGone(peer PeerID) []Request {
	ps := p.peers[peer]
	if ps == nil {
		return nil
	}
	out := p.dropRequests(ps)
	if ps.seed {
		p.seeds--
		if p.seeds == 0 {
			p.recountFree()
		}
	} else {
		p.clearBits(ps)
		p.unlist(ps)
	}
	delete(p.peers, peer)
	return out
}

// PeerHas reports whether the peer announced piece i.
func (p *Picker) PeerHas(peer PeerID, i int) bool {
	ps := p.peers[peer]
	if ps == nil || i < 0 || i >= p.numPieces {
		return false
	}
	return ps.seed || hasBit(ps.has, i)
}

// Availability returns the number of known peers that have piece i.
func (p *Picker) Availability(i int) int {
	if i < 0 || i >= p.numPieces {
		return 0
	}
	return int(p.avail[i]) + p.seeds
}

// Started reports whether a block of piece i was requested from a peer or
// received (a download of it is under way), so that a web seed can leave
// it to the peers.
func (p *Picker) Started(i int) bool {
	return i >= 0 && i < p.numPieces && p.dl[i] != nil
}
