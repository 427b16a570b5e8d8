package cache

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"hash"
	"io"
	"sync"
)

const hashChunk = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, hashChunk); return &b }}

func (s *Store) checkPiece(piece int) error {
	if piece < 0 || piece >= len(s.pieces) {
		return fmt.Errorf("%w: piece %d of %d", ErrRange, piece, len(s.pieces))
	}
	return nil
}

func (s *Store) numBlocks(piece int) int {
	return int((s.info.PieceSize(piece) + BlockSize - 1) / BlockSize)
}

// WriteBlock stores data at offset begin of piece without verifying it.
// Staged bytes are invisible to readers until FinishPiece verifies the
// piece. begin must be a multiple of BlockSize and the block must be a
// multiple of BlockSize long or end at the end of the piece. Writing to a
// present piece is ignored (returns nil): verified bytes are never
// overwritten. Blocks may arrive in any order and more than once; the last
// write of a range wins. A write error (disk full, I/O error) is returned
// wrapped; nothing already present is affected.
func (s *Store) WriteBlock(piece, begin int, data []byte) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	size := s.info.PieceSize(piece)
	end := int64(begin) + int64(len(data))
	if begin < 0 || len(data) == 0 || begin%BlockSize != 0 || end > size ||
		(len(data)%BlockSize != 0 && end != size) {
		return fmt.Errorf("%w: block [%d, %d) of piece %d (%d bytes)", ErrRange, begin, end, piece, size)
	}
	s.mu.Lock()
	st := &s.pieces[piece]
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if st.present {
			s.mu.Unlock()
			return nil
		}
		if !st.finishing && !st.punching {
			break
		}
		s.waitBusyLocked()
	}
	st.pendingPunch = false // being downloaded again: keep the space
	off := int64(begin)
	if st.hasher != nil && off < st.hashed+st.feeding {
		// This write changes bytes already hashed (or being hashed).
		st.hasher, st.hashed = nil, 0
	}
	if st.staged == nil {
		nb := s.numBlocks(piece)
		st.staged, st.inflight = make([]uint64, (nb+63)/64), make([]uint16, nb)
	}
	b0, b1 := begin/BlockSize, int((end+BlockSize-1)/BlockSize)
	busy := false
	for b := b0; b < b1; b++ {
		busy = busy || st.inflight[b] > 0
	}
	// Hash on arrival when this block continues the hashed prefix and no
	// other write of the same bytes is in flight (whose data could land
	// after ours). Later writes that overlap the prefix reset it above.
	var h hash.Hash
	if st.feeding == 0 && off == st.hashed && !busy {
		if st.hasher == nil {
			st.hasher = sha1.New()
		}
		h = st.hasher
		st.feeding = int64(len(data))
	}
	for b := b0; b < b1; b++ {
		st.inflight[b]++
	}
	st.writers++
	s.ops.Add(1)
	s.mu.Unlock()

	_, err := s.f.WriteAt(data, s.info.PieceOffset(piece)+off)
	if h != nil && err == nil {
		h.Write(data) // hot in cache: this costs no extra read
	}

	s.mu.Lock()
	st.writers--
	if h != nil {
		st.feeding = 0
		if st.hasher == h {
			if err == nil {
				st.hashed += int64(len(data))
			} else {
				st.hasher, st.hashed = nil, 0
			}
		}
	}
	for b := b0; b < b1; b++ {
		st.inflight[b]--
		if err == nil && st.staged[b/64]&(1<<(b%64)) == 0 {
			st.staged[b/64] |= 1 << (b % 64)
			st.stagedN++
		}
	}
	if st.writers == 0 {
		s.wakeBusyLocked()
	}
	s.mu.Unlock()
	s.ops.Done()
	if err != nil {
		return fmt.Errorf("cache: write piece %d block at %d: %w", piece, begin, err)
	}
	return nil
}

// Staged returns how many blocks of piece have been written by WriteBlock
// since it was last finished or discarded, and how many it has.
func (s *Store) Staged(piece int) (staged, total int) {
	if s.checkPiece(piece) != nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pieces[piece].stagedN, s.numBlocks(piece)
}

// claimLocked waits until no other write, hash or punch is in flight on
// piece and marks it finishing. It returns done=true when the piece is
// already present.
func (s *Store) claimLocked(piece int) (done bool, err error) {
	st := &s.pieces[piece]
	for {
		if s.closed {
			return false, ErrClosed
		}
		if st.present {
			return true, nil
		}
		if !st.finishing && !st.punching && st.writers == 0 {
			break
		}
		s.waitBusyLocked()
	}
	st.finishing = true
	st.pendingPunch = false
	s.ops.Add(1)
	return false, nil
}

// FinishPiece verifies the staged blocks of piece with SHA-1: blocks that
// WriteBlock received in order were hashed on arrival (while still in the
// CPU cache), the rest are read back from the data file. On a match the piece becomes present: waiters
// wake and readers may see it. On a mismatch the staged blocks are discarded
// (their space punched out) and a *HashError naming the piece is returned.
// It fails with ErrIncomplete when blocks are missing. FinishPiece on a
// present piece returns nil.
func (s *Store) FinishPiece(piece int) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	s.mu.Lock()
	st := &s.pieces[piece]
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !st.present && st.stagedN < s.numBlocks(piece) {
		n := st.stagedN
		s.mu.Unlock()
		return fmt.Errorf("%w: piece %d has %d of %d blocks", ErrIncomplete, piece, n, s.numBlocks(piece))
	}
	done, err := s.claimLocked(piece)
	if done || err != nil {
		s.mu.Unlock()
		return err
	}
	if st.stagedN < s.numBlocks(piece) { // discarded while we waited
		st.finishing = false
		s.wakeBusyLocked()
		n := st.stagedN
		s.mu.Unlock()
		s.ops.Done()
		return fmt.Errorf("%w: piece %d has %d of %d blocks", ErrIncomplete, piece, n, s.numBlocks(piece))
	}
	h, from := st.hasher, st.hashed
	st.hasher, st.hashed = nil, 0
	s.mu.Unlock()
	defer s.ops.Done()

	ok, err := s.hashFromFile(piece, h, from)
	if err != nil {
		s.mu.Lock()
		st.finishing = false
		s.wakeBusyLocked()
		s.mu.Unlock()
		return fmt.Errorf("cache: verify piece %d: %w", piece, err)
	}
	if !ok {
		s.discard(piece)
		return &HashError{Piece: piece}
	}
	s.mu.Lock()
	st.finishing = false
	s.markPresentLocked(piece)
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.budget.enforce()
	return nil
}

// discard drops the staged blocks of a piece that the caller has marked
// finishing and punches out their space.
func (s *Store) discard(piece int) {
	s.mu.Lock()
	st := &s.pieces[piece]
	st.finishing = false
	st.punching = true
	st.staged, st.inflight = nil, nil
	st.stagedN = 0
	st.hasher, st.hashed = nil, 0
	s.mu.Unlock()
	if err := s.punch(piece); err != nil {
		s.log.Warn("cache: cannot discard piece data", "piece", piece, "err", err)
	}
	s.mu.Lock()
	st.punching = false
	s.wakeBusyLocked()
	s.mu.Unlock()
}

// hashFromFile reports whether the bytes of piece on disk match its hash.
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
		m, err := s.f.ReadAt(buf[:n], off+done)
		if err != nil && !(err == io.EOF && int64(m) == n) {
			return false, err
		}
		h.Write(buf[:m])
		done += int64(m)
	}
	var sum [sha1.Size]byte
	return bytes.Equal(h.Sum(sum[:0]), s.info.Pieces[piece][:]), nil
}

// WritePiece verifies a whole piece in memory and, when its SHA-1 matches,
// writes it and makes it present. A mismatch returns a *HashError and writes
// nothing. Any blocks staged for the piece are replaced. WritePiece on a
// present piece returns nil without writing.
func (s *Store) WritePiece(piece int, data []byte) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	if size := s.info.PieceSize(piece); int64(len(data)) != size {
		return fmt.Errorf("%w: piece %d is %d bytes, got %d", ErrRange, piece, size, len(data))
	}
	if sha1.Sum(data) != s.info.Pieces[piece] {
		return &HashError{Piece: piece}
	}
	s.mu.Lock()
	done, err := s.claimLocked(piece)
	if err == nil && !done {
		s.pieces[piece].hasher, s.pieces[piece].hashed = nil, 0
	}
	s.mu.Unlock()
	if done || err != nil {
		return err
	}
	defer s.ops.Done()
	if _, err := s.f.WriteAt(data, s.info.PieceOffset(piece)); err != nil {
		s.discard(piece)
		return fmt.Errorf("cache: write piece %d: %w", piece, err)
	}
	s.mu.Lock()
	s.pieces[piece].finishing = false
	s.markPresentLocked(piece)
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.budget.enforce()
	return nil
}
