package webseed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Fetch fills buf[:PieceSize(piece)] with piece from the web seed. It
// waits for a free slot (see Free), then sends one Range request per file
// the piece touches; pad bytes (BEP 47) are zeros and never requested.
// The caller checks the piece's hash and calls Failed when it is wrong.
func (s *Seed) Fetch(ctx context.Context, piece int, buf []byte) error {
	return s.FetchRun(ctx, piece, piece+1, buf, func(int, []byte) error { return nil })
}

// FetchRun fetches pieces [first, end) in order through one slot, with one
// Range request per file the run touches (split at file boundaries, pad
// files skipped), streaming the bodies through buf piece by piece. Each
// complete piece is passed to deliver as buf[:PieceSize(piece)], on the
// calling goroutine; deliver must be done with the bytes when it returns
// (write them to the cache, hash them) and may stop the run by returning
// an error, which FetchRun then returns unchanged. buf must hold a whole
// piece (Info.PieceLength bytes; PieceSize(first) for a one-piece run).
// Memory use is buf, whatever the server sends.
//
// On error, the pieces already delivered stay good and the rest were not
// delivered. The error wraps ErrDropped, ErrBackoff, ErrFileMissing (a
// piece of the run is not Usable, or a file turned out missing), a
// request error (*Error) after the retries were spent, ErrBadRange, or the
// context's error.
func (s *Seed) FetchRun(ctx context.Context, first, end int, buf []byte, deliver func(piece int, data []byte) error) error {
	in := s.info
	if first < 0 || end > in.NumPieces() || first >= end {
		return fmt.Errorf("%w: pieces [%d, %d) of %d", ErrBadRange, first, end, in.NumPieces())
	}
	need := in.PieceSize(first)
	if end-first > 1 {
		need = in.PieceLength
	}
	if int64(len(buf)) < need {
		return fmt.Errorf("%w: buffer of %d bytes for pieces of %d", ErrBadRange, len(buf), need)
	}
	if err := s.admit(first, end); err != nil {
		return err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	if err := s.admit(first, end); err != nil {
		return err // the seed changed while this fetch waited for a slot
	}
	r := &run{info: in, buf: buf, deliver: deliver, piece: first, size: in.PieceSize(first), off: in.PieceOffset(first)}
	runEnd := in.PieceOffset(end-1) + in.PieceSize(end-1)
	err := s.fetchRun(ctx, r, runEnd)
	s.settle(ctx, err)
	var de *deliverError
	if errors.As(err, &de) {
		return de.err
	}
	return err
}

// admit checks that the seed takes a fetch of pieces [first, end).
func (s *Seed) admit(first, end int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st, cause := s.stateNowLocked(); st {
	case StateDropped:
		return fmt.Errorf("%w: %w", ErrDropped, cause)
	case StateBackoff:
		return fmt.Errorf("%w until %s: %w", ErrBackoff, s.until.Format(time.TimeOnly), cause)
	}
	for p := first; p < end; p++ {
		if !s.usableLocked(p) {
			return fmt.Errorf("%w: piece %d", ErrFileMissing, p)
		}
	}
	return nil
}

// fetchRun fills the run up to torrent offset runEnd.
func (s *Seed) fetchRun(ctx context.Context, r *run, runEnd int64) error {
	for _, part := range r.info.FileParts(r.off, runEnd-r.off) {
		if err := r.zero(part.TorrentOff - r.off); err != nil {
			return err
		}
		if err := s.fetchPart(ctx, r, part); err != nil {
			return err
		}
	}
	return r.zero(runEnd - r.off)
}

// fetchPart fetches one file's part of the run, retrying what may pass
// and resuming after the bytes already received.
func (s *Seed) fetchPart(ctx context.Context, r *run, part metainfo.FilePart) error {
	var done int64
	delay := s.cfg.RetryDelay
	for attempt := 0; ; attempt++ {
		n, err := s.request(ctx, r, part.File, part.FileOffset+done, part.Length-done)
		done += n
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n > 0 && errors.Is(err, errPartialRange) {
			attempt-- // a smaller range than asked, but all there: go on
			continue
		}
		if !retryable(err) || attempt >= s.cfg.Retries {
			return err
		}
		if n >= 1<<20 {
			// Real progress: a fresh budget for the rest.
			attempt, delay = -1, s.cfg.RetryDelay
		}
		wait := delay
		delay = min(2*delay, s.cfg.MaxRetryWait)
		var re *Error
		if errors.As(err, &re) && re.RetryAfter > 0 {
			wait = re.RetryAfter
		}
		if wait > s.cfg.MaxRetryWait {
			s.mu.Lock()
			s.backoffLocked(s.now().Add(wait), err)
			s.mu.Unlock()
			return err
		}
		s.log.Debug("web seed retry", "err", err, "wait", wait, "attempt", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retrying after: %w)", ctx.Err(), err)
		}
	}
}

// settle updates the seed's state after a fetch ended with err.
func (s *Seed) settle(ctx context.Context, err error) {
	var de *deliverError
	if errors.As(err, &de) || (err != nil && ctx.Err() != nil) {
		return // the caller's doing, not the seed's
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.failedRuns = 0
	case isFault(err):
		s.faultLocked(err)
	case retryable(err):
		s.failedRuns++
		d := s.cfg.MinBackoff
		for i := 1; i < s.failedRuns && d < s.cfg.MaxBackoff; i++ {
			d *= 2
		}
		d = min(d, s.cfg.MaxBackoff)
		var re *Error
		if errors.As(err, &re) {
			d = max(d, re.RetryAfter) // already capped by MaxRetryAfter
		}
		s.backoffLocked(s.now().Add(d), err)
	}
}

// run is the progress of one FetchRun through its pieces.
type run struct {
	info    *metainfo.Info
	buf     []byte
	deliver func(piece int, data []byte) error
	piece   int   // piece being filled
	pos     int64 // bytes of it filled
	size    int64 // its size
	off     int64 // torrent offset of the next byte
}

// window returns where the next bytes go: at most n, within the piece.
func (r *run) window(n int64) []byte {
	n = min(n, r.size-r.pos)
	return r.buf[r.pos : r.pos+n]
}

// advance accounts n bytes written at window and delivers the piece when
// it is complete.
func (r *run) advance(n int) error {
	r.pos += int64(n)
	r.off += int64(n)
	if r.pos < r.size {
		return nil
	}
	p := r.piece
	r.piece++
	r.pos, r.size = 0, r.info.PieceSize(r.piece)
	if err := r.deliver(p, r.buf[:r.info.PieceSize(p)]); err != nil {
		return &deliverError{err}
	}
	return nil
}

// zero writes n zero bytes (padding, or bytes no file covers).
func (r *run) zero(n int64) error {
	for n > 0 {
		w := r.window(n)
		if len(w) == 0 {
			return nil // past the run's last piece: nothing to fill
		}
		clear(w)
		n -= int64(len(w))
		if err := r.advance(len(w)); err != nil {
			return err
		}
	}
	return nil
}
