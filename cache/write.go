package cache

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"hash"
	"sync"
)

// hashChunk is the size of the reads that verify a piece from the file.
const hashChunk = 1 << 20

// writeChunk is the size of the data file writes that WritePiece and the
// write buffers make: large enough that the cost per write call and per
// page cache folio is small, small enough that the bytes the kernel copies
// were just hashed and are still in the CPU's L2 cache.
const writeChunk = 256 << 10

var (
	chunkPool = sync.Pool{New: func() any { b := make([]byte, hashChunk); return &b }}
	wbufPool  = sync.Pool{New: func() any { b := make([]byte, writeChunk); return &b }}
)

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
// write of a range wins.
//
// Blocks that continue the piece in order are hashed on arrival and, while
// one of the store's write buffers (Config.WriteBuffers) is free or can be
// taken from an idle piece, copied into it and written to the data file
// 256 KiB at a time; the buffer's last bytes are written by FinishPiece
// once the piece verifies. A write error (disk full, I/O error) is returned
// wrapped; it may concern buffered blocks of the same piece that earlier
// calls accepted, which are then no longer staged. When the bytes of a
// buffer taken from another piece cannot be written out, that piece's
// buffered blocks are no longer staged and the error is logged: it is not
// this block's. Nothing already present is affected.
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
	w, done, err := s.planBlockLocked(piece, int64(begin), data)
	s.mu.Unlock()
	if done || err != nil {
		return err
	}
	s.writeBlockIO(&w)
	s.mu.Lock()
	s.commitBlockLocked(&w)
	s.mu.Unlock()
	s.ops.Done()
	if s.budget.overTotal() {
		s.budget.enforce()
	}
	if w.rc.err != nil {
		// The caller's block is fine; the other piece's FinishPiece will
		// report ErrIncomplete until its lost blocks come again.
		s.log.Warn("cache: cannot write out an idle write buffer, its blocks are no longer staged",
			"piece", w.rc.piece, "err", w.rc.err)
	}
	if w.err != nil {
		return s.diskErr(fmt.Sprintf("write piece %d block at %d", piece, begin), piece, w.err)
	}
	return nil
}

// blockPlan is one WriteBlock call: what its plan decided under the lock,
// for the I/O that runs without it and the commit that follows under it.
type blockPlan struct {
	piece  int
	off    int64 // the block's offset in the piece
	data   []byte
	b0, b1 int    // the blocks it covers
	old    []byte // the piece's buffered bytes, written out before the block
	oldOff int64
	h      hash.Hash // the piece's hash, when the block continues it
	buf    []byte    // the piece's buffer, when the block goes there
	bufOff int64
	rc     reclaim // another piece's bytes in a taken buffer, written out first
	err    error   // the I/O's result
}

// planBlockLocked waits until the block may be written and decides how:
// whether buffered bytes of the piece must go out first, whether the block
// continues the hashed prefix, and into which buffer it goes. It marks the
// write in flight (the caller must run writeBlockIO and commitBlockLocked)
// unless it returns done (the piece is present) or an error.
func (s *Store) planBlockLocked(piece int, off int64, data []byte) (w blockPlan, done bool, err error) {
	st := &s.pieces[piece]
	for {
		if s.closed {
			return w, false, ErrClosed
		}
		if st.present {
			return w, true, nil
		}
		if st.life.claimed {
			if err := s.retractLocked(piece); err != nil {
				return w, false, err
			}
			continue
		}
		// Wait for whole-piece work and for buffered bytes being written
		// out; a write into the hashed prefix also waits for a block being
		// added to the buffer, so that it lands after it.
		if st.busy.idle() &&
			!(st.buf.b != nil && st.hash.feeding > 0 && off < st.hash.n+st.hash.feeding) {
			break
		}
		s.waitBusyLocked()
	}
	st.life.pendingPunch = false // being downloaded again: keep the space
	if s.budget != nil {
		st.life.lastWrite = s.budget.clock.Add(1)
	}
	w = blockPlan{piece: piece, off: off, data: data}
	if st.hash.h != nil && off < st.hash.n+st.hash.feeding {
		// This write changes bytes already hashed (or being hashed). The
		// buffer, the end of the hashed prefix, goes out first.
		st.hash.reset()
		if st.buf.n > 0 {
			w.old, w.oldOff = st.buf.bytes(), st.buf.off
			st.busy.flushing = true
		} else {
			s.dropWbufLocked(piece)
		}
	}
	if !st.blocks.used() {
		st.blocks.size(s.numBlocks(piece), &s.staged)
		s.partial[piece] = struct{}{}
	}
	end := off + int64(len(data))
	w.b0, w.b1 = int(off/BlockSize), int((end+BlockSize-1)/BlockSize)
	// Hash on arrival when this block continues the hashed prefix and no
	// other write of the same bytes is in flight (whose data could land
	// after ours). Later writes that overlap the prefix reset it above.
	if w.old == nil && st.hash.feeding == 0 && off == st.hash.n && !st.blocks.anyInflight(w.b0, w.b1) {
		if st.hash.h == nil {
			st.hash.h = sha1.New()
		}
		w.h = st.hash.h
		st.hash.feeding = int64(len(data))
		s.feeds++
		st.hash.fedAt = s.feeds
		if st.buf.b == nil {
			w.rc = s.takeWbufLocked(piece)
		}
		if st.buf.b != nil {
			w.buf, w.bufOff = (*st.buf.b)[:st.buf.n:s.chunk], st.buf.off
		}
	}
	st.blocks.begin(w.b0, w.b1)
	st.busy.writers++
	s.ops.Add(1)
	return w, false, nil
}

// writeBlockIO does a planned write without the lock: a reclaimed buffer's
// bytes first (their piece's loss if they fail, not ours), then the piece's
// old buffered bytes and the block, or the block into the buffer.
func (s *Store) writeBlockIO(w *blockPlan) {
	if w.rc.data != nil {
		s.writeReclaimed(&w.rc)
	}
	at := s.info.PieceOffset(w.piece)
	if w.buf != nil {
		w.h.Write(w.data)
		w.buf, w.bufOff, w.err = s.feed(at, s.info.PieceSize(w.piece), w.buf, w.bufOff, w.data)
		return
	}
	if w.old != nil {
		w.err = s.data.writeAt(w.old, at+w.oldOff)
	}
	if w.err == nil {
		w.err = s.data.writeAt(w.data, at+w.off)
	}
	if w.h != nil && w.err == nil {
		w.h.Write(w.data) // hot in cache: this costs no extra read
	}
}

// commitBlockLocked records the outcome of a planned write: the blocks it
// staged, the hashed prefix and the buffer's new contents, or on an error
// the buffered blocks lost with it; and wakes the writes that waited.
func (s *Store) commitBlockLocked(w *blockPlan) {
	st := &s.pieces[w.piece]
	st.busy.writers--
	if w.old != nil {
		st.busy.flushing = false
		if w.err != nil {
			st.blocks.unstage(w.oldOff, w.oldOff+int64(len(w.old)))
		}
		s.dropWbufLocked(w.piece)
	}
	if w.rc.data != nil {
		s.reclaimDoneLocked(&w.rc)
	}
	if w.h != nil {
		st.hash.feeding = 0
		if st.hash.h == w.h {
			if w.err == nil {
				st.hash.n += int64(len(w.data))
			} else {
				st.hash.reset()
			}
		}
		if w.buf != nil {
			if w.err == nil {
				st.buf.n, st.buf.off = len(w.buf), w.bufOff
			} else { // the buffered blocks are lost with ours
				st.blocks.unstage(st.buf.off, st.buf.off+int64(st.buf.n))
				s.dropWbufLocked(w.piece)
			}
		}
	}
	st.blocks.end(w.b0, w.b1)
	if w.err == nil {
		for b := w.b0; b < w.b1; b++ {
			st.blocks.add(b)
		}
	}
	s.wakeBusyLocked()
}

// Staged returns how many blocks of piece have been written by WriteBlock
// since it was last finished or discarded, and how many it has.
func (s *Store) Staged(piece int) (staged, total int) {
	if s.checkPiece(piece) != nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pieces[piece].blocks.n, s.numBlocks(piece)
}

// claimLocked waits until no other write, hash, punch or flush of its
// buffered bytes is in flight on piece and marks it finishing. It returns
// done=true when the piece is already present.
func (s *Store) claimLocked(piece int) (done bool, err error) {
	st := &s.pieces[piece]
	for {
		if s.closed {
			return false, ErrClosed
		}
		if st.present {
			return true, nil
		}
		if st.life.claimed {
			if err := s.retractLocked(piece); err != nil {
				return false, err
			}
			continue
		}
		if st.busy.idle() && st.busy.writers == 0 {
			break
		}
		s.waitBusyLocked()
	}
	st.busy.finishing = true
	st.life.pendingPunch = false
	s.ops.Add(1)
	return false, nil
}

// FinishPiece verifies the staged blocks of piece with SHA-1: blocks that
// WriteBlock received in order were hashed on arrival (while still in the
// CPU cache), the rest are read back from the data file. On a match the
// piece's last buffered blocks are written and the piece becomes present:
// waiters wake and readers may see it. On a mismatch the staged blocks are
// discarded (their space punched out) and a *HashError naming the piece is
// returned. It fails with ErrIncomplete when blocks are missing. FinishPiece
// on a present piece returns nil.
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
	if !st.present && st.blocks.n < s.numBlocks(piece) {
		n := st.blocks.n
		s.mu.Unlock()
		return fmt.Errorf("%w: piece %d has %d of %d blocks", ErrIncomplete, piece, n, s.numBlocks(piece))
	}
	done, err := s.claimLocked(piece)
	if done || err != nil {
		s.mu.Unlock()
		return err
	}
	if st.blocks.n < s.numBlocks(piece) { // discarded while we waited
		st.busy.finishing = false
		s.wakeBusyLocked()
		n := st.blocks.n
		s.mu.Unlock()
		s.ops.Done()
		return fmt.Errorf("%w: piece %d has %d of %d blocks", ErrIncomplete, piece, n, s.numBlocks(piece))
	}
	// The buffer, if any, is the end of the hashed prefix: the hash
	// covers it and the read-back starts after it. The claim keeps
	// writers off it.
	h, from := st.hash.h, st.hash.n
	st.hash.reset()
	var buf []byte
	var bufOff int64
	if st.buf.b != nil {
		buf, bufOff = st.buf.bytes(), st.buf.off
	}
	bufAt := s.info.PieceOffset(piece) + bufOff
	s.mu.Unlock()
	defer s.ops.Done()

	ok, err := s.hashFromFile(piece, h, from)
	if err != nil {
		// The blocks stay staged for another try, which reads them all
		// back: the buffered ones must be in the file.
		var werr error
		if len(buf) > 0 {
			werr = s.data.writeAt(buf, bufAt)
		}
		s.mu.Lock()
		if werr != nil {
			st.blocks.unstage(bufOff, bufOff+int64(len(buf)))
		}
		s.dropWbufLocked(piece)
		s.unclaimLocked(piece)
		s.mu.Unlock()
		return s.diskErr(fmt.Sprintf("verify piece %d", piece), piece, err)
	}
	if !ok {
		s.discard(piece)
		return &HashError{Piece: piece}
	}
	if len(buf) > 0 {
		if err := s.data.writeAt(buf, bufAt); err != nil {
			s.discard(piece)
			return s.diskErr(fmt.Sprintf("write piece %d", piece), piece, err)
		}
	}
	s.finished(piece)
	return nil
}

// finished ends the finishing claim of a piece whose verified bytes are
// all in the data file: it becomes present, and the budget may evict.
func (s *Store) finished(piece int) {
	s.mu.Lock()
	s.pieces[piece].busy.finishing = false
	s.markPresentLocked(piece)
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.budget.enforce()
}

// unclaimLocked ends a claim that leaves the piece as it was.
func (s *Store) unclaimLocked(piece int) {
	s.pieces[piece].busy.finishing = false
	s.wakeBusyLocked()
}

// discard drops the staged blocks of a piece that the caller has marked
// finishing and punches out their space.
func (s *Store) discard(piece int) {
	s.mu.Lock()
	st := &s.pieces[piece]
	st.busy.finishing = false
	st.busy.punching = true
	s.dropStagedLocked(piece)
	s.mu.Unlock()
	if err := s.punch(piece); err != nil {
		s.log.Warn("cache: cannot discard piece data", "piece", piece, "err", err)
	}
	s.mu.Lock()
	st.busy.punching = false
	s.wakeBusyLocked()
	s.mu.Unlock()
}

// WritePiece verifies a whole piece and, when its SHA-1 matches, writes it
// and makes it present; any blocks staged for it are replaced. A mismatch
// returns a *HashError and leaves nothing a reader can see. So that bytes
// are copied into the data file while still in the CPU cache, a piece with
// nothing staged is written 256 KiB at a time as it is hashed, all but the
// last 256 KiB before the hash is known; on a mismatch that space is
// punched out again. A piece with staged blocks is hashed before anything
// is written and keeps its staged blocks on a mismatch. WritePiece on a
// present piece returns nil without writing.
func (s *Store) WritePiece(piece int, data []byte) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	if size := s.info.PieceSize(piece); int64(len(data)) != size {
		return fmt.Errorf("%w: piece %d is %d bytes, got %d", ErrRange, piece, size, len(data))
	}
	s.mu.Lock()
	done, err := s.claimLocked(piece)
	staged := s.pieces[piece].blocks.n > 0
	s.mu.Unlock()
	if done || err != nil {
		return err
	}
	defer s.ops.Done()
	var ok, wrote bool
	if staged {
		if ok = sha1.Sum(data) == s.info.Pieces[piece]; ok {
			err = s.data.writeAt(data, s.info.PieceOffset(piece))
			wrote = true
		}
	} else {
		ok, wrote, err = s.hashWrite(piece, data)
	}
	switch {
	case err != nil:
		s.discard(piece)
		return s.diskErr(fmt.Sprintf("write piece %d", piece), piece, err)
	case !ok && wrote:
		s.discard(piece)
		return &HashError{Piece: piece}
	case !ok:
		s.mu.Lock()
		s.unclaimLocked(piece)
		s.mu.Unlock()
		return &HashError{Piece: piece}
	}
	s.finished(piece)
	return nil
}

// hashWrite hashes data, the whole of piece, and writes it to the data file
// s.chunk bytes at a time, each chunk right after hashing it. The last chunk
// is written only when the hash matches. It reports whether the hash
// matched and whether anything may have been written.
func (s *Store) hashWrite(piece int, data []byte) (ok, wrote bool, err error) {
	at := s.info.PieceOffset(piece)
	h := sha1.New()
	i := 0
	for ; len(data)-i > s.chunk; i += s.chunk {
		c := data[i : i+s.chunk]
		h.Write(c)
		if err := s.data.writeAt(c, at+int64(i)); err != nil {
			return false, true, err
		}
	}
	h.Write(data[i:])
	var sum [sha1.Size]byte
	if !bytes.Equal(h.Sum(sum[:0]), s.info.Pieces[piece][:]) {
		return false, i > 0, nil
	}
	err = s.data.writeAt(data[i:], at+int64(i))
	return true, true, err
}
