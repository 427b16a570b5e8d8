package picker

import (
	"slices"
	"testing"
	"time"
)

func TestReceiveCompletesPiece(t *testing.T) {
	p := New(2, 32*kib, 64*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	reqs := p.Pick(1, 2)
	if len(reqs) != 2 || reqs[0].Piece != reqs[1].Piece {
		t.Fatalf("reqs %v", reqs)
	}
	rc := p.Received(1, reqs[1])
	if !rc.Expected || !rc.New || rc.PieceReady || len(rc.Cancels) != 0 {
		t.Fatalf("first block: %+v", rc)
	}
	rc = p.Received(1, reqs[1])
	if rc.Expected || rc.New {
		t.Fatalf("duplicate block: %+v", rc)
	}
	rc = p.Received(1, reqs[0])
	if !rc.PieceReady || !rc.New {
		t.Fatalf("last block: %+v", rc)
	}
	// Waiting for the hash check: nothing of that piece is picked again.
	for _, r := range p.Pick(1, 10) {
		if r.Piece == reqs[0].Piece {
			t.Fatalf("re-picked %+v while verifying", r)
		}
	}
	p.PieceComplete(reqs[0].Piece)
	if !p.Have(reqs[0].Piece) || p.Missing() != 1 {
		t.Fatalf("have %v missing %d", p.Have(reqs[0].Piece), p.Missing())
	}
	mustCheck(t, p)
}

func TestReceivedRejectsBadGeometry(t *testing.T) {
	p := New(2, 32*kib, 40*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	bad := []Request{
		{Piece: -1, Begin: 0, Length: 16 * kib},
		{Piece: 2, Begin: 0, Length: 16 * kib},
		{Piece: 0, Begin: 1, Length: 16 * kib},
		{Piece: 0, Begin: 32 * kib, Length: 16 * kib},
		{Piece: 1, Begin: 0, Length: 16 * kib}, // last piece is 8 KiB
		{Piece: 0, Begin: 0, Length: 15 * kib},
	}
	for _, r := range bad {
		if rc := p.Received(1, r); rc.New || rc.Expected {
			t.Errorf("Received(%+v) = %+v", r, rc)
		}
		if p.Rejected(1, r) {
			t.Errorf("Rejected(%+v) = true", r)
		}
	}
	mustCheck(t, p)
}

func TestUnrequestedBlockIsKept(t *testing.T) {
	p := New(1, 32*kib, 32*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	rc := p.Received(1, Request{0, 16 * kib, 16 * kib})
	if rc.Expected || !rc.New {
		t.Fatalf("unrequested block: %+v", rc)
	}
	got := p.Pick(1, 10)
	if len(got) != 1 || got[0].Begin != 0 {
		t.Fatalf("picked %v, want only the first block", got)
	}
	mustCheck(t, p)
}

func TestRejectChokeTimeoutReturnRequests(t *testing.T) {
	for _, how := range []string{"reject", "timeout", "choke", "gone"} {
		t.Run(how, func(t *testing.T) {
			p := New(10, 32*kib, 320*kib, 0)
			p.SetDefault(Normal)
			p.PeerHaveAll(1)
			p.PeerHaveAll(2)
			reqs := p.Pick(1, 8)
			if len(reqs) != 8 {
				t.Fatalf("peer 1 got %d", len(reqs))
			}
			switch how {
			case "reject":
				for _, r := range reqs {
					if !p.Rejected(1, r) {
						t.Fatalf("Rejected(%+v) = false", r)
					}
				}
			case "timeout":
				for _, r := range reqs {
					if !p.TimedOut(1, r) {
						t.Fatalf("TimedOut(%+v) = false", r)
					}
				}
			case "choke":
				if got := p.Choked(1); !slices.Equal(got, reqs) {
					t.Fatalf("Choked returned %v, want %v", got, reqs)
				}
			case "gone":
				got := p.PeerGone(1)
				slices.SortFunc(reqs, func(a, b Request) int { return a.Piece*1e6 + a.Begin - b.Piece*1e6 - b.Begin })
				if !slices.Equal(got, reqs) {
					t.Fatalf("PeerGone returned %v, want %v", got, reqs)
				}
				if p.Availability(0) != 1 {
					t.Fatalf("availability %d after a seed left", p.Availability(0))
				}
			}
			if p.Outstanding(1) != 0 {
				t.Fatalf("peer 1 still has %d outstanding", p.Outstanding(1))
			}
			if got := p.Pick(2, 100); len(got) != 20 {
				t.Fatalf("peer 2 got %d requests after %s, want all 20", len(got), how)
			}
			mustCheck(t, p)
		})
	}
}

func TestLateBlockAfterTimeout(t *testing.T) {
	p := New(1, 16*kib, 16*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	r := p.Pick(1, 1)[0]
	p.TimedOut(1, r)
	r2 := p.Pick(2, 1)
	if len(r2) != 1 || r2[0] != r {
		t.Fatalf("peer 2 got %v", r2)
	}
	rc := p.Received(1, r)
	if rc.Expected || !rc.New || !rc.PieceReady {
		t.Fatalf("late block %+v", rc)
	}
	if len(rc.Cancels) != 1 || rc.Cancels[0] != (PeerRequest{2, r}) {
		t.Fatalf("cancels %v, want peer 2's request", rc.Cancels)
	}
	if p.Outstanding(2) != 0 {
		t.Fatal("peer 2 still has the request")
	}
	mustCheck(t, p)
}

func TestEndgame(t *testing.T) {
	p := New(2, 32*kib, 64*kib, 0)
	p.SetDefault(Normal)
	for _, id := range []PeerID{1, 2, 3, 4} {
		p.PeerHaveAll(id)
	}
	reqs := p.Pick(1, 3)
	if p.Endgame() {
		t.Fatal("endgame with a free block")
	}
	last := p.Pick(2, 5)
	if len(last) != 1 || !p.Endgame() {
		t.Fatalf("peer 2 got %v; endgame %v", last, p.Endgame())
	}
	// Peer 3 duplicates all four blocks, fewest requesters first.
	dup := p.Pick(3, 10)
	if len(dup) != 4 {
		t.Fatalf("endgame duplicates %v", dup)
	}
	// Peer 4 may add a third request per block, never a fourth.
	if got := p.Pick(4, 10); len(got) != 4 {
		t.Fatalf("peer 4 got %v", got)
	}
	if got := p.Pick(4, 10); got != nil {
		t.Fatalf("peer 4 duplicated its own requests: %v", got)
	}
	rc := p.Received(3, reqs[0])
	if !rc.New || !rc.Expected {
		t.Fatalf("receipt %+v", rc)
	}
	var peers []PeerID
	for _, c := range rc.Cancels {
		if c.Request != reqs[0] {
			t.Fatalf("cancel for another block: %+v", c)
		}
		peers = append(peers, c.Peer)
	}
	slices.Sort(peers)
	if !slices.Equal(peers, []PeerID{1, 4}) {
		t.Fatalf("cancels to %v, want peers 1 and 4", peers)
	}
	mustCheck(t, p)
}

func TestPieceFailedBlamesAndRefetches(t *testing.T) {
	p := New(1, 64*kib, 64*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	a := p.Pick(1, 2)
	b := p.Pick(2, 2)
	p.Received(2, b[0])
	p.Received(1, a[0])
	p.Received(2, b[1])
	if rc := p.Received(1, a[1]); !rc.PieceReady {
		t.Fatal("piece not ready")
	}
	blame := p.PieceFailed(0)
	slices.Sort(blame)
	if !slices.Equal(blame, []PeerID{1, 2}) {
		t.Fatalf("blame %v", blame)
	}
	if p.Have(0) || p.Missing() != 1 {
		t.Fatal("failed piece counted as present")
	}
	if got := p.Pick(2, 10); len(got) != 4 {
		t.Fatalf("refetch got %v", got)
	}
	mustCheck(t, p)
}

func TestCancelUnwantedOnSeek(t *testing.T) {
	p := New(100, 32*kib, 100*32*kib, 0)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	p.SetRanges(1, []Range{{0, 1, Now}, {1, 10, Readahead}})
	a := p.Pick(1, 6)
	b := p.Pick(2, 6)
	p.Received(1, a[0])
	// Seek: the window moves to piece 50.
	p.SetRanges(1, []Range{{50, 51, Now}, {51, 60, Readahead}})
	cancels := p.CancelUnwanted()
	if len(cancels) != 11 {
		t.Fatalf("%d cancels, want 11: %v", len(cancels), cancels)
	}
	for _, c := range cancels {
		if c.Piece >= 10 {
			t.Fatalf("cancelled %+v inside the new window", c)
		}
	}
	if p.Outstanding(1) != 0 || p.Outstanding(2) != 0 {
		t.Fatalf("outstanding %d %d", p.Outstanding(1), p.Outstanding(2))
	}
	if got := p.Pick(1, 1); got[0].Piece != 50 {
		t.Fatalf("after seek picked %v", got)
	}
	if p.CancelUnwanted() != nil {
		t.Fatal("second CancelUnwanted not empty")
	}
	// The received block of piece 0 is kept for when it is wanted again.
	p.SetRanges(1, []Range{{0, 1, Now}})
	if got := p.Pick(2, 10); len(got) != 1 || got[0] != a[1] {
		t.Fatalf("piece 0 again: %v, want %v", got, a[1])
	}
	_ = b
	mustCheck(t, p)
}

func TestSetHaveCancelsAndEviction(t *testing.T) {
	p := New(4, 32*kib, 128*kib, 0)
	p.SetDefault(Normal)
	p.PeerHaveAll(1)
	reqs := p.Pick(1, 2)
	p.SetHave(reqs[0].Piece, true) // e.g. imported from disk meanwhile
	c := p.CancelUnwanted()
	if len(c) != 2 {
		t.Fatalf("cancels %v", c)
	}
	if p.Missing() != 3 {
		t.Fatalf("missing %d", p.Missing())
	}
	p.SetHave(reqs[0].Piece, false) // evicted
	if p.Missing() != 4 {
		t.Fatalf("missing %d after eviction", p.Missing())
	}
	mustCheck(t, p)
}

func TestInterestingTracksPriorities(t *testing.T) {
	p := New(10, 16*kib, 160*kib, 0)
	p.PeerBitfield(1, only(10, 2))
	p.PeerBitfield(2, all(10)) // becomes a seed
	if p.Interesting(1) || p.Interesting(2) {
		t.Fatal("interesting with nothing wanted")
	}
	p.SetRanges(3, []Range{{2, 3, Readahead}})
	if !p.Interesting(1) || !p.Interesting(2) {
		t.Fatal("not interesting after piece 2 became wanted")
	}
	p.SetHave(2, true)
	if p.Interesting(1) || p.Interesting(2) {
		t.Fatal("interesting after we got piece 2")
	}
	p.ClearOwner(3)
	p.SetDefault(Normal)
	if p.Interesting(1) || !p.Interesting(2) {
		t.Fatal("peer 1 has only piece 2 which we have; peer 2 has more")
	}
	if p.Availability(2) != 2 || p.Availability(3) != 1 {
		t.Fatalf("availability %d %d", p.Availability(2), p.Availability(3))
	}
	mustCheck(t, p)
}

// A reader's window that is all requested means the download is ahead of
// the reader: no duplicates for it, only for the piece a read waits on.
func TestNoEndgameDuplicatesForAWindow(t *testing.T) {
	p := twoSeeds(8, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.SetClock(t0)
	p.SetRanges(1, []Range{{First: 0, End: 3, Prio: Readahead}})
	if got := p.Pick(1, 10); len(got) != 6 || !p.Endgame() {
		t.Fatalf("peer 1 got %v; endgame %v", got, p.Endgame())
	}
	p.SetClock(t0.Add(time.Hour))
	if got := p.Pick(2, 10); got != nil {
		t.Fatalf("window duplicated at peer 2: %v", got)
	}
	// A read blocks on piece 1: its two blocks may go to peer 2 as well,
	// once they have been outstanding for NowDuplicateAfter.
	p.SetClock(t0)
	p.SetRanges(1, []Range{{First: 0, End: 3, Prio: Readahead}, {First: 1, End: 2, Prio: Now}})
	p.SetClock(t0.Add(NowDuplicateAfter - time.Millisecond))
	if got := p.Pick(2, 10); got != nil {
		t.Fatalf("blocks requested just now duplicated: %v", got)
	}
	p.SetClock(t0.Add(NowDuplicateAfter))
	got := p.Pick(2, 10)
	if len(got) != 2 || got[0].Piece != 1 || got[1].Piece != 1 {
		t.Fatalf("peer 2 got %v, want the blocks of piece 1", got)
	}
	mustCheck(t, p)
	// When every missing piece is wanted, the classic endgame is back.
	q := twoSeeds(3, []Range{{First: 0, End: 3, Prio: Readahead}})
	q.Pick(1, 10)
	if got := q.Pick(2, 10); len(got) != 6 {
		t.Fatalf("whole download: peer 2 got %v, want 6 duplicates", got)
	}
	mustCheck(t, q)
}

// A streaming piece that one peer is fetching is left to it: another peer
// takes the next piece instead, shares the piece once a read waits on it,
// and shares it anyway when nothing else is left.
func TestStreamingPieceAffinity(t *testing.T) {
	p := twoSeeds(4, []Range{{First: 0, End: 2, Prio: Readahead}})
	if got := p.Pick(1, 1); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("peer 1 got %v", got)
	}
	if got := p.Pick(2, 2); len(got) != 2 || got[0].Piece != 1 || got[1].Piece != 1 {
		t.Fatalf("peer 2 got %v, want piece 1, not the rest of piece 0", got)
	}
	// Nothing else left: peer 2 shares piece 0.
	if got := p.Pick(2, 2); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("peer 2 got %v, want the free block of piece 0", got)
	}
	mustCheck(t, p)

	q := twoSeeds(4, []Range{{First: 0, End: 4, Prio: Readahead}})
	q.Pick(1, 1)
	q.SetRanges(1, []Range{{First: 0, End: 4, Prio: Readahead}, {First: 0, End: 1, Prio: Now}})
	if got := q.Pick(2, 1); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("peer 2 got %v, want the block of piece 0 a read waits on", got)
	}
	mustCheck(t, q)
}

// twoSeeds returns a picker of n pieces of two 16 KiB blocks, default
// priority None, with seeds 1 and 2 and the given ranges for owner 1.
func twoSeeds(n int, ranges []Range) *Picker {
	p := New(n, 32*kib, int64(n)*32*kib, 0)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	if ranges != nil {
		p.SetRanges(1, ranges)
	}
	return p
}

// A Now block is duplicated after the time its peer was given with
// SetDuplicateAfter (a near, fast peer: soon; a far, slow one: later), not
// after the fixed NowDuplicateAfter.
func TestDuplicateAfterPerPeer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, after := range []time.Duration{120 * time.Millisecond, 1500 * time.Millisecond} {
		p := twoSeeds(8, nil)
		p.SetClock(t0)
		p.SetDuplicateAfter(1, after)
		p.SetRanges(1, []Range{{First: 0, End: 3, Prio: Readahead}, {First: 1, End: 2, Prio: Now}})
		if got := p.Pick(1, 10); len(got) != 6 || !p.Endgame() {
			t.Fatalf("peer 1 got %v; endgame %v", got, p.Endgame())
		}
		p.SetClock(t0.Add(after - time.Millisecond))
		if got := p.Pick(2, 10); got != nil {
			t.Fatalf("after %v: duplicated %v before the peer's time", after, got)
		}
		p.SetClock(t0.Add(after))
		got := p.Pick(2, 10)
		if len(got) != 2 || got[0].Piece != 1 || got[1].Piece != 1 {
			t.Fatalf("after %v: peer 2 got %v, want the blocks of piece 1", after, got)
		}
		mustCheck(t, p)
	}
}

// TestStarted follows a piece from untouched to requested, received and
// verified, as web seeds see it.
func TestStarted(t *testing.T) {
	p := New(2, 32*kib, 64*kib, 0)
	p.SetDefault(Normal)
	if p.Started(0) || p.Started(1) || p.Started(-1) || p.Started(2) {
		t.Fatal("untouched pieces started")
	}
	p.PeerHaveAll(1)
	reqs := p.Pick(1, 2)
	if len(reqs) != 2 || !p.Started(reqs[0].Piece) || p.Started(1-reqs[0].Piece) {
		t.Fatalf("after picking %v: started %v %v", reqs, p.Started(0), p.Started(1))
	}
	for _, r := range reqs {
		p.Received(1, r)
	}
	p.PieceComplete(reqs[0].Piece)
	if p.Started(reqs[0].Piece) {
		t.Fatal("a verified piece still started")
	}
}
