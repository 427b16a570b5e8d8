package webseed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// State is where a seed stands.
type State int

// States of a Seed.
const (
	// StateOK: the seed takes fetches.
	StateOK State = iota
	// StateBackoff: the seed rests until Status().Until after failures.
	StateBackoff
	// StateDropped: the seed is never used again.
	StateDropped
)

func (s State) String() string {
	switch s {
	case StateOK:
		return "ok"
	case StateBackoff:
		return "backoff"
	case StateDropped:
		return "dropped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a snapshot of a seed, for status lines, xattrs and logs.
type Status struct {
	URL   string
	State State
	// Until is when a backoff ends (zero unless State is StateBackoff).
	Until time.Time
	// Cause is why the seed backs off or was dropped; nil when ok.
	Cause error
	// InFlight fetches out of MaxConns.
	InFlight, MaxConns int
	// Downloaded counts body bytes received into piece buffers (pad bytes
	// excluded): "bytes from web seeds". Wasted counts bytes read and
	// thrown away (an ignored Range, over-long bodies kept for keep-alive).
	Downloaded, Wasted int64
	// Requests counts HTTP requests sent (redirects not included).
	Requests int64
	// Faults counts hash failures and protocol faults (see Config.MaxFaults).
	Faults int
	// MissingFiles counts files this seed skips (see ErrFileMissing).
	MissingFiles int
}

// String returns the state, with its end or cause: "ok",
// "backoff until 15:04:05: cause", "dropped: cause".
func (st Status) String() string {
	switch st.State {
	case StateBackoff:
		return fmt.Sprintf("backoff until %s: %v", st.Until.Format(time.TimeOnly), st.Cause)
	case StateDropped:
		return fmt.Sprintf("dropped: %v", st.Cause)
	}
	return st.State.String()
}

// Seed fetches pieces of one torrent from one web seed URL. Its methods are
// safe for concurrent use.
type Seed struct {
	url   string
	info  *metainfo.Info
	cfg   Config
	files []string // URL of each info.Files entry
	// nonEmpty counts the files that hold bytes (only those are requested).
	nonEmpty int
	tr       *http.Transport
	client   *http.Client
	slots    chan struct{} // one token per fetch in flight
	log      *slog.Logger
	now      func() time.Time

	downloaded, wasted, requests atomic.Int64

	mu          sync.Mutex // guards the fields below
	state       State
	until       time.Time
	cause       error
	failedRuns  int // fetches in a row that failed with retries spent
	faults      int
	missing     map[int]error // file index -> why the seed skips it
	badPieces   map[int]bool  // pieces that failed their hash from this seed
	unavailable bool          // missing or badPieces is not empty
}

// New returns a seed for the web seed URL rawURL (a url-list entry) of
// the torrent described by info. It starts nothing and sends nothing.
func New(rawURL string, info *metainfo.Info, cfg Config) (*Seed, error) {
	cfg = cfg.withDefaults()
	files, err := fileURLs(rawURL, info)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.IdleTimeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if wrap := cfg.WrapConn; wrap != nil {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		}
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           cfg.MaxConns,
		MaxIdleConnsPerHost:    cfg.MaxConns,
		MaxConnsPerHost:        cfg.MaxConns,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.IdleTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
	s := &Seed{
		url:       rawURL,
		info:      info,
		cfg:       cfg,
		files:     files,
		tr:        tr,
		slots:     make(chan struct{}, cfg.MaxConns),
		log:       cfg.Logger,
		now:       time.Now,
		missing:   make(map[int]error),
		badPieces: make(map[int]bool),
	}
	for _, f := range info.Files {
		if f.Length > 0 {
			s.nonEmpty++
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("webseed", rawURL)
	s.client = &http.Client{Transport: tr, CheckRedirect: s.checkRedirect}
	return s, nil
}

// checkRedirect allows Config.MaxRedirects redirects, to http and https only.
func (s *Seed) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > s.cfg.MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, s.cfg.MaxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: to a %q URL", ErrRedirect, req.URL.Scheme)
	}
	return nil
}

// URL returns the web seed URL the seed was made with.
func (s *Seed) URL() string { return s.url }

// FileURL returns the URL the seed requests for Info.Files[i].
func (s *Seed) FileURL(i int) string { return s.files[i] }

// Downloaded returns the body bytes received into piece buffers so far.
func (s *Seed) Downloaded() int64 { return s.downloaded.Load() }

// Free returns how many fetches the seed would take now: MaxConns minus
// those in flight, or 0 while it backs off or after it was dropped.
func (s *Seed) Free() int {
	if st, _ := s.stateNow(); st != StateOK {
		return 0
	}
	return cap(s.slots) - len(s.slots)
}

// Usable reports whether the seed may be asked for piece: it is not
// dropped, the piece did not fail its hash check from this seed, and no
// file the piece touches is missing on this seed. A seed that backs off is
// usable (later); see Free.
func (s *Seed) Usable(piece int) bool {
	if piece < 0 || piece >= s.info.NumPieces() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usableLocked(piece)
}

func (s *Seed) usableLocked(piece int) bool {
	if s.state == StateDropped {
		return false
	}
	if !s.unavailable {
		return true
	}
	if s.badPieces[piece] {
		return false
	}
	for _, p := range s.info.FileParts(s.info.PieceOffset(piece), s.info.PieceSize(piece)) {
		if s.missing[p.File] != nil {
			return false
		}
	}
	return true
}

// Failed charges the seed for piece, which it delivered and which then
// failed its hash check. The piece is not asked from this seed again, and
// after Config.MaxFaults faults the seed is dropped. Peers are never blamed
// for bytes that came from a web seed.
func (s *Seed) Failed(piece int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if piece >= 0 && piece < s.info.NumPieces() {
		s.badPieces[piece] = true
		s.unavailable = true
	}
	s.faultLocked(fmt.Errorf("%w: piece %d", ErrBadData, piece))
}

// faultLocked counts one fault and drops the seed at Config.MaxFaults.
func (s *Seed) faultLocked(err error) {
	s.faults++
	if s.faults >= s.cfg.MaxFaults {
		s.dropLocked(fmt.Errorf("%d faults, last: %w", s.faults, err))
	}
}

// dropLocked drops the seed for good.
func (s *Seed) dropLocked(cause error) {
	if s.state == StateDropped {
		return
	}
	s.state, s.cause, s.until = StateDropped, cause, time.Time{}
	s.log.Info("web seed dropped", "cause", cause)
	s.tr.CloseIdleConnections()
}

// stateNow returns the state, ending a backoff whose time has come.
func (s *Seed) stateNow() (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateNowLocked()
}

func (s *Seed) stateNowLocked() (State, error) {
	if s.state == StateBackoff && !s.now().Before(s.until) {
		s.state, s.cause, s.until = StateOK, nil, time.Time{}
	}
	return s.state, s.cause
}

// Status returns a snapshot of the seed.
func (s *Seed) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, cause := s.stateNowLocked()
	return Status{
		URL:          s.url,
		State:        st,
		Until:        s.until,
		Cause:        cause,
		InFlight:     len(s.slots),
		MaxConns:     cap(s.slots),
		Downloaded:   s.downloaded.Load(),
		Wasted:       s.wasted.Load(),
		Requests:     s.requests.Load(),
		Faults:       s.faults,
		MissingFiles: len(s.missing),
	}
}

// Close drops the seed (fetches in flight end with their contexts) and
// closes its idle connections.
func (s *Seed) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(ErrClosed)
	s.tr.CloseIdleConnections()
}

// markMissing makes the seed skip file i from now on.
func (s *Seed) markMissing(i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.missing[i] != nil {
		return
	}
	s.missing[i] = err
	s.unavailable = true
	s.log.Info("web seed skips a file", "file", s.info.Files[i].DisplayPath(), "err", err)
	if len(s.missing) >= s.nonEmpty {
		s.dropLocked(fmt.Errorf("%w (last: %w)", ErrNoFiles, err))
	}
}

// backoffLocked makes the seed rest until t, unless it already rests longer
// or was dropped.
func (s *Seed) backoffLocked(t time.Time, cause error) {
	if s.state == StateDropped || (s.state == StateBackoff && !t.After(s.until)) {
		return
	}
	s.state, s.until, s.cause = StateBackoff, t, cause
	s.log.Info("web seed backs off", "until", t, "cause", cause)
}
