package picker

import "testing"

// A Now piece is split among the peers that have it by their weights: the
// first peer filled, whatever its pipeline, takes only its share, and the
// rest goes to the others.
func TestNowPieceSplitByShare(t *testing.T) {
	const bpp = 64
	p := New(4, bpp*16*kib, 4*bpp*16*kib, 0)
	for id, w := range []float64{3e6, 1e6, 1e6, 1e6} {
		p.PeerHaveAll(PeerID(id))
		p.SetShare(PeerID(id), w)
	}
	p.SetRanges(1, []Range{{0, 1, Now}, {1, 4, Readahead}})
	got := map[PeerID]int{}
	for id := range PeerID(4) {
		for _, r := range p.Pick(id, 200) {
			if r.Piece == 0 {
				got[id]++
			}
		}
	}
	// 64 blocks by 3:1:1:1.
	want := map[PeerID]int{0: 32, 1: 11, 2: 11, 3: 10}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("peer %d took %d blocks of the Now piece, want %d (all: %v)", id, got[id], n, got)
		}
	}
	mustCheck(t, p)
}

// A peer without a weight (it chokes us) gets no share of a Now piece
// while others have weights, and without any weight the piece is not
// split at all.
func TestNowPieceShareZeroAndUnset(t *testing.T) {
	const bpp = 8
	p := New(2, bpp*16*kib, 2*bpp*16*kib, 0)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.SetRanges(1, []Range{{0, 1, Now}})
	if n := len(p.Pick(1, 100)); n != bpp {
		t.Fatalf("without weights peer 1 took %d blocks, want all %d", n, bpp)
	}

	p = New(2, bpp*16*kib, 2*bpp*16*kib, 0)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.SetShare(1, 0)
	p.SetShare(2, 5)
	p.SetRanges(1, []Range{{0, 1, Now}})
	if n := len(p.Pick(1, 100)); n != 0 {
		t.Fatalf("peer 1 without a weight took %d blocks, want 0", n)
	}
	if n := len(p.Pick(2, 100)); n != bpp {
		t.Fatalf("peer 2 took %d blocks, want all %d", n, bpp)
	}
	mustCheck(t, p)
}

// With weights set, the first nearShared missing Readahead pieces (what a
// reader reads next) are split among peers like Now pieces; the pieces
// after them are still left whole to the peer that started them.
func TestNearReadaheadSplit(t *testing.T) {
	const bpp = 8
	p := New(6, bpp*16*kib, 6*bpp*16*kib, 0)
	for id := range PeerID(2) {
		p.PeerHaveAll(id)
		p.SetShare(id, 1e6)
	}
	p.SetHave(0, true)
	p.SetRanges(1, []Range{{0, 6, Readahead}})
	first := map[int]int{}
	for _, r := range p.Pick(0, 3*bpp) {
		first[r.Piece]++
	}
	// Pieces 1 and 2 are near: peer 0 takes half of each, then all of
	// 3 and 4.
	if first[1] != bpp/2 || first[2] != bpp/2 || first[3] != bpp || first[4] != bpp {
		t.Fatalf("peer 0 took %v blocks per piece, want half of 1 and 2, all of 3 and 4", first)
	}
	second := map[int]int{}
	for _, r := range p.Pick(1, 3*bpp) {
		second[r.Piece]++
	}
	// Peer 1 takes the other halves, leaves 3 and 4 to peer 0 and
	// starts 5.
	if second[1] != bpp/2 || second[2] != bpp/2 || second[3] != 0 || second[4] != 0 || second[5] != bpp {
		t.Fatalf("peer 1 took %v blocks per piece, want half of 1 and 2, none of 3 and 4, all of 5", second)
	}
	mustCheck(t, p)
}
