package picker

import (
	"slices"
	"testing"
)

// TestSpentPieces: a spent piece is wanted only by Readahead and Now
// ranges, not by the default or HeadTail and Normal ranges, until it is
// no longer spent.
func TestSpentPieces(t *testing.T) {
	p := New(8, 16*kib, 8*16*kib, 0)
	p.PeerHaveAll(1)
	p.SetDefault(Normal)
	p.SetRanges(1, []Range{{0, 1, HeadTail}, {4, 6, Readahead}, {6, 7, Now}})
	for _, i := range []int{0, 1, 4, 6} {
		p.SetSpent(i, true)
	}
	prios := func() []Priority {
		var ps []Priority
		for i := range 8 {
			ps = append(ps, p.Priority(i))
		}
		return ps
	}
	if got, want := prios(), []Priority{None, None, Normal, Normal, Readahead, Readahead, Now, Normal}; !slices.Equal(got, want) {
		t.Fatalf("spent 0, 1, 4, 6: priorities %v, want %v", got, want)
	}
	for _, r := range p.Pick(1, 100) {
		if r.Piece <= 1 {
			t.Fatalf("picked spent piece %d, wanted by no reader", r.Piece)
		}
	}
	p.SetSpent(0, false)
	if p.Priority(0) != HeadTail {
		t.Errorf("piece 0 no longer spent: priority %v, want headtail", p.Priority(0))
	}
}
