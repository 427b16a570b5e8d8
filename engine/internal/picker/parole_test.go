package picker

import "testing"

// piecesOf returns the pieces of reqs, each once.
func piecesOf(reqs []Request) map[int]bool {
	out := map[int]bool{}
	for _, r := range reqs {
		out[r.Piece] = true
	}
	return out
}

func TestParole(t *testing.T) {
	// 4 pieces of 4 blocks; A is on parole, B is not; both have everything.
	p := New(4, 4*DefaultBlockSize, 16*DefaultBlockSize, 0)
	p.SetDefault(Normal)
	const a, b = PeerID(1), PeerID(2)
	p.PeerHaveAll(a)
	p.PeerHaveAll(b)
	p.SetParole(a, true)
	ra := p.Pick(a, 2) // half of one piece
	if len(ra) != 2 || ra[0].Piece != ra[1].Piece {
		t.Fatalf("A picked %v, want two blocks of one piece", ra)
	}
	mine := ra[0].Piece
	rb := p.Pick(b, 16)
	if piecesOf(rb)[mine] {
		t.Fatalf("B got blocks of piece %d, which A holds alone: %v", mine, rb)
	}
	if len(rb) != 12 {
		t.Fatalf("B picked %d blocks, want the 12 of the other pieces", len(rb))
	}
	// A may finish its own piece, and may not join B's.
	ra = p.Pick(a, 16)
	if len(ra) != 2 || !piecesOf(ra)[mine] || len(piecesOf(ra)) != 1 {
		t.Fatalf("A picked %v, want the rest of piece %d only", ra, mine)
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	// A rejects a block: the piece opens to B.
	p.Rejected(a, ra[0])
	if rb = p.Pick(b, 16); len(rb) != 1 || rb[0] != ra[0] {
		t.Fatalf("after A's reject B picked %v, want %v", rb, ra[0])
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
}

func TestParoleEnds(t *testing.T) {
	p := New(2, 2*DefaultBlockSize, 4*DefaultBlockSize, 0)
	p.SetDefault(Normal)
	const a, b = PeerID(1), PeerID(2)
	p.PeerHaveAll(a)
	p.PeerHaveAll(b)
	p.SetParole(a, true)
	ra := p.Pick(a, 1)
	if len(ra) != 1 {
		t.Fatalf("A picked %v", ra)
	}
	p.Pick(b, 16) // the other piece
	if rb := p.Pick(b, 16); len(rb) != 0 {
		t.Fatalf("B picked %v from A's piece", rb)
	}
	p.SetParole(a, false)
	if rb := p.Pick(b, 16); len(rb) != 1 || rb[0].Piece != ra[0].Piece {
		t.Fatalf("after parole B picked %v, want the rest of piece %d", rb, ra[0].Piece)
	}
	// A block from another peer shares a piece too.
	p2 := New(1, 2*DefaultBlockSize, 2*DefaultBlockSize, 0)
	p2.SetDefault(Normal)
	p2.PeerHaveAll(a)
	p2.PeerHaveAll(b)
	p2.SetParole(a, true)
	ra = p2.Pick(a, 1)
	other := Request{Piece: 0, Begin: DefaultBlockSize, Length: DefaultBlockSize}
	if ra[0] == other {
		other.Begin = 0
	}
	p2.Received(b, other) // unrequested, as after a cancel
	if p2.dl[0].alone {
		t.Fatal("a piece with another peer's block is still alone")
	}
}
