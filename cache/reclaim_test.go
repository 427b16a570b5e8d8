package cache

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileRange reports whether [off, off+n) of s's data file is all hole and
// whether it is all data. Buffered blocks are holes until written out.
func fileRange(t *testing.T, s *Store, off, n int64) (hole, data bool) {
	t.Helper()
	d, err := unix.Seek(s.data.(*dataFile).fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return true, false
	case err != nil:
		t.Fatal(err)
	}
	h, err := unix.Seek(s.data.(*dataFile).fd, off, unix.SEEK_HOLE)
	if err != nil {
		t.Fatal(err)
	}
	return d >= off+n, d == off && h >= off+n
}

// blockHole reports whether block k of piece is a hole in the data file.
func blockHole(t *testing.T, s *Store, piece, k int) bool {
	t.Helper()
	off := s.info.PieceOffset(piece) + int64(k)*BlockSize
	hole, _ := fileRange(t, s, off, min(BlockSize, s.info.PieceSize(piece)-int64(k)*BlockSize))
	return hole
}

// heldBy returns the pieces that hold a write buffer.
func heldBy(s *Store) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.wbufHeld...)
}

// hasWbuf reports whether piece holds a write buffer.
func hasWbuf(s *Store, piece int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pieces[piece].buf.b != nil
}

func writeT(t *testing.T, s *Store, ws ...blockWrite) {
	t.Helper()
	for _, w := range ws {
		if err := s.WriteBlock(w.piece, w.begin, w.data); err != nil {
			t.Fatalf("WriteBlock(%d, %d): %v", w.piece, w.begin, err)
		}
	}
}

// TestReclaimAbandoned leaves two pieces half-written on a store with two
// write buffers and checks that pieces written afterwards are still
// buffered: the idle pieces' buffers are reclaimed, their bytes written to
// the data file and still staged, their hashed prefix kept; completed
// later, they verify and read back.
func TestReclaimAbandoned(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(51, 52)), 8*BlockSize, 12*8*BlockSize)
	s := openT(t, t.TempDir(), tt, Config{WriteBuffers: 2})
	// s.chunk stays larger than a piece: buffered bytes reach the file
	// only when the piece is finished or its buffer reclaimed.
	np := tt.info.NumPieces()
	bs0, bs1 := blocksOf(tt, 0), blocksOf(tt, 1)
	writeT(t, s, bs0[:4]...) // in order: hashed and buffered
	writeT(t, s, bs0[6])     // out of order: straight to the file
	writeT(t, s, bs1[:4]...)
	for _, p := range []int{0, 1} {
		if !blockHole(t, s, p, 0) || !blockHole(t, s, p, 3) || !hasWbuf(s, p) {
			t.Fatalf("piece %d: first blocks not buffered", p)
		}
	}

	// The half-written pieces are abandoned; pieces 2.. come two at a
	// time, interleaved, and every one of them ends up buffered.
	for p := 2; p < np; p += 2 {
		for k := range 8 {
			writeT(t, s, blocksOf(tt, p)[k], blocksOf(tt, p+1)[k])
		}
		for _, q := range []int{p, p + 1} {
			if !blockHole(t, s, q, 7) {
				t.Fatalf("piece %d (written after pieces were abandoned) was not buffered", q)
			}
			if err := s.FinishPiece(q); err != nil {
				t.Fatalf("FinishPiece(%d): %v", q, err)
			}
		}
		if n := len(heldBy(s)); n > 2 {
			t.Fatalf("%d write buffers held, the limit is 2", n)
		}
	}

	// The abandoned pieces' buffered blocks are in the file, still staged,
	// and their hashes on arrival kept.
	for _, c := range []struct{ piece, staged int }{{0, 5}, {1, 4}} {
		if _, data := fileRange(t, s, s.info.PieceOffset(c.piece), 4*BlockSize); !data {
			t.Fatalf("piece %d: reclaimed blocks not written to the data file", c.piece)
		}
		if n, _ := s.Staged(c.piece); n != c.staged || s.Has(c.piece) {
			t.Fatalf("piece %d: %d blocks staged (present %v), want %d", c.piece, n, s.Has(c.piece), c.staged)
		}
		s.mu.Lock()
		st := &s.pieces[c.piece]
		hashed, wbuf := st.hash.n, st.buf.b != nil
		s.mu.Unlock()
		if hashed != 4*BlockSize || wbuf {
			t.Fatalf("piece %d after reclaim: hashed %d, buffer %v; want %d, none", c.piece, hashed, wbuf, 4*BlockSize)
		}
	}
	// Completed, they are hashed on arrival to the end (nothing is read
	// back) and verify.
	writeT(t, s, bs0[4:]...) // block 6 a second time
	writeT(t, s, bs1[4:]...)
	for _, p := range []int{0, 1} {
		s.mu.Lock()
		hashed := s.pieces[p].hash.n
		s.mu.Unlock()
		if hashed != tt.info.PieceSize(p) {
			t.Fatalf("piece %d: %d bytes hashed on arrival, want all %d", p, hashed, tt.info.PieceSize(p))
		}
		if err := s.FinishPiece(p); err != nil {
			t.Fatalf("FinishPiece(%d) after its buffer was reclaimed: %v", p, err)
		}
	}
	if n, _ := s.Present(); n != np {
		t.Fatalf("%d of %d pieces present", n, np)
	}
	if n := len(heldBy(s)); n != 0 {
		t.Fatalf("%d write buffers still held with every piece present", n)
	}
	checkPresentData(t, s, tt)
}

// TestReclaimSparesActive feeds three pieces in turn on a store with two
// write buffers: the two that got one keep it (taking it from a piece fed
// a few blocks ago would cost a write per block, more than no buffering).
func TestReclaimSparesActive(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(55, 56)), 8*BlockSize, 3*8*BlockSize)
	s := openT(t, t.TempDir(), tt, Config{WriteBuffers: 2})
	for k := range 8 {
		for p := range 3 {
			writeT(t, s, blocksOf(tt, p)[k])
		}
		if !hasWbuf(s, 0) || !hasWbuf(s, 1) || hasWbuf(s, 2) {
			t.Fatalf("after block %d: buffers held by %v, want pieces 0 and 1", k, heldBy(s))
		}
	}
	for p := range 3 {
		if err := s.FinishPiece(p); err != nil {
			t.Fatalf("FinishPiece(%d): %v", p, err)
		}
	}
	checkPresentData(t, s, tt)
}

// TestReclaimRandom writes random torrents on stores with few write
// buffers: a few pieces at a time, each mostly in order (some shuffled,
// some blocks merged, duplicates), some abandoned half-way and resumed at
// the end. After every write the staged count must be what was written
// (a reclaim loses nothing), no more buffers than allowed are held, and
// reads match the payload; every piece must verify.
func TestReclaimRandom(t *testing.T) {
	reclaims := 0
	for seed := range uint64(40) {
		reclaims += reclaimRandom(t, seed)
	}
	t.Logf("%d buffers reclaimed", reclaims)
	if reclaims < 40 {
		t.Fatalf("only %d buffers reclaimed: the test does not exercise reclaiming", reclaims)
	}
}

func reclaimRandom(t *testing.T, seed uint64) (reclaims int) {
	rng := rand.New(rand.NewPCG(seed, 77))
	pieceLen := []int64{2 * BlockSize, 4*BlockSize + 1000, 8 * BlockSize}[rng.IntN(3)]
	tt := genTorrent(rng, pieceLen, pieceLen+rng.Int64N(20*pieceLen))
	buffers := 1 + rng.IntN(3)
	s := openT(t, t.TempDir(), tt, Config{WriteBuffers: buffers})
	s.chunk = []int{BlockSize, 2 * BlockSize, 3 * BlockSize, writeChunk}[rng.IntN(4)]
	np := tt.info.NumPieces()

	queues := make([][]blockWrite, np)
	abandonAt := make([]int, np) // writes done before the piece is left
	for p := range queues {
		q := mergeSome(rng, blocksOf(tt, p))
		switch rng.IntN(4) {
		case 0:
			rng.Shuffle(len(q), func(a, b int) { q[a], q[b] = q[b], q[a] })
		case 1:
			if k := rng.IntN(len(q)); k+1 < len(q) {
				q[k], q[k+1] = q[k+1], q[k]
			}
		}
		for range rng.IntN(3) { // duplicates, after their first copy
			k := rng.IntN(len(q))
			pos := k + 1 + rng.IntN(len(q)-k)
			q = append(q[:pos], append([]blockWrite{q[k]}, q[pos:]...)...)
		}
		queues[p] = q
		abandonAt[p] = len(q)
		if rng.IntN(3) == 0 {
			abandonAt[p] = rng.IntN(len(q))
		}
	}

	present := make([]bool, np)
	written := make([]map[int]bool, np) // blocks staged so far
	for p := range written {
		written[p] = map[int]bool{}
	}
	write := func(w blockWrite) {
		t.Helper()
		before := heldBy(s)
		if err := s.WriteBlock(w.piece, w.begin, w.data); err != nil {
			t.Fatalf("seed %d: WriteBlock(%d, %d): %v", seed, w.piece, w.begin, err)
		}
		for b := w.begin; b < w.begin+len(w.data); b += BlockSize {
			written[w.piece][b/BlockSize] = true
		}
		for _, q := range before {
			if q != w.piece && !hasWbuf(s, q) {
				reclaims++
			}
		}
		if n := len(heldBy(s)); n > buffers {
			t.Fatalf("seed %d: %d write buffers held, the limit is %d", seed, n, buffers)
		}
		if n, _ := s.Staged(w.piece); n != len(written[w.piece]) {
			t.Fatalf("seed %d: piece %d has %d blocks staged, %d written", seed, w.piece, n, len(written[w.piece]))
		}
		checkRead(t, s, tt, present, rng.Int64N(tt.info.TotalLength), rng.Int64N(3*pieceLen)+1)
	}
	// run writes the queues of pieces from todo, up to k at a time picked
	// at random, each until its abandon point; finished pieces must verify.
	run := func(todo []int, k int) {
		var active []int
		for len(todo) > 0 || len(active) > 0 {
			for len(active) < k && len(todo) > 0 {
				active, todo = append(active, todo[0]), todo[1:]
			}
			i := rng.IntN(len(active))
			p := active[i]
			if len(queues[p]) > 0 && abandonAt[p] > 0 {
				write(queues[p][0])
				queues[p] = queues[p][1:]
				abandonAt[p]--
				continue
			}
			active = append(active[:i], active[i+1:]...)
			if len(queues[p]) > 0 {
				continue // abandoned for now
			}
			if err := s.FinishPiece(p); err != nil {
				t.Fatalf("seed %d: FinishPiece(%d): %v", seed, p, err)
			}
			present[p] = true
		}
	}
	var all []int
	for p := range np {
		all = append(all, p)
	}
	run(all, 1+rng.IntN(4))
	var resume []int
	for p := range np {
		if !present[p] {
			resume = append(resume, p)
			abandonAt[p] = len(queues[p])
			if rng.IntN(2) == 0 { // a block written again: the hashed prefix is reset
				bs := blocksOf(tt, p)
				queues[p] = append([]blockWrite{bs[rng.IntN(len(bs))]}, queues[p]...)
				abandonAt[p]++
			}
		}
	}
	rng.Shuffle(len(resume), func(a, b int) { resume[a], resume[b] = resume[b], resume[a] })
	run(resume, 1+rng.IntN(4))
	if n, _ := s.Present(); n != np {
		t.Fatalf("seed %d: %d of %d pieces present", seed, n, np)
	}
	if n := len(heldBy(s)); n != 0 {
		t.Fatalf("seed %d: %d write buffers held with every piece present", seed, n)
	}
	checkPresentData(t, s, tt)
	return reclaims
}

// TestReclaimConcurrent has writers leave pieces half-written and come back
// to them later while other writers take their buffers, with readers
// checking that nothing unverified is ever returned; run it with -race.
func TestReclaimConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	tt := genTorrent(rng, 6*BlockSize, 96*6*BlockSize+BlockSize)
	s := openT(t, t.TempDir(), tt, Config{WriteBuffers: 2})
	s.chunk = 2 * BlockSize
	np := tt.info.NumPieces()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var writers, readers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 59))
			var left []int
			for p := w; p < np && ctx.Err() == nil; p += 4 {
				bs := blocksOf(tt, p)
				n := len(bs)
				if r.IntN(2) == 0 {
					n = r.IntN(len(bs))
					left = append(left, p)
				}
				for _, b := range bs[:n] {
					if err := s.WriteBlock(p, b.begin, b.data); err != nil {
						t.Error(err)
						return
					}
				}
				if n == len(bs) {
					if err := s.FinishPiece(p); err != nil {
						t.Errorf("FinishPiece(%d): %v", p, err)
						return
					}
				}
				if len(left) > 2 && r.IntN(3) == 0 { // come back to one
					q := left[0]
					left = left[1:]
					if !finishAll(t, s, tt, q, r) {
						return
					}
				}
			}
			for _, q := range left {
				if !finishAll(t, s, tt, q, r) {
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(60, 61))
			buf := make([]byte, tt.info.PieceLength)
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := r.IntN(np)
				n, err := s.ReadPiece(p, buf)
				switch {
				case errors.Is(err, ErrNotPresent):
				case err != nil:
					t.Errorf("ReadPiece(%d): %v", p, err)
					return
				case !bytes.Equal(buf[:n], tt.piece(p)):
					t.Errorf("ReadPiece(%d) returned bytes that differ from the payload", p)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if n, _ := s.Present(); n != np {
		t.Fatalf("%d of %d pieces present", n, np)
	}
	checkPresentData(t, s, tt)
}

// finishAll writes every block of piece, in order and the first one twice
// at times, and finishes it; it reports failures with t.Error.
func finishAll(t *testing.T, s *Store, tt *torrent, piece int, r *rand.Rand) bool {
	bs := blocksOf(tt, piece)
	if r.IntN(2) == 0 {
		bs = append([]blockWrite{bs[0]}, bs...)
	}
	for _, b := range bs {
		if err := s.WriteBlock(piece, b.begin, b.data); err != nil {
			t.Error(err)
			return false
		}
	}
	if err := s.FinishPiece(piece); err != nil {
		t.Errorf("FinishPiece(%d) of a piece left half-written: %v", piece, err)
		return false
	}
	return true
}

// TestReclaimDiskFull fails the write of a reclaimed buffer's bytes (disk
// full): the piece that took the buffer carries on, the idle piece loses
// exactly the blocks that were buffered (FinishPiece reports ErrIncomplete,
// not a mismatch, and the failure is logged with the piece) and verifies
// once they are written again.
func TestReclaimDiskFull(t *testing.T) {
	root := mountTmpfs(t, "1m")
	tt := genTorrent(rand.New(rand.NewPCG(53, 54)), 8*BlockSize, 4*8*BlockSize)
	var logBuf bytes.Buffer
	s := openT(t, root, tt, Config{WriteBuffers: 2, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	bs0, bs1, bs2 := blocksOf(tt, 0), blocksOf(tt, 1), blocksOf(tt, 2)
	writeT(t, s, bs0[:3]...) // buffered
	writeT(t, s, bs0[5])     // in the file
	// Piece 1 takes the other buffer and is fed until piece 0 is idle.
	writeT(t, s, bs1[:reclaimIdle*2]...)
	if !hasWbuf(s, 0) || !hasWbuf(s, 1) {
		t.Fatalf("buffers held by %v, want pieces 0 and 1", heldBy(s))
	}
	filler := filepath.Join(root, "filler")
	fillUp(t, filler)

	// Piece 2's first block takes piece 0's buffer, whose bytes cannot be
	// written out.
	if err := s.WriteBlock(2, 0, bs2[0].data); err != nil {
		t.Fatalf("WriteBlock of the piece taking a buffer: %v", err)
	}
	if !hasWbuf(s, 2) || hasWbuf(s, 0) {
		t.Fatalf("buffers held by %v after a reclaim, want pieces 1 and 2", heldBy(s))
	}
	for _, c := range []struct{ piece, staged int }{{0, 1}, {1, reclaimIdle * 2}, {2, 1}} {
		if n, _ := s.Staged(c.piece); n != c.staged {
			t.Fatalf("piece %d has %d blocks staged after a failed reclaim, want %d", c.piece, n, c.staged)
		}
	}
	if l := logBuf.String(); !strings.Contains(l, "piece=0") || !strings.Contains(l, syscall.ENOSPC.Error()) {
		t.Fatalf("the failed reclaim was not logged with the piece and the error: %q", l)
	}

	// Space comes back. Piece 0 without its lost blocks is incomplete; with
	// them it verifies. The others carry on.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	writeT(t, s, bs0[3], bs0[4], bs0[6], bs0[7])
	if err := s.FinishPiece(0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("FinishPiece of a piece whose buffered blocks were lost = %v, want ErrIncomplete", err)
	}
	writeT(t, s, bs0[:3]...)
	writeT(t, s, bs1[reclaimIdle*2:]...)
	writeT(t, s, bs2[1:]...)
	for p := range 3 {
		if err := s.FinishPiece(p); err != nil {
			t.Fatalf("FinishPiece(%d): %v", p, err)
		}
	}
	checkPresentData(t, s, tt)
	if n, _ := s.Present(); n != 3 {
		t.Fatalf("%d pieces present, want 3", n)
	}
}

// gatedReclaim opens a store with one write buffer whose piece 0 has all
// its blocks buffered (block 0 as given) and starts piece 1, whose second
// block reclaims piece 0's buffer; writing piece 0's bytes out then waits
// for release to be called (at the latest by the test's cleanup, before
// the store closes). It returns when that write is about to start; done is
// closed when piece 1's WriteBlock returns.
func gatedReclaim(t *testing.T, tt *torrent, block0 []byte) (s *Store, release func(), done chan struct{}) {
	t.Helper()
	s = openT(t, t.TempDir(), tt, Config{WriteBuffers: 1})
	started, gate := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	done = make(chan struct{})
	s.reclaimHook = func(piece int) {
		if piece != 0 {
			t.Errorf("the buffer of piece %d was reclaimed, want 0", piece)
			return
		}
		close(started)
		<-gate
	}
	bs := blocksOf(tt, 0)
	writeT(t, s, blockWrite{piece: 0, data: block0})
	writeT(t, s, bs[1:]...)
	b1 := blocksOf(tt, 1)
	// Straight to the file while piece 0 is not idle (reclaimIdle × one
	// buffer blocks in order since its last).
	writeT(t, s, b1[:reclaimIdle-1]...)
	go func() {
		defer close(done)
		if err := s.WriteBlock(1, b1[reclaimIdle-1].begin, b1[reclaimIdle-1].data); err != nil {
			t.Errorf("WriteBlock reclaiming a buffer: %v", err)
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("piece 0's buffer was not reclaimed")
	}
	return s, release, done
}

// waitBlocked waits until the call of what, which reports to ret, waits in
// waitBusyLocked (the only call that can), and fails if it returns instead.
func waitBlocked(t *testing.T, s *Store, what string, ret chan error) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		select {
		case err := <-ret:
			t.Fatalf("%s returned (%v) without waiting for the piece's buffered bytes to be written out", what, err)
		default:
		}
		s.mu.Lock()
		w := s.busyWaiting
		s.mu.Unlock()
		if w {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s neither waits nor returns", what)
		}
	}
}

// TestReclaimWaits holds the write of a reclaimed buffer's bytes and checks
// that the piece they belong to waits for it: a write of the same block
// lands after them (the last write wins), and FinishPiece does not make the
// piece readable before they are in the file.
func TestReclaimWaits(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(62, 63)), 8*BlockSize, 2*8*BlockSize)
	bs := blocksOf(tt, 0)

	t.Run("write", func(t *testing.T) {
		s, release, done := gatedReclaim(t, tt, make([]byte, BlockSize)) // block 0 wrong
		wrote := make(chan error, 1)
		go func() { wrote <- s.WriteBlock(0, 0, bs[0].data) }()
		waitBlocked(t, s, "WriteBlock over bytes being written out", wrote)
		release()
		<-done
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if err := s.FinishPiece(0); err != nil {
			t.Fatalf("FinishPiece after a block was rewritten during a reclaim: %v", err)
		}
		checkPresentData(t, s, tt)
	})

	t.Run("finish", func(t *testing.T) {
		s, release, done := gatedReclaim(t, tt, bs[0].data)
		finished := make(chan error, 1)
		go func() { finished <- s.FinishPiece(0) }()
		waitBlocked(t, s, "FinishPiece", finished)
		if s.Has(0) {
			t.Fatal("piece 0 present before its buffered bytes are in the file")
		}
		release()
		<-done
		if err := <-finished; err != nil {
			t.Fatal(err)
		}
		checkPresentData(t, s, tt)
	})
}
