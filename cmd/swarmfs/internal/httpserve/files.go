package httpserve

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"

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
	f := t.Files.At(idx)
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
		// ServeContent reads the parts of a multi-range request on a
		// goroutine of its own that may outlive it: no reads ahead there.
		pipeline: !strings.Contains(r.Header.Get("Range"), ","),
	}
	// ServeContent handles Range, If-Range, If-None-Match, HEAD and 416.
	http.ServeContent(w, r, path.Base(f.Path), t.Modified, st)
	st.close()
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
