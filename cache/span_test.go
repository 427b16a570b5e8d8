package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHoldSpan checks that a span names exactly the verified bytes in the
// data file, refuses ranges with missing pieces, keeps its pieces from
// eviction while held, and that Close waits for it.
func TestHoldSpan(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(7, 7)), 32<<10, 8*32<<10)
	s := openT(t, t.TempDir(), tt, Config{Budget: NewBudget(3 * 32 << 10)})
	for p := range 3 {
		if err := s.WritePiece(p, tt.piece(p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HoldSpan(2*32<<10, 40<<10); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("span over a missing piece: %v", err)
	}
	sp, err := s.HoldSpan(10<<10, 50<<10)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, sp.Len())
	if _, err := unix.Pread(int(sp.Fd()), got, sp.Offset()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tt.payload[10<<10:60<<10]) {
		t.Fatal("span bytes differ from the payload")
	}
	// Over the cap: pieces 0 and 1 are held and must survive; piece 2
	// goes instead.
	for p := 3; p < 5; p++ {
		if err := s.WritePiece(p, tt.piece(p)); err != nil {
			t.Fatal(err)
		}
	}
	if !s.Has(0) || !s.Has(1) {
		t.Fatal("a held piece was evicted")
	}
	// Close waits for the hold, so the descriptor cannot be reused while
	// a splice may still read from it.
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a span was held")
	case <-time.After(100 * time.Millisecond):
	}
	sp.Release()
	sp.Release() // idempotent
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the span was released")
	}
	if _, err := s.HoldSpan(0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("HoldSpan after Close: %v", err)
	}
}

func TestHoldSpanRange(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(8, 8)), 32<<10, 8*32<<10)
	s := openT(t, t.TempDir(), tt, Config{})
	for _, r := range [][2]int64{{7 * 32 << 10, 40 << 10}, {-1, 10}, {0, 0}} {
		if _, err := s.HoldSpan(r[0], int(r[1])); !errors.Is(err, ErrRange) {
			t.Errorf("HoldSpan(%d, %d): %v, want ErrRange", r[0], r[1], err)
		}
	}
}

// TestHoldSpanFiles checks spans of the Files layout: a range inside one
// of the torrent's files is held whole in that file (its descriptor, the
// offset inside it), as the mount's splice path needs; a range that runs
// into the next file is cut at the file's end, so the caller copies; one
// that starts in pad bytes is refused.
func TestHoldSpanFiles(t *testing.T) {
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rand.New(rand.NewPCG(9, 9)), pl, []int64{pl + 100, 2*pl + 5, 3*pl - 1}, true)
	s := openFilesT(t, t.TempDir(), t.TempDir(), tt, Config{})
	writeAll(t, s, tt)
	check := func(off int64, n, want int) {
		t.Helper()
		sp, err := s.HoldSpan(off, n)
		if err != nil {
			t.Fatalf("HoldSpan(%d, %d): %v", off, n, err)
		}
		defer sp.Release()
		if sp.Len() != want {
			t.Fatalf("HoldSpan(%d, %d) holds %d bytes, want %d", off, n, sp.Len(), want)
		}
		got := make([]byte, sp.Len())
		if _, err := unix.Pread(int(sp.Fd()), got, sp.Offset()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tt.payload[off:off+int64(want)]) {
			t.Fatalf("span at %d: bytes differ from the payload", off)
		}
	}
	f1 := tt.info.Files[1]
	check(f1.Offset+10, int(f1.Length-10), int(f1.Length-10)) // the rest of a file, over pieces
	check(10, int(pl), int(pl))                               // inside the first file, over a piece boundary
	check(f1.Offset+f1.Length-5, 5, 5)
	f0 := tt.info.Files[0]
	check(f0.Length-50, 200, 50) // runs into the pad: cut
	if _, err := s.HoldSpan(f0.Length+1, 10); !errors.Is(err, ErrRange) {
		t.Fatalf("span in pad bytes: %v, want ErrRange", err)
	}
	// Nothing stays held after the refused span: Close does not wait.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
