package picker

import (
	"slices"
	"testing"
)

const kib = 1024

// mustCheck fails the test if p's derived state is inconsistent.
func mustCheck(t *testing.T, p *Picker) {
	t.Helper()
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
}

// all returns a bitfield of n true values.
func all(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

// only returns a bitfield of n pieces with the given ones set.
func only(n int, pieces ...int) []bool {
	b := make([]bool, n)
	for _, i := range pieces {
		b[i] = true
	}
	return b
}

func TestGeometry(t *testing.T) {
	tests := []struct {
		name                  string
		n                     int
		plen, total           int64
		bs                    int
		lastPiece, lastBlocks int
		lastBlock             int
	}{
		{"exact", 4, 64 * kib, 256 * kib, 0, 64 * kib, 4, 16 * kib},
		{"short last piece", 3, 64 * kib, 130 * kib, 0, 2 * kib, 1, 2 * kib},
		{"short last block", 2, 64 * kib, 64*kib + 20*kib, 16 * kib, 20 * kib, 2, 4 * kib},
		{"odd piece length", 2, 40 * kib, 80 * kib, 0, 40 * kib, 3, 8 * kib},
		{"tiny", 1, 100, 100, 0, 100, 1, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.n, tc.plen, tc.total, tc.bs)
			last := tc.n - 1
			if got := p.PieceSize(last); got != tc.lastPiece {
				t.Fatalf("PieceSize(last) = %d, want %d", got, tc.lastPiece)
			}
			if got := p.numBlocks(last); got != tc.lastBlocks {
				t.Fatalf("blocks of last = %d, want %d", got, tc.lastBlocks)
			}
			p.SetDefault(Normal)
			p.PeerHaveAll(1)
			var reqs []Request
			for {
				r := p.Pick(1, 7)
				if len(r) == 0 {
					break
				}
				reqs = append(reqs, r...)
			}
			var sum int64
			for _, r := range reqs {
				sum += int64(r.Length)
				if r.Piece == last && r.Begin+r.Length == p.PieceSize(last) && r.Length != tc.lastBlock {
					t.Fatalf("last block %+v, want length %d", r, tc.lastBlock)
				}
			}
			if sum != tc.total {
				t.Fatalf("requested %d bytes, torrent has %d", sum, tc.total)
			}
			mustCheck(t, p)
		})
	}
}

func TestNewPanicsOnBadGeometry(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for 3 pieces of 64 KiB holding 1 MiB")
		}
	}()
	New(3, 64*kib, 1<<20, 0)
}

func TestNoneIsNeverRequested(t *testing.T) {
	p := New(8, 32*kib, 8*32*kib, 0)
	p.PeerHaveAll(1)
	if got := p.Pick(1, 100); got != nil {
		t.Fatalf("picked %v with everything at None", got)
	}
	if p.Interesting(1) {
		t.Fatal("seed interesting while nothing is wanted")
	}
	if !p.Done() {
		t.Fatal("not Done with nothing wanted")
	}
	p.SetRanges(7, []Range{{2, 4, Normal}})
	got := p.Pick(1, 100)
	for _, r := range got {
		if r.Piece != 2 && r.Piece != 3 {
			t.Fatalf("picked %+v outside the wanted range", r)
		}
	}
	if len(got) != 4 || p.Missing() != 2 || !p.Interesting(1) {
		t.Fatalf("got %d requests, missing %d, interesting %v", len(got), p.Missing(), p.Interesting(1))
	}
	mustCheck(t, p)
}

func TestStreamingOrder(t *testing.T) {
	p := New(100, 16*kib, 100*16*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	p.SetRanges(1, []Range{{50, 51, Now}, {51, 60, Readahead}})
	p.SetRanges(2, []Range{{10, 11, HeadTail}, {99, 100, HeadTail}})
	got := p.Pick(1, 13)
	var pieces []int
	for _, r := range got {
		pieces = append(pieces, r.Piece)
	}
	want := []int{50, 51, 52, 53, 54, 55, 56, 57, 58, 59}
	if !slices.Equal(pieces[:10], want) {
		t.Fatalf("order %v, want %v first", pieces, want)
	}
	rest := slices.Sorted(slices.Values(pieces[10:12]))
	if !slices.Equal(rest, []int{10, 99}) {
		t.Fatalf("head/tail after the window: %v", pieces[10:])
	}
	if p.Priority(pieces[12]) != Normal {
		t.Fatalf("13th pick %d has priority %v", pieces[12], p.Priority(pieces[12]))
	}
	mustCheck(t, p)
}

func TestTwoReadersInterleave(t *testing.T) {
	p := New(100, 16*kib, 100*16*kib, 0)
	p.PeerHaveAll(1)
	p.SetRanges(1, []Range{{10, 11, Now}, {11, 14, Readahead}})
	p.SetRanges(2, []Range{{70, 71, Now}, {71, 74, Readahead}})
	var pieces []int
	for _, r := range p.Pick(1, 100) {
		pieces = append(pieces, r.Piece)
	}
	want := []int{10, 70, 11, 71, 12, 72, 13, 73}
	if !slices.Equal(pieces, want) {
		t.Fatalf("order %v, want %v", pieces, want)
	}
}

func TestPeerOnlyGetsWhatItHas(t *testing.T) {
	p := New(10, 16*kib, 10*16*kib, 0)
	p.SetDefault(Normal)
	p.PeerBitfield(1, only(10, 3, 7))
	got := p.Pick(1, 10)
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	for _, r := range got {
		if r.Piece != 3 && r.Piece != 7 {
			t.Fatalf("requested %d which the peer lacks", r.Piece)
		}
	}
	p.SetHave(5, true)
	p.PeerHave(1, 5)
	if got := p.Pick(1, 10); got != nil {
		t.Fatalf("picked %v: nothing left the peer has", got)
	}
	if p.Interesting(1) != true {
		// pieces 3 and 7 are requested but still missing: still interesting
		t.Fatal("peer with missing wanted pieces not interesting")
	}
	mustCheck(t, p)
}

func TestRarestFirst(t *testing.T) {
	p := New(6, 16*kib, 6*16*kib, 0)
	p.SetDefault(Normal)
	for i := range 4 {
		p.SetHave(i, true) // leave random-first mode
	}
	p.PeerHaveAll(1)
	p.PeerBitfield(2, only(6, 4, 5))
	p.PeerBitfield(3, only(6, 5))
	// Piece 4 is on 2 peers, piece 5 on 3.
	got := p.Pick(1, 1)
	if len(got) != 1 || got[0].Piece != 4 {
		t.Fatalf("picked %v, want the rarer piece 4", got)
	}
	mustCheck(t, p)
}

func TestRarestFirstRandomTies(t *testing.T) {
	seen := map[int]bool{}
	for seed := range uint64(40) {
		p := New(20, 16*kib, 20*16*kib, 0)
		p.Seed(seed)
		p.SetDefault(Normal)
		for i := range 4 {
			p.SetHave(i, true)
		}
		p.PeerHaveAll(1)
		p.PeerBitfield(2, only(20, 8, 9, 10, 11))
		got := p.Pick(1, 1)
		if got[0].Piece >= 8 && got[0].Piece <= 11 {
			t.Fatalf("picked common piece %d over rarer ones", got[0].Piece)
		}
		seen[got[0].Piece] = true
	}
	if len(seen) < 5 {
		t.Fatalf("ties broken the same way too often: %v", seen)
	}
}

func TestRandomFirstPieces(t *testing.T) {
	// With fewer than 4 pieces, the rarest piece is not always first.
	rare := 0
	for seed := range uint64(40) {
		p := New(20, 16*kib, 20*16*kib, 0)
		p.Seed(seed)
		p.SetDefault(Normal)
		p.PeerHaveAll(1)
		common := all(20)
		common[19] = false
		p.PeerBitfield(2, common)
		if p.Pick(1, 1)[0].Piece == 19 {
			rare++
		}
	}
	if rare > 10 {
		t.Fatalf("rarest piece picked first %d/40 times in random-first mode", rare)
	}
}

func TestPreferStartedPieces(t *testing.T) {
	p := New(50, 64*kib, 50*64*kib, 0)
	p.SetDefault(Normal)
	for i := range 4 {
		p.SetHave(i, true)
	}
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	first := p.Pick(1, 2) // half of one piece
	if first[0].Piece != first[1].Piece {
		t.Fatalf("two blocks from two pieces: %v", first)
	}
	second := p.Pick(2, 2)
	for _, r := range second {
		if r.Piece != first[0].Piece {
			t.Fatalf("peer 2 started piece %d instead of finishing %d", r.Piece, first[0].Piece)
		}
	}
	mustCheck(t, p)
}

func TestPickAllowed(t *testing.T) {
	p := New(10, 32*kib, 320*kib, 0)
	p.SetDefault(Normal)
	p.SetRanges(1, []Range{{7, 8, Now}})
	p.PeerBitfield(1, only(10, 2, 5, 7))
	got := p.PickAllowed(1, 10, []int{5, -1, 9, 7, 2, 5, 99})
	var pieces []int
	for _, r := range got {
		pieces = append(pieces, r.Piece)
	}
	// 9 is not on the peer; 7 is Now so it goes first.
	if !slices.Equal(pieces, []int{7, 7, 5, 5, 2, 2}) {
		t.Fatalf("allowed-fast picks %v", pieces)
	}
	if got := p.PickAllowed(1, 10, []int{5}); got != nil {
		t.Fatalf("re-picked %v", got)
	}
	mustCheck(t, p)
}
