package fs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrReadTimeout is the cause given to a read's context when
// Options.ReadTimeout passes before its data arrives.
var ErrReadTimeout = errors.New("fs: read timed out")

// ErrUnmounted is the cause given to the context of reads still blocked
// when the mount is being unmounted.
var ErrUnmounted = errors.New("fs: unmounted")

// handle is one open file. It owns one FileReader for its whole life, so the
// engine's readahead window follows the reads of this handle. It holds no
// lock: the reader is safe for concurrent use and the rest is immutable.
type handle struct {
	m *Server
	f *fileNode
	r FileReader
}

var (
	_ fusefs.FileReader   = (*handle)(nil)
	_ fusefs.FileReleaser = (*handle)(nil)
)

// Read fills dest from the file at off. It waits for the data (bounded by
// the request's interruption, the read timeout and unmount) and returns the
// whole request or an error: a short reply would make the kernel think the
// file ends there. Reads at or past the end return 0 bytes.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.f.file.Length
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rem := size - off; int64(len(dest)) > rem {
		dest = dest[:rem]
	}
	tctx, done := h.m.boundCtx(ctx)
	defer done()

	if sr, ok := h.r.(SpliceReader); ok {
		sp, err := sr.ReadSpan(tctx, off, len(dest))
		if err == nil && sp.Len() == len(dest) {
			return spanResult{sp}, 0
		}
		switch {
		case err == nil:
			sp.Release() // short: cannot happen inside the file; copy instead
		case errors.Is(err, io.EOF):
			return fuse.ReadResultData(nil), 0
		default:
			return nil, h.failed(tctx, off, len(dest), err)
		}
	}
	n := 0
	for n < len(dest) {
		k, err := h.r.ReadAt(tctx, dest[n:], off+int64(n))
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, h.failed(tctx, off+int64(n), len(dest)-n, err)
		}
		if k == 0 {
			h.m.log.Warn("reader returned no data and no error", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(), "off", off+int64(n))
			return nil, syscall.EIO
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// boundCtx derives the context of a request that may wait on a torrent: it
// ends when the kernel interrupts the request, when the read timeout passes
// (cause ErrReadTimeout) or when the mount is being unmounted (cause
// ErrUnmounted). done releases it.
func (m *Server) boundCtx(ctx context.Context) (_ context.Context, done func()) {
	rctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(m.ctx, func() { cancel(ErrUnmounted) })
	tctx, tcancel := context.WithTimeoutCause(rctx, m.readTimeout, ErrReadTimeout)
	return tctx, func() {
		tcancel()
		stop()
		cancel(nil)
	}
}

// failed logs a failed read and returns its errno.
func (h *handle) failed(ctx context.Context, off int64, n int, err error) syscall.Errno {
	errno := translate(ctx, err)
	if errno == syscall.EINTR {
		h.m.log.Debug("read interrupted", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(), "off", off)
	} else {
		level := slog.LevelWarn
		if h.m.failLog.repeat(failReason(errno, err), time.Now()) {
			level = slog.LevelDebug // said already: one line, not one per read
		}
		h.m.log.Log(ctx, level, "read failed", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(),
			"off", off, "len", n, "errno", errno.Error(), "err", err)
	}
	return errno
}

// failReason is what makes two read failures the same for failLog: the
// errno and the innermost error (a full disk, a timeout), not the offsets
// and pieces the outer errors name.
func failReason(errno syscall.Errno, err error) string {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return errno.Error() + ": " + err.Error()
		}
		err = inner
	}
}

// failLog tells a read failure that repeats the last one logged within
// failRepeatWindow, so that reads failing for one reason log one warning.
type failLog struct {
	mu   sync.Mutex // guards last and at
	last string
	at   time.Time
}

// failRepeatWindow is how long an identical read failure stays quiet.
const failRepeatWindow = time.Minute

// repeat records msg at now and reports whether it repeats the last
// warning, logged less than failRepeatWindow ago.
func (f *failLog) repeat(msg string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == f.last && now.Sub(f.at) < failRepeatWindow {
		return true
	}
	f.last, f.at = msg, now
	return false
}

// spanResult replies to a read from a held Span. go-fuse splices it from the
// span's file into /dev/fuse (it looks for the Seekable method) and falls
// back to Bytes when splicing is not possible; Done releases the span once
// the reply is sent.
type spanResult struct{ sp Span }

var _ fuse.ReadResult = spanResult{}

// Seekable tells go-fuse where to splice the reply from.
func (r spanResult) Seekable() (fd uintptr, off int64, sz int) {
	return r.sp.Fd(), r.sp.Offset(), r.sp.Len()
}

// Bytes reads the span into buf, for when splicing is not possible.
func (r spanResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if cap(buf) < r.sp.Len() {
		buf = make([]byte, r.sp.Len())
	}
	buf = buf[:r.sp.Len()]
	n, err := unix.Pread(int(r.sp.Fd()), buf, r.sp.Offset())
	if err != nil || n != len(buf) {
		return nil, fuse.EIO
	}
	return buf, fuse.OK
}

// Size is the reply's length.
func (r spanResult) Size() int { return r.sp.Len() }

// Done releases the span after the reply was sent.
func (r spanResult) Done() { r.sp.Release() }

// Release closes the handle's reader.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if err := h.r.Close(); err != nil {
		h.m.log.Debug("closing reader", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(), "err", err)
	}
	return 0
}

// translate maps an error from a Torrent or FileReader to the errno the
// kernel gets; ctx is the context the failed call ran with. It is the only
// place where errors become errnos:
//   - nil and io.EOF: success (the caller returns the bytes it has);
//   - cancellation whose cause is ErrReadTimeout, ErrUnmounted or a
//     deadline: EIO (the reader should not retry in a loop);
//   - any other cancellation (the kernel interrupted the request): EINTR;
//   - a syscall.Errno in the chain: that errno;
//   - anything else: EIO.
func translate(ctx context.Context, err error) syscall.Errno {
	if err == nil || errors.Is(err, io.EOF) {
		return 0
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		cause := context.Cause(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded),
			errors.Is(cause, ErrReadTimeout),
			errors.Is(cause, ErrUnmounted),
			errors.Is(cause, context.DeadlineExceeded):
			return syscall.EIO
		default:
			return syscall.EINTR
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}
