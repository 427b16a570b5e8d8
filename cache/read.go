package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReadAt reads verified bytes at torrent offset off (pad bytes included), at
// any offset and length, across piece and file boundaries. When the range
// reaches a piece that is not present it returns the bytes before that piece
// and an error wrapping ErrNotPresent. Reading at or past the end returns
// io.EOF, as does a read cut short by the end. Pieces being read are
// protected from eviction and count as just used.
func (s *Store) ReadAt(p []byte, off int64) (int, error) {
	total := s.info.TotalLength
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrRange, off)
	}
	if off >= total {
		return 0, io.EOF
	}
	n := int64(len(p))
	eof := false
	if off+n > total {
		n, eof = total-off, true
	}
	if n == 0 {
		return 0, nil
	}
	first, end := s.info.PieceSpan(off, n)
	last, gen, err := s.holdRange(first, end)
	if err != nil {
		return 0, err
	}
	if last == first {
		return 0, fmt.Errorf("%w: piece %d", ErrNotPresent, first)
	}
	upto := min(off+n, s.info.PieceOffset(last))
	m, rerr := s.data.readAt(p[:upto-off], off)
	intact := s.heldIntact(first, last, gen)
	s.releaseRange(first, last)
	if errors.Is(rerr, errShort) {
		s.dropShort(first, last)
	}
	switch {
	case rerr != nil && !(rerr == io.EOF && int64(m) == upto-off):
		return m, s.diskErr(fmt.Sprintf("read at %d", off), first, rerr)
	case !intact:
		clear(p[:m])
		return 0, fmt.Errorf("%w: piece %d (its file changed while it was read)", ErrNotPresent, first)
	case last < end:
		return m, fmt.Errorf("%w: piece %d", ErrNotPresent, last)
	case eof:
		return m, io.EOF
	}
	return m, nil
}

// holdRange marks the leading run of present pieces in [first, end) as
// being read and returns where the run stops, and the sum of their
// eviction counts for heldIntact.
func (s *Store) holdRange(first, end int) (int, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return first, 0, ErrClosed
	}
	k := first
	var gen uint64
	for k < end && s.pieces[k].present {
		s.pieces[k].life.readers++
		gen += uint64(s.pieces[k].life.evictGen)
		k++
	}
	if k > first {
		s.ops.Add(1)
		if s.budget != nil {
			s.budget.touch(s, first, k)
		}
	}
	return k, gen, nil
}

// heldIntact reports whether the pieces [first, end) a read holds are
// still present as they were when holdRange returned gen. Only the Files
// layout drops pieces being read (a file changed or cut short behind the
// store's back: files_stamp.go), and then the bytes read must not be
// returned.
func (s *Store) heldIntact(first, end int, gen uint64) bool {
	if s.files == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var g uint64
	for k := first; k < end; k++ {
		if !s.pieces[k].present {
			return false
		}
		g += uint64(s.pieces[k].life.evictGen)
	}
	return g == gen
}

func (s *Store) releaseRange(first, end int) {
	s.mu.Lock()
	for k := first; k < end; k++ {
		s.pieces[k].life.readers--
	}
	s.mu.Unlock()
	s.ops.Done()
}

// ReadBlock fills p with the verified bytes of piece starting at begin, for
// serving a peer's request. It fails with an error wrapping ErrNotPresent
// when the piece is not present, and with ErrRange when the block does not
// fit inside the piece. The piece is protected from eviction while it is
// read and counts as just used.
func (s *Store) ReadBlock(piece, begin int, p []byte) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	size := s.info.PieceSize(piece)
	if begin < 0 || int64(begin)+int64(len(p)) > size {
		return fmt.Errorf("%w: block [%d, %d) of piece %d (%d bytes)", ErrRange, begin, begin+len(p), piece, size)
	}
	last, gen, err := s.holdRange(piece, piece+1)
	if err != nil {
		return err
	}
	if last == piece {
		return fmt.Errorf("%w: piece %d", ErrNotPresent, piece)
	}
	_, rerr := s.data.readAt(p, s.info.PieceOffset(piece)+int64(begin))
	intact := s.heldIntact(piece, last, gen)
	s.releaseRange(piece, last)
	if errors.Is(rerr, errShort) {
		s.dropShort(piece, last)
	}
	if rerr != nil {
		return s.diskErr(fmt.Sprintf("read piece %d at %d", piece, begin), piece, rerr)
	}
	if !intact {
		clear(p)
		return fmt.Errorf("%w: piece %d (its file changed while it was read)", ErrNotPresent, piece)
	}
	return nil
}

// ReadPiece reads the whole verified piece into p, which must hold at least
// PieceSize(piece) bytes, and returns its length. Errors are as for
// ReadBlock, plus io.ErrShortBuffer for a short p.
func (s *Store) ReadPiece(piece int, p []byte) (int, error) {
	if err := s.checkPiece(piece); err != nil {
		return 0, err
	}
	size := int(s.info.PieceSize(piece))
	if len(p) < size {
		return 0, io.ErrShortBuffer
	}
	if err := s.ReadBlock(piece, 0, p[:size]); err != nil {
		return 0, err
	}
	return size, nil
}

// Has reports whether piece is present (verified and not evicted).
func (s *Store) Has(piece int) bool {
	if s.checkPiece(piece) != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pieces[piece].present
}

// Bitfield returns a snapshot of the present pieces.
func (s *Store) Bitfield() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	bf := make([]bool, len(s.pieces))
	for i := range s.pieces {
		bf[i] = s.pieces[i].present
	}
	return bf
}

// Present returns the number of present pieces and their total size.
func (s *Store) Present() (pieces int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nPresent, s.bytesPresent
}

// Wait blocks until piece is present (nil), ctx ends (ctx.Err()) or the
// store closes (ErrClosed). Any number of goroutines may wait on one piece;
// all wake when it arrives.
func (s *Store) Wait(ctx context.Context, piece int) error {
	if err := s.checkPiece(piece); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.pieces[piece].present {
		s.mu.Unlock()
		return nil
	}
	ch, ok := s.waiters[piece]
	if !ok {
		ch = make(chan struct{})
		s.waiters[piece] = ch
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closeCh:
		return ErrClosed
	}
}

// Span is a range of verified bytes held in an open file for a zero-copy
// read (splice from Fd at Offset): the data file, or with the Files layout
// the one file of the torrent that holds them. Until Release its pieces are
// not evicted and Close waits, so the descriptor stays valid and its bytes
// stay verified.
type Span struct {
	s           *Store
	first, end  int
	fd          uintptr
	off         int64
	n           int
	done        func() // releases the file, or nil
	releaseOnce sync.Once
}

// Fd returns the descriptor of the file that holds the span.
func (sp *Span) Fd() uintptr { return sp.fd }

// Offset returns the span's offset in that file: a torrent offset in the
// data file, an offset inside the torrent's file with the Files layout.
func (sp *Span) Offset() int64 { return sp.off }

// Len returns the span's length in bytes.
func (sp *Span) Len() int { return sp.n }

// Release ends the hold. It is idempotent.
func (sp *Span) Release() {
	sp.releaseOnce.Do(func() {
		if sp.done != nil {
			sp.done()
		}
		sp.s.releaseRange(sp.first, sp.end)
	})
}

// HoldSpan holds the verified bytes [off, off+n) of the torrent for a
// zero-copy read. Every piece they touch must be present, else it returns an
// error wrapping ErrNotPresent and holds nothing; a range past the end is an
// ErrRange error. The pieces count as just used. With the Files layout the
// bytes must lie in one file to be spliced: a range that crosses into the
// next file gives a shorter span (Len < n; the caller copies instead, with
// ReadAt), and one that starts in a pad file is an ErrRange error. A range
// inside one of the torrent's files, as a mount reads, is always whole.
func (s *Store) HoldSpan(off int64, n int) (*Span, error) {
	if off < 0 || n <= 0 || off+int64(n) > s.info.TotalLength {
		return nil, fmt.Errorf("%w: span [%d, %d) of %d bytes", ErrRange, off, off+int64(n), s.info.TotalLength)
	}
	first, end := s.info.PieceSpan(off, int64(n))
	last, gen, err := s.holdRange(first, end)
	if err != nil {
		return nil, err
	}
	if last < end {
		if last > first {
			s.releaseRange(first, last)
		}
		return nil, fmt.Errorf("%w: piece %d", ErrNotPresent, last)
	}
	at, err := s.data.span(off, n)
	if err != nil || !at.ok {
		s.releaseRange(first, end)
		if err != nil {
			return nil, s.diskErr(fmt.Sprintf("open file at %d", off), first, err)
		}
		return nil, fmt.Errorf("%w: span at %d starts in a pad file", ErrRange, off)
	}
	// span compared the file with what the store knows of it: a change
	// found there (or by another read meanwhile) dropped the pieces.
	if !s.heldIntact(first, end, gen) {
		if at.done != nil {
			at.done()
		}
		s.releaseRange(first, end)
		return nil, fmt.Errorf("%w: piece %d (its file changed)", ErrNotPresent, first)
	}
	return &Span{s: s, first: first, end: end, fd: at.fd, off: at.off, n: at.n, done: at.done}, nil
}
