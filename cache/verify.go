package cache

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"hash"
	"io"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// verifyAll re-hashes every piece of an untrusted data file in the
// background. Pieces become present one by one as they verify; pieces the
// caller is writing meanwhile are left to the caller.
func (s *Store) verifyAll() {
	defer s.bg.Done()
	defer func() {
		s.mu.Lock()
		s.verifying = false
		s.mu.Unlock()
		close(s.verifyDone)
	}()
	zeroHash := map[int64]metainfo.Hash{}
	good := 0
	for p := range s.pieces {
		s.mu.Lock()
		st := &s.pieces[p]
		if s.closed {
			s.mu.Unlock()
			return
		}
		if st.present || !st.busy.idle() || st.busy.writers > 0 || st.blocks.used() {
			s.mu.Unlock()
			continue
		}
		st.busy.finishing = true
		s.ops.Add(1)
		s.mu.Unlock()

		ok, err := s.verifyPiece(p, zeroHash)
		if !ok && err == nil {
			// Bytes that do not verify are garbage: return their space.
			if perr := s.punch(p); perr != nil {
				s.log.Warn("cache: cannot return the space of unverified data", "piece", p, "err", perr)
			}
		}

		s.mu.Lock()
		st.busy.finishing = false
		if ok {
			s.markPresentLocked(p)
			good++
		}
		s.wakeBusyLocked()
		s.mu.Unlock()
		s.ops.Done()
		if err != nil {
			s.log.Warn("cache: re-verify piece", "piece", p, "err", err)
		}
		if ok {
			s.budget.enforce()
		}
	}
	s.log.Info("cache: re-verification done", "dir", s.dir, "present", good, "pieces", len(s.pieces))
}

// verifyPiece hashes piece p from disk, skipping the read when the piece is
// entirely a hole and its hash is not that of zeros.
func (s *Store) verifyPiece(p int, zeroHash map[int64]metainfo.Hash) (bool, error) {
	off, size := s.info.PieceOffset(p), s.info.PieceSize(p)
	data, err := unix.Seek(s.fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) || (err == nil && data >= off+size) {
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
