package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// request sends one Range request for length bytes of file i from offset
// off and streams the body into the run. It returns how many of the
// wanted bytes arrived, and an error unless all did.
func (s *Seed) request(ctx context.Context, r *run, i int, off, length int64) (int64, error) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := newIdleTimer(s.cfg.IdleTimeout, cancel)
	defer idle.stop()
	fail := func(status int, err error) *Error {
		return &Error{URL: s.files[i], File: i, Status: status, Err: err}
	}

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, s.files[i], nil)
	if err != nil {
		return 0, fail(0, fmt.Errorf("%w: %v", ErrBadURL, err))
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+length-1, 10))
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	s.requests.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case idle.fired.Load() || isTimeout(err):
			return 0, fail(0, fmt.Errorf("%w: no response in %v", ErrStalled, s.cfg.IdleTimeout))
		case errors.Is(err, ErrRedirect):
			return 0, fail(0, err)
		}
		return 0, fail(0, fmt.Errorf("%w: %v", ErrConn, err))
	}
	body := &idleReader{r: resp.Body, idle: idle}
	defer func() {
		// Read a short rest to the end so that the connection is reused
		// (keep-alive); closing a body with more left closes the
		// connection. The idle timer still bounds this.
		n, _ := io.CopyN(io.Discard, body, maxDrain+1)
		s.wasted.Add(n)
		resp.Body.Close()
	}()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && ce != "identity" &&
		(resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) {
		return 0, fail(resp.StatusCode, fmt.Errorf("%w: Content-Encoding %q", ErrBadResponse, ce))
	}
	fileLen := s.info.Files[i].Length
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil:
			return 0, fail(code, fmt.Errorf("%w: %q", ErrBadContentRange, resp.Header.Get("Content-Range")))
		case cr.size >= 0 && cr.size != fileLen:
			err := fail(code, fmt.Errorf("%w: server has %d bytes, torrent says %d", ErrFileMissing, cr.size, fileLen))
			s.markMissing(i, err)
			return 0, err
		case cr.first != off:
			return 0, fail(code, fmt.Errorf("%w: %q for bytes from %d", ErrBadContentRange, resp.Header.Get("Content-Range"), off))
		case resp.ContentLength >= 0 && resp.ContentLength != cr.last-cr.first+1:
			return 0, fail(code, fmt.Errorf("%w: %q with Content-Length %d", ErrBadContentRange, resp.Header.Get("Content-Range"), resp.ContentLength))
		}
		avail := min(cr.last-cr.first+1, length)
		n, err := s.readBody(r, body, avail)
		if err != nil {
			return n, fail(code, err)
		}
		if avail < length {
			return n, fail(code, fmt.Errorf("%w: range ends at %d, asked up to %d", errPartialRange, cr.last, off+length-1))
		}
		return n, nil
	case code == http.StatusOK:
		// The server ignored Range and sends the whole file.
		switch {
		case resp.ContentLength >= 0 && resp.ContentLength != fileLen:
			err := fail(code, fmt.Errorf("%w: server has %d bytes, torrent says %d", ErrFileMissing, resp.ContentLength, fileLen))
			s.markMissing(i, err)
			return 0, err
		case off > s.cfg.MaxDiscard:
			return 0, fail(code, fmt.Errorf("%w: 200 with the whole file, wanted bytes from %d", ErrRangeIgnored, off))
		}
		skipped, err := io.CopyN(io.Discard, body, off)
		s.wasted.Add(skipped)
		if err != nil {
			return 0, fail(code, s.bodyError(err, idle))
		}
		n, err := s.readBody(r, body, length)
		if err != nil {
			return n, fail(code, err)
		}
		return n, nil
	case code == http.StatusNotFound || code == http.StatusGone || code == http.StatusRequestedRangeNotSatisfiable ||
		(code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout):
		err := fail(code, fmt.Errorf("%w: %s", ErrFileMissing, resp.Status))
		s.markMissing(i, err)
		return 0, err
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		e := fail(code, fmt.Errorf("%w: %s", ErrServer, resp.Status))
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.now(), s.cfg.MaxRetryAfter); ok {
			e.RetryAfter = d
		}
		return 0, e
	}
	return 0, fail(resp.StatusCode, fmt.Errorf("%w: %s", ErrBadResponse, resp.Status))
}

// readBody reads exactly n body bytes into the run.
func (s *Seed) readBody(r *run, body *idleReader, n int64) (int64, error) {
	var got int64
	for got < n {
		w := r.window(n - got)
		k, err := body.Read(w)
		if k > 0 {
			got += int64(k)
			s.downloaded.Add(int64(k))
			if derr := r.advance(k); derr != nil {
				return got, derr
			}
		}
		if err != nil {
			if got == n && err == io.EOF {
				break
			}
			return got, s.bodyError(err, body.idle)
		}
	}
	return got, nil
}

// bodyError classifies an error from reading a body.
func (s *Seed) bodyError(err error, idle *idleTimer) error {
	switch {
	case idle.fired.Load():
		return fmt.Errorf("%w: no byte in %v", ErrStalled, s.cfg.IdleTimeout)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err // the caller's context; the caller sees it
	case isTimeout(err):
		return fmt.Errorf("%w: %v", ErrStalled, err)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %v", ErrShortBody, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: %v", ErrConn, err)
}

// isTimeout reports whether err is a network timeout (dial, TLS).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idleTimer cancels a request when no progress is made for d.
type idleTimer struct {
	t     *time.Timer
	d     time.Duration
	fired atomic.Bool
}

func newIdleTimer(d time.Duration, cancel context.CancelFunc) *idleTimer {
	it := &idleTimer{d: d}
	it.t = time.AfterFunc(d, func() {
		it.fired.Store(true)
		cancel()
	})
	return it
}

func (it *idleTimer) reset() { it.t.Reset(it.d) }
func (it *idleTimer) stop()  { it.t.Stop() }

// idleReader restarts its idle timer whenever a read returns bytes.
type idleReader struct {
	r    io.Reader
	idle *idleTimer
}

func (b *idleReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.idle.reset()
	}
	return n, err
}
