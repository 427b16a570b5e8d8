package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// isHole reports whether piece's range of the data file holds no data.
func isHole(t *testing.T, s *Store, piece int) bool {
	t.Helper()
	off := s.info.PieceOffset(piece)
	data, err := unix.Seek(s.data.(*dataFile).fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return data >= off+s.info.PieceSize(piece)
}

// TestWritePieceChunked checks WritePiece of pieces larger than a write
// chunk: a mismatch (early or late in the piece) is reported, leaves the
// piece unreadable the whole time and its space punched out; staged blocks
// survive a mismatch and are replaced by a match.
func TestWritePieceChunked(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(41, 42)), 8*BlockSize, 6*8*BlockSize+BlockSize)
	s := openT(t, t.TempDir(), tt, Config{})
	s.chunk = 2 * BlockSize

	// Readers of piece 0 must never see it while corrupt copies are written.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, BlockSize)
			for !stop.Load() {
				_, err := s.ReadAt(buf, BlockSize)
				if !errors.Is(err, ErrNotPresent) {
					t.Errorf("ReadAt of a piece being written corrupt: %v", err)
					return
				}
				if err := s.ReadBlock(0, 0, buf); !errors.Is(err, ErrNotPresent) {
					t.Errorf("ReadBlock of a piece being written corrupt: %v", err)
					return
				}
				if _, err := s.HoldSpan(0, BlockSize); !errors.Is(err, ErrNotPresent) {
					t.Errorf("HoldSpan of a piece being written corrupt: %v", err)
					return
				}
				seen.Add(1)
			}
		}()
	}
	for i := range 200 {
		bad := append([]byte(nil), tt.piece(0)...)
		bad[[]int{0, len(bad) - 1, 3 * BlockSize}[i%3]] ^= 1
		var he *HashError
		if err := s.WritePiece(0, bad); !errors.As(err, &he) || he.Piece != 0 {
			t.Fatalf("WritePiece(corrupt) = %v, want HashError{0}", err)
		}
		if s.Has(0) || !isHole(t, s, 0) {
			t.Fatalf("corrupt piece present (%v) or its bytes left in the data file", s.Has(0))
		}
	}
	stop.Store(true)
	wg.Wait()
	if seen.Load() == 0 {
		t.Fatal("the readers never ran")
	}

	// Staged blocks (some buffered) survive a mismatch...
	bs := blocksOf(tt, 1)
	for _, b := range bs[:3] {
		if err := s.WriteBlock(1, b.begin, b.data); err != nil {
			t.Fatal(err)
		}
	}
	bad := bytes.Repeat([]byte{9}, int(tt.info.PieceSize(1)))
	if err := s.WritePiece(1, bad); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("WritePiece(corrupt) over staged blocks = %v", err)
	}
	if n, _ := s.Staged(1); n != 3 {
		t.Fatalf("%d blocks staged after a mismatched WritePiece, want 3", n)
	}
	for _, b := range bs[3:] {
		if err := s.WriteBlock(1, b.begin, b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishPiece(1); err != nil {
		t.Fatalf("FinishPiece after a mismatched WritePiece: %v", err)
	}
	// ...and a matching WritePiece replaces junk ones.
	for _, b := range blocksOf(tt, 2)[:5] {
		if err := s.WriteBlock(2, b.begin, bad[:len(b.data)]); err != nil {
			t.Fatal(err)
		}
	}
	for p := 2; p < tt.info.NumPieces(); p++ {
		if err := s.WritePiece(p, tt.piece(p)); err != nil {
			t.Fatalf("WritePiece(%d): %v", p, err)
		}
	}
	if err := s.WritePiece(0, tt.piece(0)); err != nil {
		t.Fatal(err)
	}
	checkPresentData(t, s, tt)
	if n, _ := s.Present(); n != tt.info.NumPieces() {
		t.Fatalf("%d of %d pieces present", n, tt.info.NumPieces())
	}
	s.Close()
	s = openT(t, filepath.Dir(s.Dir()), tt, Config{})
	if n, _ := s.Present(); n != tt.info.NumPieces() || s.Verifying() {
		t.Fatalf("reopened with %d of %d pieces present (verifying %v)", n, tt.info.NumPieces(), s.Verifying())
	}
	checkPresentData(t, s, tt)
}

// TestWriteBuffersBounded checks that no more than Config.WriteBuffers
// pieces hold a write buffer, that pieces without one still verify, and
// that every buffer is given back.
func TestWriteBuffersBounded(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(43, 44)), 8*BlockSize, 16*8*BlockSize)
	s := openT(t, t.TempDir(), tt, Config{WriteBuffers: 3})
	s.chunk = 3 * BlockSize // full after 3 blocks: flushed mid-piece
	held := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.wbufHeld)
	}
	np := tt.info.NumPieces()
	// Every piece gets its blocks in order, interleaved with the others.
	for k := range 8 {
		for p := range np {
			b := blocksOf(tt, p)[k]
			if err := s.WriteBlock(p, b.begin, b.data); err != nil {
				t.Fatal(err)
			}
			if n := held(); n > 3 {
				t.Fatalf("%d write buffers held, the limit is 3", n)
			}
		}
	}
	if n := held(); n != 3 {
		t.Fatalf("%d write buffers held with %d pieces in progress, want 3", n, np)
	}
	for p := range np {
		if err := s.FinishPiece(p); err != nil {
			t.Fatalf("FinishPiece(%d): %v", p, err)
		}
	}
	if n := held(); n != 0 {
		t.Fatalf("%d write buffers still held with every piece present", n)
	}
	checkPresentData(t, s, tt)

	// A mismatch gives its buffer back and leaves nothing in the file.
	s2 := openT(t, t.TempDir(), tt, Config{WriteBuffers: 1})
	for _, b := range blocksOf(tt, 0) {
		data := b.data
		if b.begin == 0 {
			data = make([]byte, len(data))
		}
		if err := s2.WriteBlock(0, b.begin, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s2.FinishPiece(0); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("FinishPiece(corrupt) = %v", err)
	}
	s2.mu.Lock()
	n := len(s2.wbufHeld)
	s2.mu.Unlock()
	if n != 0 || !isHole(t, s2, 0) {
		t.Fatalf("after a mismatch: %d buffers held, hole %v", n, isHole(t, s2, 0))
	}
}
