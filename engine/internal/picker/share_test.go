package picker

import (
	"testing"
	"time"
)

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

// A peer that delivered its share of a Now piece takes over the blocks
// still outstanding at another peer once they are late there (outside
// endgame: the window still has free blocks), but not before, not while
// it still owes blocks of the piece itself, and not with a deep queue.
func TestNowLateBlocksTakenOver(t *testing.T) {
	const bpp = 8
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := New(40, bpp*16*kib, 40*bpp*16*kib, 0)
	for id := range PeerID(2) {
		p.PeerHaveAll(id)
		p.SetShare(id, 1e6)
		p.SetDuplicateAfter(id, 200*time.Millisecond)
	}
	p.SetClock(t0)
	p.SetRanges(1, []Range{{0, 1, Now}, {1, 40, Readahead}})
	of0 := func(rs []Request) (out []Request) {
		for _, r := range rs {
			if r.Piece == 0 {
				out = append(out, r)
			}
		}
		return out
	}
	mine := p.Pick(0, bpp/2)
	theirs := p.Pick(1, bpp/2)
	if len(of0(mine)) != bpp/2 || len(of0(theirs)) != bpp/2 {
		t.Fatalf("split %v / %v, want %d blocks of piece 0 each", mine, theirs, bpp/2)
	}
	for _, r := range mine[:len(mine)-1] {
		p.Received(0, r)
	}
	p.SetClock(t0.Add(time.Second))
	if got := of0(p.Pick(0, 2)); len(got) != 0 {
		t.Fatalf("peer 0 still owes a block and took %v", got)
	}
	if p.Endgame() {
		t.Fatal("endgame: the test would test pickEndgame")
	}
	p.Received(0, mine[len(mine)-1])
	p.SetClock(t0.Add(100 * time.Millisecond))
	if got := of0(p.Pick(0, 2)); len(got) != 0 {
		t.Fatalf("peer 0 took %v before peer 1's blocks were late", got)
	}
	p.SetClock(t0.Add(300 * time.Millisecond))
	got := of0(p.Pick(0, bpp/2))
	if len(got) != bpp/2 {
		t.Fatalf("peer 0 took over %v, want peer 1's %d late blocks", got, bpp/2)
	}
	rc := p.Received(0, got[0])
	if !rc.New || len(rc.Cancels) != 1 || rc.Cancels[0].Peer != 1 {
		t.Fatalf("the taken-over block: %+v, want new with a cancel for peer 1", rc)
	}
	mustCheck(t, p)

	// A peer with a deep queue does not take over.
	q := New(40, bpp*16*kib, 40*bpp*16*kib, 0)
	for id := range PeerID(2) {
		q.PeerHaveAll(id)
		q.SetShare(id, 1e6)
	}
	q.SetClock(t0)
	q.SetRanges(1, []Range{{0, 1, Now}, {1, 40, Readahead}})
	q.Pick(1, bpp/2)
	q.Pick(0, 100) // its half of piece 0, then a deep readahead queue
	for _, r := range of0(q.Requests(0)) {
		q.Received(0, r)
	}
	q.SetClock(t0.Add(time.Second))
	if got := of0(q.Pick(0, 100)); len(got) != 0 {
		t.Fatalf("peer 0 with %d requests outstanding took over %v", q.Outstanding(0), got)
	}
	mustCheck(t, q)
}

// A block requested behind others at a peer is late there only once the
// peer had time to send the blocks before it (SetQueueTime), while the
// head of its queue is late after the duplicate time alone; NextLate
// tells when the next block becomes late.
func TestLateAfterQueue(t *testing.T) {
	const bpp = 8
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := New(4, bpp*16*kib, 4*bpp*16*kib, 0)
	for id := range PeerID(2) {
		p.PeerHaveAll(id)
		p.SetShare(id, 1e6)
		p.SetDuplicateAfter(id, 100*time.Millisecond)
		p.SetQueueTime(id, 10*time.Millisecond)
	}
	p.SetClock(t0)
	if _, ok := p.NextLate(); ok {
		t.Fatal("NextLate with nothing outstanding")
	}
	p.SetRanges(1, []Range{{0, 1, Now}})
	theirs := p.Pick(1, bpp) // its half, 4 blocks: late at 100, 110, 120, 130 ms
	mine := p.Pick(0, bpp)
	if len(theirs) != bpp/2 || len(mine) != bpp/2 {
		t.Fatalf("split %v / %v, want %d blocks each", theirs, mine, bpp/2)
	}
	if at, ok := p.NextLate(); !ok || !at.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("NextLate %v %v, want t0+100ms", at, ok)
	}
	for _, r := range mine {
		p.Received(0, r)
	}
	p.SetClock(t0.Add(105 * time.Millisecond))
	got := p.Pick(0, bpp)
	if len(got) != 1 || got[0] != theirs[0] {
		t.Fatalf("at 105 ms peer 0 took over %v, want only the head of peer 1's queue %v", got, theirs[0])
	}
	if at, ok := p.NextLate(); !ok || !at.Equal(t0.Add(110*time.Millisecond)) {
		t.Fatalf("NextLate %v %v, want t0+110ms", at, ok)
	}
	p.Received(0, got[0])
	p.SetClock(t0.Add(125 * time.Millisecond))
	if got := p.Pick(0, bpp); len(got) != 2 || got[0] != theirs[1] || got[1] != theirs[2] {
		t.Fatalf("at 125 ms peer 0 took over %v, want %v", got, theirs[1:3])
	}
	mustCheck(t, p)
}

// While only readers' windows are wanted, a late block of a Now piece is
// duplicated at a peer with a short queue, not behind lateQueue requests
// at a peer whose queue is deep: there it would come no sooner.
func TestEndgameDuplicateNotBehindDeepQueue(t *testing.T) {
	const bpp = 8
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := New(20, bpp*16*kib, 20*bpp*16*kib, 0)
	for id := range PeerID(3) {
		p.PeerHaveAll(id)
	}
	p.SetClock(t0)
	p.SetRanges(1, []Range{{0, 1, Now}, {1, 6, Readahead}})
	if n := len(p.Pick(1, bpp)); n != bpp {
		t.Fatalf("peer 1 took %d blocks, want piece 0's %d", n, bpp)
	}
	if n := len(p.Pick(0, 5*bpp)); n != 5*bpp || n < lateQueue {
		t.Fatalf("peer 0 took %d blocks, want the readahead's %d", n, 5*bpp)
	}
	if !p.Endgame() {
		t.Fatal("the window is all requested: want endgame")
	}
	p.SetClock(t0.Add(time.Hour))
	if got := p.Pick(0, bpp); len(got) != 0 {
		t.Fatalf("peer 0 with %d requests outstanding got duplicates %v", p.Outstanding(0), got)
	}
	if got := p.Pick(2, bpp); len(got) != bpp {
		t.Fatalf("idle peer 2 got duplicates %v, want piece 0's %d late blocks", got, bpp)
	}
	mustCheck(t, p)
}
