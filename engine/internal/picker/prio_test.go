package picker

import "testing"

func TestEffectivePriority(t *testing.T) {
	type set struct {
		owner  int
		ranges []Range
	}
	tests := []struct {
		name string
		def  Priority
		sets []set
		want []Priority // for pieces 0..7
	}{
		{"nothing", None, nil, []Priority{0, 0, 0, 0, 0, 0, 0, 0}},
		{"default normal", Normal, nil, []Priority{1, 1, 1, 1, 1, 1, 1, 1}},
		{"default clamped", Now, nil, []Priority{2, 2, 2, 2, 2, 2, 2, 2}},
		{"max over owners", Normal, []set{
			{1, []Range{{0, 4, Readahead}}},
			{2, []Range{{2, 6, HeadTail}, {3, 4, Now}}},
		}, []Priority{3, 3, 3, 4, 2, 2, 1, 1}},
		{"replace drops old", None, []set{
			{1, []Range{{0, 8, Readahead}}},
			{1, []Range{{6, 8, Now}}},
		}, []Priority{0, 0, 0, 0, 0, 0, 4, 4}},
		{"clear owner", Normal, []set{
			{1, []Range{{0, 8, Now}}},
			{2, []Range{{1, 2, HeadTail}}},
			{1, nil},
		}, []Priority{1, 2, 1, 1, 1, 1, 1, 1}},
		{"clipped and empty ranges", None, []set{
			{1, []Range{{-5, 1, Now}, {7, 100, Readahead}, {4, 4, Now}, {5, 3, Now}}},
		}, []Priority{4, 0, 0, 0, 0, 0, 0, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(8, 16*kib, 8*16*kib, 0)
			p.PeerHaveAll(1)
			p.SetDefault(tc.def)
			for _, s := range tc.sets {
				p.SetRanges(s.owner, s.ranges)
			}
			wanted := 0
			for i, w := range tc.want {
				if got := p.Priority(i); got != w {
					t.Fatalf("piece %d priority %v, want %v", i, got, w)
				}
				if w > None {
					wanted++
				}
			}
			if p.Missing() != wanted {
				t.Fatalf("missing %d, want %d", p.Missing(), wanted)
			}
			mustCheck(t, p)
		})
	}
}

func TestPriorityString(t *testing.T) {
	for p, want := range map[Priority]string{None: "none", Normal: "normal", HeadTail: "headtail",
		Readahead: "readahead", Now: "now", 9: "priority(9)"} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}

func TestPeerBecomesSeed(t *testing.T) {
	p := New(3, 16*kib, 48*kib, 0)
	p.SetDefault(Normal)
	p.PeerHave(1, 0)
	p.PeerHave(1, 1)
	if p.Availability(2) != 0 || p.Endgame() {
		t.Fatalf("availability %d endgame %v", p.Availability(2), p.Endgame())
	}
	p.PeerHave(1, 2)
	if !p.peers[1].seed || p.seeds != 1 || p.Availability(0) != 1 || p.avail[0] != 0 {
		t.Fatalf("full peer not a seed: seeds %d avail %d", p.seeds, p.Availability(0))
	}
	// A bitfield replaces what was known, seed or not.
	p.PeerBitfield(1, only(3, 1))
	if p.peers[1].seed || p.Availability(0) != 0 || p.Availability(1) != 1 {
		t.Fatal("bitfield did not replace the seed state")
	}
	mustCheck(t, p)
	p.PeerHaveNone(5)
	if p.PeerHas(5, 2) || p.Interesting(5) || p.Availability(2) != 0 {
		t.Fatal("HaveNone peer has pieces")
	}
	p.PeerHave(5, 2)
	if !p.PeerHas(5, 2) || !p.Interesting(5) || p.Availability(2) != 1 || p.HaveCount() != 0 {
		t.Fatal("Have after HaveNone not recorded")
	}
	p.PeerGone(1)
	if p.Availability(1) != 0 || p.Interesting(1) || p.Pick(1, 1) != nil {
		t.Fatal("gone peer still counted")
	}
	mustCheck(t, p)
}

func TestUnavailablePiecesDoNotBlockEndgame(t *testing.T) {
	p := New(4, 16*kib, 64*kib, 0)
	p.SetDefault(Normal)
	p.PeerBitfield(1, only(4, 0, 1))
	p.PeerBitfield(2, only(4, 0, 1))
	p.Pick(1, 2)
	// Pieces 2 and 3 are on no peer: endgame for 0 and 1 anyway.
	if !p.Endgame() {
		t.Fatal("no endgame while every available block is requested")
	}
	if got := p.Pick(2, 5); len(got) != 2 {
		t.Fatalf("duplicates %v", got)
	}
	p.PeerHave(2, 3) // piece 3 appears: its block is free
	if p.Endgame() {
		t.Fatal("endgame with a free available block")
	}
	mustCheck(t, p)
}
