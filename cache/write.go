package cache

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"hash"
	"io"
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
	off := int64(begin)
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
		// Wait for whole-piece work and for buffered bytes being written
		// out; a write into the hashed prefix also waits for a block being
		// added to the buffer, so that it lands after it.
		if !st.finishing && !st.punching && !st.flushing &&
			!(st.wbuf != nil && st.feeding > 0 && off < st.hashed+st.feeding) {
			break
		}
		s.waitBusyLocked()
	}
	st.pendingPunch = false // being downloaded again: keep the space
	var old []byte          // buffered bytes to write out before ours
	var oldOff int64
	if st.hasher != nil && off < st.hashed+st.feeding {
		// This write changes bytes already hashed (or being hashed). The
		// buffer, the end of the hashed prefix, goes out first.
		st.hasher, st.hashed = nil, 0
		if st.wbufN > 0 {
			old, oldOff = (*st.wbuf)[:st.wbufN], st.wbufOff
			st.flushing = true
		} else {
			s.dropWbufLocked(piece)
		}
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
	var buf []byte // the piece's buffer, when the block goes there
	var bufOff int64
	var rc reclaim // another piece's bytes in the buffer, written out first
	if old == nil && st.feeding == 0 && off == st.hashed && !busy {
		if st.hasher == nil {
			st.hasher = sha1.New()
		}
		h = st.hasher
		st.feeding = int64(len(data))
		s.feeds++
		st.fedAt = s.feeds
		if st.wbuf == nil {
			rc = s.takeWbufLocked(piece)
		}
		if st.wbuf != nil {
			buf, bufOff = (*st.wbuf)[:st.wbufN:s.chunk], st.wbufOff
		}
	}
	for b := b0; b < b1; b++ {
		st.inflight[b]++
	}
	st.writers++
	s.ops.Add(1)
	s.mu.Unlock()

	if rc.data != nil {
		s.writeReclaimed(&rc) // its piece's loss, not ours: see below
	}
	var err error
	at := s.info.PieceOffset(piece)
	switch {
	case buf != nil:
		h.Write(data)
		buf, bufOff, err = s.feed(at, size, buf, bufOff, data)
	default:
		if old != nil {
			_, err = s.f.WriteAt(old, at+oldOff)
		}
		if err == nil {
			_, err = s.f.WriteAt(data, at+off)
		}
		if h != nil && err == nil {
			h.Write(data) // hot in cache: this costs no extra read
		}
	}

	s.mu.Lock()
	st.writers--
	if old != nil {
		st.flushing = false
		if err != nil {
			s.unstageLocked(st, oldOff, oldOff+int64(len(old)))
		}
		s.dropWbufLocked(piece)
	}
	if rc.data != nil {
		s.reclaimDoneLocked(&rc)
	}
	if h != nil {
		st.feeding = 0
		if st.hasher == h {
			if err == nil {
				st.hashed += int64(len(data))
			} else {
				st.hasher, st.hashed = nil, 0
			}
		}
		if buf != nil {
			if err == nil {
				st.wbufN, st.wbufOff = len(buf), bufOff
			} else { // the buffered blocks are lost with ours
				s.unstageLocked(st, st.wbufOff, st.wbufOff+int64(st.wbufN))
				s.dropWbufLocked(piece)
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
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.ops.Done()
	if rc.err != nil {
		// The caller's block is fine; the other piece's FinishPiece will
		// report ErrIncomplete until its lost blocks come again.
		s.log.Warn("cache: cannot write out an idle write buffer, its blocks are no longer staged",
			"piece", rc.piece, "err", rc.err)
	}
	if err != nil {
		return fmt.Errorf("cache: write piece %d block at %d: %w", piece, begin, err)
	}
	return nil
}

// unstageLocked marks the blocks of [from, to) in st as not staged.
func (s *Store) unstageLocked(st *pieceState, from, to int64) {
	if st.staged == nil {
		return
	}
	for b := int(from / BlockSize); b < int((to+BlockSize-1)/BlockSize); b++ {
		if st.staged[b/64]&(1<<(b%64)) != 0 {
			st.staged[b/64] &^= 1 << (b % 64)
			st.stagedN--
		}
	}
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
		if !st.finishing && !st.punching && !st.flushing && st.writers == 0 {
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
	// The buffer, if any, is the end of the hashed prefix: the hash
	// covers it and the read-back starts after it. The claim keeps
	// writers off it.
	h, from := st.hasher, st.hashed
	st.hasher, st.hashed = nil, 0
	var buf []byte
	var bufOff int64
	if st.wbuf != nil {
		buf, bufOff = (*st.wbuf)[:st.wbufN], st.wbufOff
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
			_, werr = s.f.WriteAt(buf, bufAt)
		}
		s.mu.Lock()
		if werr != nil {
			s.unstageLocked(st, bufOff, bufOff+int64(len(buf)))
		}
		s.dropWbufLocked(piece)
		s.unclaimLocked(piece)
		s.mu.Unlock()
		return fmt.Errorf("cache: verify piece %d: %w", piece, err)
	}
	if !ok {
		s.discard(piece)
		return &HashError{Piece: piece}
	}
	if len(buf) > 0 {
		if _, err := s.f.WriteAt(buf, bufAt); err != nil {
			s.discard(piece)
			return fmt.Errorf("cache: write piece %d: %w", piece, err)
		}
	}
	s.finished(piece)
	return nil
}

// finished ends the finishing claim of a piece whose verified bytes are
// all in the data file: it becomes present, and the budget may evict.
func (s *Store) finished(piece int) {
	s.mu.Lock()
	s.pieces[piece].finishing = false
	s.markPresentLocked(piece)
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.budget.enforce()
}

// unclaimLocked ends a claim that leaves the piece as it was.
func (s *Store) unclaimLocked(piece int) {
	s.pieces[piece].finishing = false
	s.wakeBusyLocked()
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
	s.dropWbufLocked(piece)
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
	staged := s.pieces[piece].stagedN > 0
	s.mu.Unlock()
	if done || err != nil {
		return err
	}
	defer s.ops.Done()
	var ok, wrote bool
	if staged {
		if ok = sha1.Sum(data) == s.info.Pieces[piece]; ok {
			_, err = s.f.WriteAt(data, s.info.PieceOffset(piece))
			wrote = true
		}
	} else {
		ok, wrote, err = s.hashWrite(piece, data)
	}
	switch {
	case err != nil:
		s.discard(piece)
		return fmt.Errorf("cache: write piece %d: %w", piece, err)
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
		if _, err := s.f.WriteAt(c, at+int64(i)); err != nil {
			return false, true, err
		}
	}
	h.Write(data[i:])
	var sum [sha1.Size]byte
	if !bytes.Equal(h.Sum(sum[:0]), s.info.Pieces[piece][:]) {
		return false, i > 0, nil
	}
	_, err = s.f.WriteAt(data[i:], at+int64(i))
	return true, true, err
}
