package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

// firstFill is the size of the first read after a seek: small ranges
// (players probing a file) wait for little more than they asked for.
const firstFill = 64 << 10

// stream adapts a library.Reader to the io.ReadSeeker that
// http.ServeContent wants, with the request's context and a timeout per
// read. Each read after a seek is firstFill bytes, and each following one
// twice the last, up to bufSize, so that the engine sees large sequential
// reads while a stream goes on. Once reads have reached bufSize, and when
// pipeline is set, the next chunk is read on a goroutine while the current
// one is sent, so that the engine always has a read waiting (as the
// kernel's concurrent readahead requests give a mount). A stream holds at
// most two buffers of bufSize bytes.
//
// Read, Seek and close are called by one goroutine at a time.
type stream struct {
	ctx      context.Context
	r        library.Reader
	size     int64
	timeout  time.Duration
	bufSize  int
	latency  *histogram
	log      *slog.Logger
	pipeline bool

	pos    int64
	buf    []byte // holds the file bytes [bufOff, bufOff+len(buf))
	bufOff int64
	next   int // size of the next fill; 0 means firstFill

	ahead *aheadRead // a read of the next chunk in flight, or nil
	spare []byte     // a buffer for the next read ahead
}

// aheadRead is a read running on its own goroutine.
type aheadRead struct {
	off    int64
	buf    []byte
	k      int   // set before done closes
	err    error // set before done closes
	cancel context.CancelFunc
	done   chan struct{}
}

// Seek sets the offset of the next Read.
func (s *stream) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, fmt.Errorf("httpserve: seek whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("httpserve: seek to %d", off)
	}
	if off != s.pos {
		s.next = 0
	}
	s.pos = off
	return off, nil
}

// Read reads from the buffer, refilling it from the reader when the
// position leaves it.
func (s *stream) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if s.pos < s.bufOff || s.pos >= s.bufOff+int64(len(s.buf)) {
		if err := s.fill(); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("http file read failed", "offset", s.pos, "err", err)
			}
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos-s.bufOff:])
	s.pos += int64(n)
	return n, nil
}

// fill reads the buffer at the current position: from the read ahead
// when it is there, else with a read of its own.
func (s *stream) fill() error {
	want := min(max(s.next, firstFill), s.bufSize)
	s.next = min(2*want, s.bufSize)
	var k, n int
	var err error
	if a := s.ahead; a != nil && a.off == s.pos {
		s.ahead = nil
		<-a.done // bounded: the read has the request's context and a timeout
		a.cancel()
		s.spare = s.buf
		s.buf = a.buf
		k, n, err = a.k, len(a.buf), a.err
	} else {
		s.dropAhead()
		n = int(min(int64(want), s.size-s.pos))
		if cap(s.buf) < n {
			s.buf = make([]byte, want)
		}
		s.buf = s.buf[:n]
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		start := time.Now()
		k, err = s.r.ReadAt(ctx, s.buf, s.pos)
		s.latency.observe(time.Since(start).Seconds())
		cancel()
	}
	if err != nil && !(errors.Is(err, io.EOF) && k == n) {
		s.buf = s.buf[:0]
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if k == 0 {
		return io.ErrNoProgress
	}
	s.buf = s.buf[:k]
	s.bufOff = s.pos
	if next := s.bufOff + int64(k); s.pipeline && want == s.bufSize && next < s.size {
		s.startAhead(next, int(min(int64(s.bufSize), s.size-next)))
	}
	return nil
}

// startAhead starts reading n bytes at off on a goroutine.
func (s *stream) startAhead(off int64, n int) {
	buf := s.spare
	s.spare = nil
	if cap(buf) < n {
		buf = make([]byte, s.bufSize)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	a := &aheadRead{off: off, buf: buf[:n], cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		start := time.Now()
		a.k, a.err = s.r.ReadAt(ctx, a.buf, off)
		s.latency.observe(time.Since(start).Seconds())
	}()
	s.ahead = a
}

// dropAhead cancels a read ahead and waits for its goroutine.
func (s *stream) dropAhead() {
	a := s.ahead
	if a == nil {
		return
	}
	s.ahead = nil
	a.cancel()
	<-a.done
	s.spare = a.buf
}

// close ends a read ahead still running; the caller then closes the reader.
func (s *stream) close() { s.dropAhead() }
