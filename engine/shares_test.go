package engine

import (
	"net/netip"
	"testing"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// TestSetShares: the loop gives the picker each peer's rate as its share
// of a piece a read waits on; a peer whose rate is not known yet gets the
// mean of the known ones (here 4 MB/s), and a peer that chokes us (no
// allowed-fast pieces) none.
func TestSetShares(t *testing.T) {
	const bpp = 64
	ls := &loopState{conns: newConns(), pk: picker.New(4, bpp*16<<10, 4*bpp*16<<10, 0)}
	add := func(port uint16, rate float64, choking bool) *peer {
		p := &peer{addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port), id: ls.conns.newID(),
			amInterested: true, peerChoking: choking}
		p.downRate.value = rate
		ls.conns.add(p)
		ls.pk.PeerHaveAll(p.id)
		return p
	}
	known := add(1, 3e6, false)
	fresh := add(2, 0, false)
	choking := add(3, 5e6, true)
	ls.pk.SetRanges(1, []picker.Range{{First: 0, End: 1, Prio: picker.Now}})
	ls.setShares()
	count := func(p *peer) int {
		n := 0
		for _, r := range ls.pk.Pick(p.id, 200) {
			if r.Piece == 0 {
				n++
			}
		}
		return n
	}
	if n := count(choking); n != 0 {
		t.Fatalf("the choking peer took %d blocks of the Now piece, want 0", n)
	}
	// 64 blocks by 4:3.
	if n := count(fresh); n != 37 {
		t.Fatalf("the peer of unknown rate took %d blocks, want 37", n)
	}
	if n := count(known); n != 27 {
		t.Fatalf("the peer at 3 MB/s took %d blocks, want the other 27", n)
	}
}
