package httpserve

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Default values used for zero Config fields.
const (
	// DefaultReadTimeout bounds one read waiting for data that does not come.
	DefaultReadTimeout = 60 * time.Second
	// DefaultBufferSize is the read buffer of one file request.
	DefaultBufferSize = 1 << 20
)

// Errors of this package.
var (
	ErrBadPath = errors.New("httpserve: bad path")
	errNoToken = errors.New("httpserve: missing or wrong token")
)

// Config configures a Server. Library is required; the zero value of every
// other field is valid.
type Config struct {
	// Library is the set of torrents served.
	Library library.Library
	// Token authorizes POST and DELETE; empty refuses them all.
	Token string
	// ReadTimeout bounds each read of file data; zero means
	// DefaultReadTimeout. The request's own context also ends reads.
	ReadTimeout time.Duration
	// BufferSize is how many bytes one file request reads at a time;
	// zero means DefaultBufferSize.
	BufferSize int
	// LoopbackOnly refuses (403) requests whose Host is not "localhost" or
	// a loopback address: a server listening on loopback then cannot be
	// reached by a web page through DNS rebinding.
	LoopbackOnly bool
	// Logger receives diagnostics; nil means silent.
	Logger *slog.Logger
}

// Server is the http.Handler of the package.
type Server struct {
	lib     library.Library
	token   string
	timeout time.Duration
	bufSize int
	lbOnly  bool
	log     *slog.Logger
	cop     *http.CrossOriginProtection
	latency *histogram
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		lib: cfg.Library, token: cfg.Token, timeout: cfg.ReadTimeout, bufSize: cfg.BufferSize,
		lbOnly: cfg.LoopbackOnly, log: cfg.Logger, cop: http.NewCrossOriginProtection(), latency: newHistogram(latencyBuckets),
	}
	if s.timeout <= 0 {
		s.timeout = DefaultReadTimeout
	}
	if s.bufSize <= 0 {
		s.bufSize = DefaultBufferSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.lbOnly && !loopbackHost(r.Host) {
		http.Error(w, "httpserve: this server answers only to localhost and loopback addresses", http.StatusForbidden)
		return
	}
	p := r.URL.EscapedPath()
	switch {
	case p == "/":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.serveIndex(w, r)
		}
	case strings.HasPrefix(p, "/files/"):
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.serveFile(w, r, strings.TrimPrefix(p, "/files/"))
		}
	case strings.HasPrefix(p, "/playlist/"):
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.servePlaylist(w, r, strings.TrimPrefix(p, "/playlist/"))
		}
	case p == "/metrics":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.serveMetrics(w, r)
		}
	case p == "/api/rates":
		s.serveRates(w, r)
	case p == "/api/torrents" || strings.HasPrefix(p, "/api/torrents/"):
		s.serveAPI(w, r, strings.TrimPrefix(strings.TrimPrefix(p, "/api/torrents"), "/"))
	default:
		http.NotFound(w, r)
	}
}

// loopbackHost reports whether a Host header names this machine's
// loopback: "localhost" or a loopback IP, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// allow answers 405 unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// authorize checks that a mutating request carries the token (serveAPI
// has already refused cross-origin requests).
func (s *Server) authorize(r *http.Request) (int, error) {
	got := r.Header.Get("X-Swarmfs-Token")
	if a := r.Header.Get("Authorization"); got == "" && len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		got = strings.TrimSpace(a[7:])
	}
	if s.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		return http.StatusUnauthorized, errNoToken
	}
	return 0, nil
}

// parseHash parses the hex info hash of a URL.
func parseHash(s string) (metainfo.Hash, error) {
	h, err := metainfo.ParseHash(s)
	if err != nil || len(s) != 2*metainfo.HashSize {
		return metainfo.Hash{}, fmt.Errorf("%w: %q is not a hex info hash", ErrBadPath, s)
	}
	return h, nil
}

// splitFilePath splits the escaped path "INFOHASH/A/B" into the hash and
// the decoded file path "A/B", refusing anything that is not a plain
// relative path.
func splitFilePath(escaped string) (metainfo.Hash, string, error) {
	hs, rest, ok := strings.Cut(escaped, "/")
	if !ok || rest == "" {
		return metainfo.Hash{}, "", fmt.Errorf("%w: want /files/INFOHASH/PATH", ErrBadPath)
	}
	h, err := parseHash(hs)
	if err != nil {
		return metainfo.Hash{}, "", err
	}
	parts := strings.Split(rest, "/")
	for i, c := range parts {
		d, err := url.PathUnescape(c)
		if err != nil {
			return metainfo.Hash{}, "", fmt.Errorf("%w: %v", ErrBadPath, err)
		}
		if d == "" || d == "." || d == ".." || strings.ContainsAny(d, "/\x00") {
			return metainfo.Hash{}, "", fmt.Errorf("%w: component %q", ErrBadPath, d)
		}
		parts[i] = d
	}
	return h, strings.Join(parts, "/"), nil
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadPath), errors.Is(err, library.ErrBadSource), errors.Is(err, library.ErrAmbiguous):
		return http.StatusBadRequest
	case errors.Is(err, library.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, library.ErrExists):
		return http.StatusConflict
	case errors.Is(err, library.ErrNoInfo):
		return http.StatusServiceUnavailable
	case errors.Is(err, errNoToken):
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// fail writes a plain-text error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		s.log.Warn("http request failed", "path", r.URL.Path, "err", err)
	}
	http.Error(w, err.Error(), code)
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
