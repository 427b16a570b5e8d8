package cache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// diskUsage returns the bytes a file occupies on disk, like du.
func diskUsage(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestEvictionCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const pl = 64 << 10
	tt := genTorrent(rng, pl, 64*pl)
	const capBytes = 16 * pl
	b := NewBudget(capBytes)
	s := openT(t, t.TempDir(), tt, Config{Budget: b})
	pinned := []int{0, 1, 2, 3}
	for _, p := range pinned {
		s.Pin(p)
	}
	for i := range tt.info.NumPieces() {
		var err error
		if i%2 == 0 {
			err = s.WritePiece(i, tt.piece(i))
		} else {
			for _, bw := range blocksOf(tt, i) {
				if err := s.WriteBlock(i, bw.begin, bw.data); err != nil {
					t.Fatal(err)
				}
			}
			err = s.FinishPiece(i)
		}
		if err != nil {
			t.Fatal(err)
		}
		if u := b.Used(); u > capBytes {
			t.Fatalf("after piece %d: used %d > cap %d", i, u, capBytes)
		}
		switch i {
		case 40:
			// Pieces 0-3 (pinned) and 29-40 fill the cap. Reading the
			// oldest, 29, makes 30 the next victim.
			if _, err := s.ReadAt(make([]byte, 10), tt.info.PieceOffset(29)); err != nil {
				t.Fatal(err)
			}
		case 41:
			if !s.Has(29) || s.Has(30) {
				t.Fatalf("LRU: Has(29) = %v, Has(30) = %v after reading 29", s.Has(29), s.Has(30))
			}
		}
	}
	if pk := b.Peak(); pk > capBytes+pl {
		t.Fatalf("peak usage %d > cap + one piece %d", pk, capBytes+pl)
	}
	for _, p := range pinned {
		if !s.Has(p) {
			t.Fatalf("pinned piece %d was evicted", p)
		}
	}
	select {
	case <-s.Evictions():
	default:
		t.Fatal("Evictions() not signalled")
	}
	ev := s.TakeEvicted()
	n, bytesPresent := s.Present()
	if n+len(ev) != tt.info.NumPieces() || bytesPresent != b.Used() {
		t.Fatalf("present %d + evicted %d != %d pieces (used %d, present bytes %d)", n, len(ev), tt.info.NumPieces(), b.Used(), bytesPresent)
	}
	for _, p := range ev {
		if s.Has(p) {
			t.Fatalf("evicted piece %d still present", p)
		}
		if _, err := s.ReadAt(make([]byte, 1), tt.info.PieceOffset(p)); !errors.Is(err, ErrNotPresent) {
			t.Fatalf("ReadAt of evicted piece %d: %v", p, err)
		}
	}
	if len(s.TakeEvicted()) != 0 {
		t.Fatal("TakeEvicted returned pieces twice")
	}
	checkPresentData(t, s, tt)
	// du: the evicted pieces' space went back to the filesystem.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if du := diskUsage(t, filepath.Join(s.Dir(), dataName)); du > capBytes+pl {
		t.Fatalf("data file occupies %d bytes on disk, cap %d", du, capBytes)
	}
	// Unpinning lets the cap apply to those pieces again.
	s2 := openT(t, t.TempDir(), tt, Config{Budget: b})
	for i := range 8 {
		if err := s2.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pinned {
		s.Unpin(p)
	}
	if u := b.Used(); u > capBytes {
		t.Fatalf("used %d > cap after Unpin", u)
	}
	// A reopened store charges its pieces and enforces a smaller cap.
	s.Close()
	small := NewBudget(4 * pl)
	s3 := openT(t, filepath.Dir(s.Dir()), tt, Config{Budget: small})
	if n, _ := s3.Present(); n > 4 || small.Used() > 4*pl {
		t.Fatalf("reopen under a smaller cap kept %d pieces (%d bytes)", n, small.Used())
	}
}

// TestStreamLargerThanCap streams a torrent eight times larger than the cap
// from a downloader to a reader that pins its window, end to end.
func TestStreamLargerThanCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const pl = 128 << 10
	tt := genTorrent(rng, pl, 64*pl-999)
	const capBytes = 8 * pl
	const window = 4
	b := NewBudget(capBytes)
	s := openT(t, t.TempDir(), tt, Config{Budget: b})
	np := tt.info.NumPieces()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pinnedUpTo := make(chan int, np) // reader -> downloader: window end
	done := make(chan error, 1)
	go func() { // downloader: fetches what the reader's window asks for
		next := 0
		for next < np {
			var end int
			select {
			case end = <-pinnedUpTo:
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
			for ; next < end; next++ {
				for _, bw := range blocksOf(tt, next) {
					if err := s.WriteBlock(next, bw.begin, bw.data); err != nil {
						done <- err
						return
					}
				}
				if err := s.FinishPiece(next); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	h := sha1.New()
	buf := make([]byte, 100_000) // reads cross piece boundaries
	for i := range min(window, np) {
		s.Pin(i)
	}
	pinnedUpTo <- min(window, np)
	for off := int64(0); off < tt.info.TotalLength; {
		p := tt.info.PieceAt(off)
		if err := s.Wait(ctx, p); err != nil {
			t.Fatal(err)
		}
		n, err := s.ReadAt(buf, off)
		if errors.Is(err, ErrNotPresent) && n == 0 {
			t.Fatalf("piece %d evicted while pinned", p)
		}
		h.Write(buf[:n])
		off += int64(n)
		// Slide the window: unpin what is behind, pin what is ahead.
		if np2 := tt.info.PieceAt(min(off, tt.info.TotalLength-1)); np2 > p || off >= tt.info.TotalLength {
			for q := p; q < min(np2, np); q++ {
				s.Unpin(q)
				if q+window < np {
					s.Pin(q + window)
				}
			}
			pinnedUpTo <- min(np2+window, np)
		}
		if u := b.Used(); u > capBytes+pl {
			t.Fatalf("used %d > cap + one piece", u)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), func() []byte { s := sha1.Sum(tt.payload); return s[:] }()) {
		t.Fatal("streamed bytes differ from the payload")
	}
	if len(s.TakeEvicted()) < np-capBytes/pl-1 {
		t.Fatal("too few evictions for a stream larger than the cap")
	}
	if pk := b.Peak(); pk > capBytes+pl {
		t.Fatalf("peak %d > cap + one piece", pk)
	}
}

// TestBudgetSharedConcurrent loads two stores sharing one budget from many
// goroutines (writers, readers, pinners); run with -race.
func TestBudgetSharedConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const pl = 32 << 10
	tts := []*torrent{genTorrent(rng, pl, 48*pl), genTorrent(rng, pl, 40*pl+5)}
	const capBytes = 20 * pl
	b := NewBudget(capBytes)
	root := t.TempDir()
	stores := []*Store{openT(t, root, tts[0], Config{Budget: b}), openT(t, root, tts[1], Config{Budget: b})}
	// Pieces pinned for the whole run must survive it.
	for _, s := range stores {
		s.Pin(5)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 17))
			for range 150 {
				k := r.IntN(2)
				s, tt := stores[k], tts[k]
				i := r.IntN(tt.info.NumPieces())
				if w == 0 && r.IntN(4) == 0 {
					i = 5
				}
				if err := s.WritePiece(i, tt.piece(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for rd := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 18))
			buf := make([]byte, 3*pl)
			for range 400 {
				k := r.IntN(2)
				s, tt := stores[k], tts[k]
				off := r.Int64N(tt.info.TotalLength)
				i := tt.info.PieceAt(off)
				pin := r.IntN(3) == 0
				if pin {
					s.Pin(i)
				}
				n, err := s.ReadAt(buf, off)
				if err != nil && !errors.Is(err, ErrNotPresent) && !errors.Is(err, io.EOF) {
					t.Error(err)
					return
				}
				if !bytes.Equal(buf[:n], tt.payload[off:off+int64(n)]) {
					t.Errorf("store %d: bytes at %d differ", k, off)
					return
				}
				if pin {
					s.Unpin(i)
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for k, s := range stores {
		_, bytesPresent := s.Present()
		total += bytesPresent
		checkPresentData(t, s, tts[k])
	}
	for k, s := range stores {
		if !s.Has(5) {
			t.Fatalf("store %d: piece 5, pinned all along, is not present", k)
		}
	}
	if total != b.Used() {
		t.Fatalf("budget charges %d bytes, stores hold %d", b.Used(), total)
	}
	// Besides the cap: one piece per concurrent writer, the two pieces
	// pinned all along and one pinned by each reader.
	if pk := b.Peak(); pk > capBytes+(writers+2+4)*pl {
		t.Fatalf("peak %d > cap + one piece per writer and per pinned piece", pk)
	}
}
