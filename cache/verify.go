package cache

import (
	"crypto/sha1"
	"errors"

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
		if st.present || st.finishing || st.punching || st.flushing || st.writers > 0 || st.staged != nil {
			s.mu.Unlock()
			continue
		}
		st.finishing = true
		s.ops.Add(1)
		s.mu.Unlock()

		ok, err := s.verifyPiece(p, zeroHash)

		s.mu.Lock()
		st.finishing = false
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
