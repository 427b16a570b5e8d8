package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

// serveFile serves /files/INFOHASH/PATH.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, escaped string) {
	h, p, err := splitFilePath(escaped)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := s.lib.Torrent(h)
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: torrent %s", library.ErrNotFound, h))
		return
	}
	if !t.Ready {
		s.fail(w, r, fmt.Errorf("%w: %s", library.ErrNoInfo, t.Name))
		return
	}
	idx := t.FileIndex(p)
	if idx < 0 {
		s.fail(w, r, fmt.Errorf("%w: %s has no file %q", library.ErrNotFound, t.Name, p))
		return
	}
	f := t.Files[idx]
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(f.Path))
	hdr.Set("ETag", fmt.Sprintf(`"%s-%d"`, h, idx))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("X-Content-Type-Options", "nosniff")
	rd, err := s.lib.Open(r.Context(), h, idx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rd.Close()
	st := &stream{
		ctx: r.Context(), r: rd, size: f.Size, timeout: s.timeout, bufSize: s.bufSize, latency: s.latency,
		log: s.log.With("torrent", t.Name, "file", f.Path),
	}
	// ServeContent handles Range, If-Range, If-None-Match, HEAD and 416.
	http.ServeContent(w, r, path.Base(f.Path), t.Modified, st)
}

// firstFill is the size of the first read after a seek: small ranges
// (players probing a file) wait for little more than they asked for.
const firstFill = 64 << 10

// stream adapts a library.Reader to the io.ReadSeeker that
// http.ServeContent wants, with the request's context and a timeout per
// read. Each read after a seek is firstFill bytes, and each following one
// twice the last, up to bufSize, so that the engine sees large sequential
// reads while a stream goes on. It is used by one goroutine at a time
// (for multi-range requests, ServeContent's writer goroutine).
type stream struct {
	ctx     context.Context
	r       library.Reader
	size    int64
	timeout time.Duration
	bufSize int
	latency *histogram
	log     *slog.Logger

	pos    int64
	buf    []byte // holds the file bytes [bufOff, bufOff+len(buf))
	bufOff int64
	next   int // size of the next fill; 0 means firstFill
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

// fill reads the buffer at the current position.
func (s *stream) fill() error {
	want := min(max(s.next, firstFill), s.bufSize)
	s.next = min(2*want, s.bufSize)
	n := int(min(int64(want), s.size-s.pos))
	if cap(s.buf) < n {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:n]
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	start := time.Now()
	k, err := s.r.ReadAt(ctx, s.buf, s.pos)
	s.latency.observe(time.Since(start).Seconds())
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
	return nil
}

// mediaTypes are the types of media files that Go's table may lack.
var mediaTypes = map[string]string{
	".mkv": "video/x-matroska", ".mka": "audio/x-matroska", ".mp4": "video/mp4", ".m4v": "video/mp4",
	".webm": "video/webm", ".avi": "video/x-msvideo", ".mov": "video/quicktime", ".wmv": "video/x-ms-wmv",
	".flv": "video/x-flv", ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".ts": "video/mp2t",
	".m2ts": "video/mp2t", ".ogv": "video/ogg", ".3gp": "video/3gpp",
	".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
	".opus": "audio/ogg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".wav": "audio/wav",
	".wma": "audio/x-ms-wma",
	".srt": "application/x-subrip", ".vtt": "text/vtt", ".txt": "text/plain; charset=utf-8",
	".nfo": "text/plain; charset=utf-8", ".iso": "application/x-iso9660-image",
}

// contentType returns the Content-Type for a file name from its extension.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// isMedia reports whether a file belongs in a playlist.
func isMedia(name string) bool {
	t := contentType(name)
	return strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/")
}
