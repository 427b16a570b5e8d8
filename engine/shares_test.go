package engine

import (
	"net/netip"
	"testing"
	"time"

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

// TestSetLateTimes: the blocks of a piece a read waits on at a peer that
// has sent nothing yet are late after twice the least round trip another
// peer shows, not after picker.NowDuplicateAfter, and then go to the peer
// that answers.
func TestSetLateTimes(t *testing.T) {
	const bpp = 8
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ls := &loopState{conns: newConns(), pk: picker.New(4, bpp*16<<10, 4*bpp*16<<10, 0)}
	add := func(port uint16) *peer {
		p := &peer{addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port), id: ls.conns.newID(),
			amInterested: true}
		ls.conns.add(p)
		ls.pk.PeerHaveAll(p.id)
		return p
	}
	answered, silent := add(1), add(2)
	answered.pipe.block(t0.Add(80*time.Millisecond), t0, 16<<10) // an 80 ms round trip
	ls.pk.SetRanges(1, []picker.Range{{First: 0, End: 1, Prio: picker.Now}})
	ls.pk.SetClock(t0)
	ls.setLateTimes()
	if n := len(ls.pk.Pick(silent.id, 100)); n != bpp {
		t.Fatalf("the silent peer took %d blocks, want the piece's %d", n, bpp)
	}
	ls.pk.SetClock(t0.Add(150 * time.Millisecond))
	if got := ls.pk.Pick(answered.id, 100); len(got) != 0 {
		t.Fatalf("blocks duplicated before twice the round trip: %v", got)
	}
	ls.pk.SetClock(t0.Add(170 * time.Millisecond))
	if got := ls.pk.Pick(answered.id, 100); len(got) != bpp {
		t.Fatalf("after twice the round trip the answering peer took %v, want the %d late blocks", got, bpp)
	}
}
