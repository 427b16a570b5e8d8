package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type blockWrite struct {
	piece, begin int
	data         []byte
	corrupt      bool
}

// blocksOf splits piece i into its BlockSize blocks.
func blocksOf(tt *torrent, i int) []blockWrite {
	var bs []blockWrite
	p := tt.piece(i)
	for b := 0; b < len(p); b += BlockSize {
		bs = append(bs, blockWrite{piece: i, begin: b, data: p[b:min(b+BlockSize, len(p))]})
	}
	return bs
}

// mergeSome joins some neighbouring blocks of bs into one longer write.
func mergeSome(rng *rand.Rand, bs []blockWrite) []blockWrite {
	var out []blockWrite
	for k := 0; k < len(bs); k++ {
		b := bs[k]
		if k+1 < len(bs) && rng.IntN(4) == 0 {
			k++
			b.data = b.data[:len(b.data)+len(bs[k].data)] // adjacent in the payload
		}
		out = append(out, b)
	}
	return out
}

// checkRead compares one ReadAt with what the payload and the present set
// say it must return.
func checkRead(t *testing.T, s *Store, tt *torrent, present []bool, off, n int64) {
	t.Helper()
	buf := make([]byte, n)
	got, err := s.ReadAt(buf, off)
	total := tt.info.TotalLength
	want := int64(0)
	var wantErr error
	if off >= total {
		wantErr = io.EOF
	} else {
		end := min(off+n, total)
		first, last := tt.info.PieceSpan(off, end-off)
		k := first
		for k < last && present[k] {
			k++
		}
		if k > first {
			want = min(end, tt.info.PieceOffset(k)) - off
		}
		switch {
		case k < last:
			wantErr = ErrNotPresent
		case off+n > total:
			wantErr = io.EOF
		}
	}
	if int64(got) != want || !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
		t.Fatalf("ReadAt(off %d, n %d) = %d, %v; want %d, %v", off, n, got, err, want, wantErr)
	}
	if !bytes.Equal(buf[:got], tt.payload[off:off+int64(got)]) {
		t.Fatalf("ReadAt(off %d, n %d): bytes differ from payload", off, n)
	}
}

// TestRandomWriteOrders writes blocks of random torrents in random order,
// with duplicates, corrupt blocks and some double-length writes, under random
// write buffer and write chunk settings, finishing pieces as they complete,
// and checks random reads against the payload after every step.
func TestRandomWriteOrders(t *testing.T) {
	for seed := range uint64(24) {
		rng := rand.New(rand.NewPCG(seed, 99))
		pieceLen := []int64{BlockSize, 2 * BlockSize, 3*BlockSize + 1000, 65536, 8*BlockSize + 1000}[rng.IntN(5)]
		total := rng.Int64N(20*pieceLen) + 1
		tt := genTorrent(rng, pieceLen, total)
		s := openT(t, t.TempDir(), tt, Config{WriteBuffers: []int{-1, 1, 0}[rng.IntN(3)]})
		s.chunk = []int{BlockSize, 2 * BlockSize, writeChunk}[rng.IntN(3)]
		np := tt.info.NumPieces()

		var queue []blockWrite
		for i := range np {
			bs := blocksOf(tt, i)
			queue = append(queue, mergeSome(rng, bs)...)
			if rng.IntN(3) == 0 { // a duplicate
				queue = append(queue, bs[rng.IntN(len(bs))])
			}
		}
		rng.Shuffle(len(queue), func(a, b int) { queue[a], queue[b] = queue[b], queue[a] })
		// Corrupt blocks: some land last for their piece (so it fails),
		// some are followed by the right block (last write wins).
		for i := range np {
			if rng.IntN(4) != 0 {
				continue
			}
			bs := blocksOf(tt, i)
			b := bs[rng.IntN(len(bs))]
			bad := append([]byte(nil), b.data...)
			bad[rng.IntN(len(bad))] ^= 0x55
			pos := rng.IntN(len(queue) + 1)
			queue = append(queue[:pos], append([]blockWrite{{piece: i, begin: b.begin, data: bad, corrupt: true}}, queue[pos:]...)...)
		}

		present := make([]bool, np)
		lastCorrupt := make(map[[2]int]bool)
		for step := 0; len(queue) > 0; step++ {
			if step > 100000 {
				t.Fatal("write loop did not converge")
			}
			w := queue[0]
			queue = queue[1:]
			if err := s.WriteBlock(w.piece, w.begin, w.data); err != nil {
				t.Fatalf("WriteBlock(%d, %d): %v", w.piece, w.begin, err)
			}
			for b := w.begin; b < w.begin+len(w.data) && !present[w.piece]; b += BlockSize {
				lastCorrupt[[2]int{w.piece, b}] = w.corrupt
			}
			staged, all := s.Staged(w.piece)
			if staged == all && !present[w.piece] {
				corrupt := false
				for _, b := range blocksOf(tt, w.piece) {
					corrupt = corrupt || lastCorrupt[[2]int{w.piece, b.begin}]
				}
				err := s.FinishPiece(w.piece)
				var he *HashError
				switch {
				case corrupt && errors.As(err, &he) && he.Piece == w.piece && errors.Is(err, ErrHashMismatch):
					if st, _ := s.Staged(w.piece); st != 0 {
						t.Fatalf("piece %d: %d blocks still staged after mismatch", w.piece, st)
					}
					for _, b := range blocksOf(tt, w.piece) {
						delete(lastCorrupt, [2]int{w.piece, b.begin})
					}
					queue = append(queue, mergeSome(rng, blocksOf(tt, w.piece))...) // download again
				case !corrupt && err == nil:
					present[w.piece] = true
				default:
					t.Fatalf("FinishPiece(%d) corrupt=%v: %v", w.piece, corrupt, err)
				}
			}
			if s.Has(w.piece) != present[w.piece] {
				t.Fatalf("Has(%d) = %v, want %v", w.piece, !present[w.piece], present[w.piece])
			}
			off := rng.Int64N(total + 10)
			checkRead(t, s, tt, present, off, rng.Int64N(3*pieceLen)+1)
		}
		for i := range np {
			if !present[i] {
				t.Fatalf("seed %d: piece %d never became present", seed, i)
			}
		}
		// A corrupt duplicate for a present piece is ignored.
		bad := bytes.Repeat([]byte{0xEE}, len(blocksOf(tt, 0)[0].data))
		if err := s.WriteBlock(0, 0, bad); err != nil {
			t.Fatal(err)
		}
		checkRead(t, s, tt, present, 0, total)
		if n, b := s.Present(); n != np || b != total {
			t.Fatalf("Present() = %d, %d; want %d, %d", n, b, np, total)
		}
		s.Close()
	}
}

func TestWritePieceAndErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tt := genTorrent(rng, 32<<10, 100<<10)
	s := openT(t, t.TempDir(), tt, Config{})

	bad := append([]byte(nil), tt.piece(1)...)
	bad[5] ^= 1
	var he *HashError
	if err := s.WritePiece(1, bad); !errors.As(err, &he) || he.Piece != 1 {
		t.Fatalf("WritePiece(corrupt) = %v, want HashError{1}", err)
	}
	if s.Has(1) || !isHole(t, s, 1) {
		t.Fatal("corrupt piece present or written")
	}
	if err := s.WritePiece(1, tt.piece(1)[1:]); !errors.Is(err, ErrRange) {
		t.Fatalf("short WritePiece = %v, want ErrRange", err)
	}
	for _, c := range []struct{ piece, begin, n int }{{-1, 0, BlockSize}, {4, 0, BlockSize}, {0, 1, BlockSize},
		{0, 0, 100}, {0, 16384, 32768}, {3, 0, 4<<10 + 1}, {0, 0, 0}} {
		if err := s.WriteBlock(c.piece, c.begin, make([]byte, c.n)); !errors.Is(err, ErrRange) {
			t.Errorf("WriteBlock(%d, %d, %d bytes) = %v, want ErrRange", c.piece, c.begin, c.n, err)
		}
	}
	if err := s.WriteBlock(0, 0, tt.piece(0)[:BlockSize]); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishPiece(0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("FinishPiece(incomplete) = %v, want ErrIncomplete", err)
	}
	if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadAt(staged) = %v, want ErrNotPresent", err)
	}
	// The last piece (4 KiB) goes in as one short block.
	if err := s.WriteBlock(3, 0, tt.piece(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishPiece(3); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePiece(1, tt.piece(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePiece(1, tt.piece(1)); err != nil {
		t.Fatalf("WritePiece of a present piece: %v", err)
	}
	blk := make([]byte, 100)
	if err := s.ReadBlock(1, 200, blk); err != nil || !bytes.Equal(blk, tt.piece(1)[200:300]) {
		t.Fatalf("ReadBlock: %v", err)
	}
	if err := s.ReadBlock(2, 0, blk); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadBlock(absent) = %v", err)
	}
	if err := s.ReadBlock(3, 4000, blk); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadBlock(past piece end) = %v", err)
	}
	if _, err := s.ReadPiece(1, blk); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("ReadPiece(short buffer) = %v", err)
	}
	if _, err := s.ReadAt(blk, -1); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadAt(-1) = %v", err)
	}
	if _, err := Open(filepath.Dir(s.Dir()), tt.hash, tt.info, Config{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.WritePiece(2, tt.piece(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("WritePiece after Close = %v", err)
	}
	if _, err := s.ReadAt(blk, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close = %v", err)
	}
	if err := Remove(filepath.Dir(s.Dir()), tt.hash); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir()); !os.IsNotExist(err) {
		t.Fatalf("store dir still there after Remove: %v", err)
	}
}

func TestWait(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tt := genTorrent(rng, 16<<10, 64<<10)
	s := openT(t, t.TempDir(), tt, Config{})

	const waiters = 50
	errs := make(chan error, waiters)
	for range waiters {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs <- s.Wait(ctx, 2)
		}()
	}
	// Let some of them block before the piece lands.
	time.Sleep(20 * time.Millisecond)
	if err := s.WritePiece(2, tt.piece(2)); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		if err := <-errs; err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if err := s.Wait(context.Background(), 2); err != nil {
		t.Fatalf("Wait on a present piece: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with expiring ctx = %v", err)
	}
	if err := s.Wait(context.Background(), 99); !errors.Is(err, ErrRange) {
		t.Fatalf("Wait(99) = %v", err)
	}
	var wg sync.WaitGroup
	closedErrs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			closedErrs <- s.Wait(context.Background(), 3)
		}()
	}
	time.Sleep(20 * time.Millisecond)
	s.Close()
	wg.Wait()
	for range 10 {
		if err := <-closedErrs; !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait across Close = %v, want ErrClosed", err)
		}
	}
	if err := s.Wait(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v", err)
	}
}

// TestConcurrentLoad runs writers (racing on the same pieces, some with
// corrupt blocks), readers and waiters together; run it with -race.
func TestConcurrentLoad(t *testing.T) {
	for _, c := range []struct{ chunk, buffers int }{{writeChunk, 0}, {2 * BlockSize, 2}} {
		t.Run(fmt.Sprintf("chunk=%d,buffers=%d", c.chunk, c.buffers), func(t *testing.T) {
			concurrentLoad(t, c.chunk, c.buffers)
		})
	}
}

func concurrentLoad(t *testing.T, chunk, buffers int) {
	rng := rand.New(rand.NewPCG(5, 6))
	tt := genTorrent(rng, 64<<10, 4<<20+123)
	s := openT(t, t.TempDir(), tt, Config{SyncInterval: 5 * time.Millisecond, WriteBuffers: buffers})
	s.chunk = chunk
	np := tt.info.NumPieces()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for round := 0; round < 50 && ctx.Err() == nil; round++ {
				i := r.IntN(np)
				for _, b := range blocksOf(tt, i) {
					data := b.data
					if r.IntN(20) == 0 {
						data = bytes.Repeat([]byte{1}, len(data))
					}
					if err := s.WriteBlock(i, b.begin, data); err != nil {
						t.Error(err)
						return
					}
				}
				err := s.FinishPiece(i)
				if err != nil && !errors.Is(err, ErrHashMismatch) && !errors.Is(err, ErrIncomplete) {
					t.Error(err)
					return
				}
			}
			for i := w; i < np; i += 4 {
				if err := s.WritePiece(i, tt.piece(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range np {
				if err := s.Wait(ctx, i); err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, tt.info.PieceSize(i))
				if _, err := s.ReadAt(buf, tt.info.PieceOffset(i)); err != nil || !bytes.Equal(buf, tt.piece(i)) {
					t.Errorf("piece %d read after Wait: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkPresentData(t, s, tt)
	if n, _ := s.Present(); n != np {
		t.Fatalf("%d of %d pieces present", n, np)
	}
}

// TestNoStaleHash checks that a block rewritten after it was hashed on
// arrival, or while it was being hashed, is verified as it is on disk.
func TestNoStaleHash(t *testing.T) {
	for _, chunk := range []int{writeChunk, BlockSize, 2 * BlockSize} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) { noStaleHash(t, chunk) })
	}
}

func noStaleHash(t *testing.T, chunk int) {
	rng := rand.New(rand.NewPCG(31, 32))
	tt := genTorrent(rng, 4*BlockSize, 40*4*BlockSize)
	s := openT(t, t.TempDir(), tt, Config{})
	s.chunk = chunk
	bs := blocksOf(tt, 0)
	bad := bytes.Repeat([]byte{7}, BlockSize)
	// In order (hashed on arrival), then block 1 overwritten with junk.
	for _, b := range bs {
		if err := s.WriteBlock(0, b.begin, b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteBlock(0, BlockSize, bad); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishPiece(0); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("FinishPiece after a junk rewrite = %v, want mismatch", err)
	}
	// Junk first, then the right block: the last write wins.
	if err := s.WriteBlock(0, 0, bad); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := s.WriteBlock(0, b.begin, b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishPiece(0); err != nil {
		t.Fatalf("FinishPiece: %v", err)
	}
	// Racing writers of the same block with different data: whatever
	// FinishPiece accepts must be the payload.
	for i := 1; i < tt.info.NumPieces(); i++ {
		bs := blocksOf(tt, i)
		var wg sync.WaitGroup
		for k, b := range bs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if k == 0 {
					s.WriteBlock(i, 0, bad)
				}
				s.WriteBlock(i, b.begin, b.data)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.WriteBlock(i, 0, bad)
		}()
		wg.Wait()
		err := s.FinishPiece(i)
		if err != nil && !errors.Is(err, ErrHashMismatch) {
			t.Fatal(err)
		}
	}
	checkPresentData(t, s, tt)
}

func TestDefaultDirAndEmptyTorrent(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/some/where")
	if d := DefaultDir(); d != "/some/where/swarmfs" {
		t.Fatalf("DefaultDir() = %q with XDG_CACHE_HOME set", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/x")
	if d := DefaultDir(); d != "/home/x/.cache/swarmfs" {
		t.Fatalf("DefaultDir() = %q without XDG_CACHE_HOME", d)
	}
	tt := torrentOf(nil, BlockSize)
	s := openT(t, t.TempDir(), tt, Config{})
	if _, err := s.ReadAt(make([]byte, 1), 0); err != io.EOF {
		t.Fatalf("ReadAt on an empty torrent = %v, want io.EOF", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bad := torrentOf(make([]byte, 100), BlockSize)
	bad.info.Pieces = append(bad.info.Pieces, bad.info.Pieces[0])
	if _, err := Open(t.TempDir(), bad.hash, bad.info, Config{}); err == nil {
		t.Fatal("Open accepted an Info whose piece count does not fit its length")
	}
}
