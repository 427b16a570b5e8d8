package cache

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestStagedBudget leaves every other piece half-written, as a reader
// seeking away leaves them, under a small budget, and checks that the
// data file's allocated blocks stay within the cap plus the staged blocks
// of pieces not yet abandoned, and that a reopen returns the space of every
// piece that is not present.
func TestStagedBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const pl = 4 * BlockSize
	tt := genTorrent(rng, pl, 128*pl)
	const capBytes = 8 * pl
	const abandon = 16 // WriteBlock calls
	b := NewBudget(capBytes)
	b.abandonAfter = abandon
	root := t.TempDir()
	s := openT(t, root, tt, Config{Budget: b, WriteBuffers: -1})
	data := filepath.Join(s.Dir(), dataName)
	// Pieces whose last block came less than abandon writes ago, and the
	// one being written, may keep their staged blocks.
	const margin = abandon*BlockSize + pl
	half := func(i int) {
		for _, bw := range blocksOf(tt, i)[:2] {
			if err := s.WriteBlock(i, bw.begin, bw.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range tt.info.NumPieces() - 6 {
		if i%2 == 0 {
			if err := s.WritePiece(i, tt.piece(i)); err != nil {
				t.Fatal(err)
			}
		} else {
			half(i)
		}
		if err := s.Sync(); err != nil { // evicted pieces are punched after a persist
			t.Fatal(err)
		}
		if u := b.Used() + b.Staged(); u > capBytes+margin {
			t.Fatalf("after piece %d: %d bytes verified and %d staged, cap %d + margin %d", i, b.Used(), b.Staged(), capBytes, margin)
		}
		if du := diskUsage(t, data); du > capBytes+margin {
			t.Fatalf("after piece %d: data file takes %d bytes, cap %d + margin %d", i, du, capBytes, margin)
		}
	}
	if b.Staged() == 0 {
		t.Fatal("nothing staged: the test measured nothing")
	}
	checkPresentData(t, s, tt)
	// Pieces abandoned just before the store closes are not reclaimed yet,
	// but orphaned once it is: Open returns their space.
	for i := tt.info.NumPieces() - 6; i < tt.info.NumPieces(); i++ {
		half(i)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Staged() != 0 || b.Used() != 0 {
		t.Fatalf("closed store still charged: %d verified, %d staged", b.Used(), b.Staged())
	}
	_, present := s.Present()
	if du := diskUsage(t, data); du < present+6*2*BlockSize {
		t.Fatalf("data file takes %d bytes before reopen, want at least %d present + the staged blocks", du, present)
	}
	s = openT(t, root, tt, Config{})
	if s.Verifying() {
		t.Fatal("store not trusted after a clean close")
	}
	n, present := s.Present()
	// Less than a half-written piece of slack, for the filesystem's own
	// blocks (an extent tree).
	if du := diskUsage(t, data); du > present+BlockSize {
		t.Fatalf("after reopen the data file takes %d bytes, %d pieces present hold %d", du, n, present)
	}
	checkPresentData(t, s, tt)
}

// TestWouldEvict checks the forecast against the eviction that follows.
func TestWouldEvict(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const pl = 4 * BlockSize
	tt := genTorrent(rng, pl, 16*pl)
	ot := genTorrent(rng, pl, 4*pl)
	if f := openT(t, t.TempDir(), tt, Config{}).WouldEvict(100 * pl); f.Pieces != nil || f.Others != 0 || f.Short != 0 {
		t.Fatalf("forecast without a budget: %+v", f)
	}
	b := NewBudget(5 * pl)
	other := openT(t, t.TempDir(), ot, Config{Budget: b})
	if err := other.WritePiece(0, ot.piece(0)); err != nil {
		t.Fatal(err)
	}
	s := openT(t, t.TempDir(), tt, Config{Budget: b})
	for i := range 4 {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Pin(0)
	buf := make([]byte, pl)
	if _, err := s.ReadPiece(1, buf); err != nil { // 1 becomes the most recent
		t.Fatal(err)
	}
	// Least recently used first: other's 0, then 2, 3, 1; 0 is pinned.
	for _, c := range []struct {
		size   int64
		pieces []int
		others int
		short  int64
	}{
		{0, nil, 0, 0},
		{pl, nil, 1, 0},
		{2 * pl, []int{2}, 1, 0},
		{3 * pl, []int{2, 3}, 1, 0},
		{5 * pl, []int{2, 3, 1}, 1, pl},
	} {
		f := s.WouldEvict(c.size)
		if fmt.Sprint(f.Pieces) != fmt.Sprint(c.pieces) || f.Others != c.others || f.Short != c.short {
			t.Fatalf("WouldEvict(%d) = %+v, want pieces %v, %d others, short %d", c.size, f, c.pieces, c.others, c.short)
		}
	}
	// The forecast is what happens.
	want := s.WouldEvict(2 * pl)
	for i := 4; i < 6; i++ {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.TakeEvicted(); fmt.Sprint(got) != fmt.Sprint(want.Pieces) {
		t.Fatalf("evicted %v, forecast %v", got, want.Pieces)
	}
	if got := other.TakeEvicted(); len(got) != want.Others {
		t.Fatalf("other store: evicted %v, forecast %d pieces", got, want.Others)
	}
}
