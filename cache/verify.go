package cache

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// verifyProgress counts the work of background re-verification.
type verifyProgress struct {
	pieces, checked, good atomic.Int64
	total, bytes          atomic.Int64
}

// VerifyProgress is a snapshot of background re-verification: how many
// pieces (and bytes) it was given, how many it has checked so far, and how
// many of those verified and became present.
type VerifyProgress struct {
	Pieces, Checked, Good int
	Bytes, TotalBytes     int64
	// Done is set once verification has ended (or none was needed).
	Done bool
}

// VerifyProgress returns the progress of background re-verification, for a
// progress line; VerifyDone says when it ends.
func (s *Store) VerifyProgress() VerifyProgress {
	vp := VerifyProgress{
		Pieces:     int(s.progress.pieces.Load()),
		Checked:    int(s.progress.checked.Load()),
		Good:       int(s.progress.good.Load()),
		Bytes:      s.progress.bytes.Load(),
		TotalBytes: s.progress.total.Load(),
	}
	select {
	case <-s.VerifyDone():
		vp.Done = true
	default:
	}
	return vp
}

// allPieces returns 0 .. n-1.
func allPieces(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// startVerify queues pieces (ascending) for re-verification in the
// background and starts the workers unless they are running. It runs in
// Open, before anything else uses the store, or later with mu held (a
// file of the Files layout changed while the store is open): then a round
// that had ended gets a new VerifyDone channel.
func (s *Store) startVerify(pieces []int) {
	var total int64
	for _, p := range pieces {
		total += s.info.PieceSize(p)
	}
	s.progress.pieces.Add(int64(len(pieces)))
	s.progress.total.Add(total)
	s.verifyQueue = append(s.verifyQueue, pieces...)
	if s.verifying || len(pieces) == 0 {
		return
	}
	// The channel made in Open serves the first round; a later round
	// gets its own (the last one's may not be closed yet).
	select {
	case <-s.verifyDone:
		s.verifyDone = make(chan struct{})
	default:
		if s.verifyRounds > 0 {
			s.verifyDone = make(chan struct{})
		}
	}
	s.verifyRounds++
	s.verifying = true
	s.bg.Add(1)
	go s.verifyPieces(s.verifyDone)
}

// verifyPieces re-hashes the queued pieces of untrusted data on s.workers
// goroutines, each with its own read buffer, taking pieces in order so
// that reads stay mostly sequential. Pieces become present one by one as
// they verify; pieces the caller is writing meanwhile are left to the
// caller. When the queue is empty it persists the state at once (a kill -9
// right after verification loses none of it), then closes done.
func (s *Store) verifyPieces(done chan struct{}) {
	defer s.bg.Done()
	for {
		s.mu.Lock()
		n := min(s.workers, len(s.verifyQueue))
		s.mu.Unlock()
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				zeroHash := map[int64]metainfo.Hash{}
				for s.verifyOne(zeroHash) {
				}
			}()
		}
		wg.Wait()
		s.mu.Lock()
		if len(s.verifyQueue) == 0 || s.closed {
			s.verifying = false
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				// Close persists on its own (and keeps the queue's
				// pieces to verify in the state).
				if err := s.persist(); err != nil {
					s.log.Warn("cache: persist after verification failed; will retry", "dir", s.dir, "err", err)
				}
			}
			s.log.Info("cache: re-verification done", "dir", s.ioDir, "present", s.progress.good.Load(), "checked", s.progress.checked.Load())
			close(done)
			return
		}
		s.mu.Unlock() // pieces queued as the workers ended: another pass
	}
}

// verifyOne takes the next queued piece and re-verifies it unless it is
// present or being written. It returns false when the queue is empty or
// the store has closed.
func (s *Store) verifyOne(zeroHash map[int64]metainfo.Hash) bool {
	s.mu.Lock()
	for d := time.Until(s.verifyAt); d > 0 && !s.closed; d = time.Until(s.verifyAt) {
		s.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.closeCh:
		}
		t.Stop()
		s.mu.Lock()
	}
	if s.closed || len(s.verifyQueue) == 0 {
		s.mu.Unlock()
		return false
	}
	p := s.verifyQueue[0]
	s.verifyQueue = s.verifyQueue[1:]
	if len(s.verifyQueue) == 0 {
		s.verifyQueue = nil
	}
	st := &s.pieces[p]
	if st.present || !st.busy.idle() || st.busy.writers > 0 || st.blocks.used() {
		s.mu.Unlock()
		s.progress.checked.Add(1)
		s.progress.bytes.Add(s.info.PieceSize(p))
		return true
	}
	st.busy.finishing = true
	s.ops.Add(1)
	s.mu.Unlock()

	if s.verifyHook != nil {
		s.verifyHook(p)
	}
	gens := s.fileGens(p)
	ok, err := s.verifyPiece(p, zeroHash)
	if !ok && err == nil {
		// Bytes that do not verify are garbage: return their space
		// (the Files layout keeps the user's bytes).
		if perr := s.punch(p); perr != nil {
			s.log.Warn("cache: cannot return the space of unverified data", "piece", p, "err", perr)
		}
	}

	s.mu.Lock()
	st.busy.finishing = false
	if s.fileGens(p) != gens && !s.closed {
		// A file of the piece changed while it was hashed: what was
		// read may be old, and the change's handler, which queued its
		// file's pieces, skipped this busy one.
		ok, err = false, nil
		s.startVerify([]int{p})
	}
	if ok {
		s.markPresentLocked(p)
		s.progress.good.Add(1)
	}
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.ops.Done()
	s.progress.checked.Add(1)
	s.progress.bytes.Add(s.info.PieceSize(p))
	if err != nil {
		s.log.Warn("cache: re-verify piece", "piece", p, "err", s.diskErr(fmt.Sprintf("verify piece %d", p), p, err))
	}
	if ok {
		s.budget.enforce()
	}
	return true
}

// fileGens returns the change count of the files that hold piece p (0 with
// the DataFile layout): it differs once any of them was found changed.
func (s *Store) fileGens(p int) uint64 {
	if s.files == nil {
		return 0
	}
	return s.files.gens(s.info.PieceOffset(p), s.info.PieceSize(p))
}

// verifyPiece hashes piece p from disk, skipping the read when the piece is
// entirely a hole and its hash is not that of zeros.
func (s *Store) verifyPiece(p int, zeroHash map[int64]metainfo.Hash) (bool, error) {
	off, size := s.info.PieceOffset(p), s.info.PieceSize(p)
	if s.data.isHole(off, size) {
		zh, ok := zeroHash[size]
		if !ok {
			h := sha1.New()
			bp := chunkPool.Get().(*[]byte)
			buf := *bp
			clear(buf)
			for done := int64(0); done < size; {
				n := min(int64(len(buf)), size-done)
				h.Write(buf[:n])
				done += n
			}
			chunkPool.Put(bp)
			h.Sum(zh[:0])
			zeroHash[size] = zh
		}
		return zh == s.info.Pieces[p], nil
	}
	return s.hashFromFile(p, nil, 0)
}

// hashFromFile reports whether the bytes of piece on disk match its hash; a
// file of the Files layout too short to hold them (or missing) is a
// mismatch, not an error.
// When h is not nil it already holds the SHA-1 state of the piece's first
// from bytes, and only the rest is read back.
func (s *Store) hashFromFile(piece int, h hash.Hash, from int64) (bool, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	if h == nil {
		h, from = sha1.New(), 0
	}
	off, size := s.info.PieceOffset(piece), s.info.PieceSize(piece)
	for done := from; done < size; {
		n := min(int64(len(buf)), size-done)
		m, err := s.data.readAt(buf[:n], off+done)
		if errors.Is(err, errShort) {
			return false, nil // a file is too short to hold the piece
		}
		if err != nil && !(err == io.EOF && int64(m) == n) {
			return false, err
		}
		h.Write(buf[:m])
		done += int64(m)
	}
	var sum [sha1.Size]byte
	return bytes.Equal(h.Sum(sum[:0]), s.info.Pieces[piece][:]), nil
}
