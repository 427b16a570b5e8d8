package fs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
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
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(h.m.ctx, func() { cancel(ErrUnmounted) })
	defer stop()
	tctx, tcancel := context.WithTimeoutCause(rctx, h.m.readTimeout, ErrReadTimeout)
	defer tcancel()

	n := 0
	for n < len(dest) {
		k, err := h.r.ReadAt(tctx, dest[n:], off+int64(n))
		n += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errno := translate(tctx, err)
			if errno == syscall.EINTR {
				h.m.log.Debug("read interrupted", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(), "off", off)
			} else {
				h.m.log.Warn("read failed", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(),
					"off", off+int64(n), "len", len(dest)-n, "errno", errno.Error(), "err", err)
			}
			return nil, errno
		}
		if k == 0 {
			h.m.log.Warn("reader returned no data and no error", "torrent", h.f.e.name, "path", h.f.file.DisplayPath(), "off", off+int64(n))
			return nil, syscall.EIO
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

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
