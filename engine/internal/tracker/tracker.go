package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// Sentinel errors. Each carries the package name.
var (
	// ErrFailure is wrapped by *FailureError: the tracker refused the announce.
	ErrFailure = errors.New("tracker: failure reported by tracker")
	// ErrBadResponse is wrapped when a tracker's answer cannot be decoded.
	ErrBadResponse = errors.New("tracker: malformed response")
	// ErrHTTPStatus is wrapped when an HTTP tracker answers with a non-200
	// status and no failure reason.
	ErrHTTPStatus = errors.New("tracker: unexpected HTTP status")
	// ErrNoResponse is returned when a UDP tracker did not answer after all
	// retransmissions.
	ErrNoResponse = errors.New("tracker: no response from UDP tracker")
	// ErrUnsupportedScheme is returned for announce URLs that are neither
	// http, https nor udp.
	ErrUnsupportedScheme = errors.New("tracker: unsupported announce URL scheme")
	// ErrClosed is returned by Announce after Close.
	ErrClosed = errors.New("tracker: client closed")
	// ErrNoAddress is returned when a tracker has no address of the
	// family an announce asked for (AnnounceRequest.Family).
	ErrNoAddress = errors.New("tracker: no tracker address of the requested family")
)

// Family selects the IP family an announce travels over (BEP 7: a
// dual-stack client announces once over each, so that the tracker learns
// both of its addresses).
type Family uint8

// Families.
const (
	FamilyAny  Family = iota // whatever the tracker's name resolves to, IPv4 first
	FamilyIPv4               // over IPv4 only
	FamilyIPv6               // over IPv6 only
)

// String returns "any", "ipv4" or "ipv6".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	}
	return "any"
}

// network returns the Go network name for f with the prefix "tcp", "udp"
// or "ip".
func (f Family) network(prefix string) string {
	switch f {
	case FamilyIPv4:
		return prefix + "4"
	case FamilyIPv6:
		return prefix + "6"
	}
	return prefix
}

// allows reports whether a may be used for an announce over f.
func (f Family) allows(a netip.Addr) bool {
	a = a.Unmap()
	switch f {
	case FamilyIPv4:
		return a.Is4()
	case FamilyIPv6:
		return a.Is6()
	}
	return true
}

// FailureError is a tracker's refusal: an HTTP "failure reason" or a UDP
// error action. Reason is the tracker's own text.
type FailureError struct {
	URL    string // the announce URL
	Reason string // the tracker's text, verbatim (may be empty for UDP)
}

func (e *FailureError) Error() string {
	return fmt.Sprintf("tracker: %s: failure: %q", e.URL, e.Reason)
}

// Unwrap returns ErrFailure.
func (e *FailureError) Unwrap() error { return ErrFailure }

// Event is the announce event. The values are those of BEP 15.
type Event int32

// Announce events.
const (
	EventNone      Event = 0 // a regular re-announce
	EventCompleted Event = 1 // the download finished (sent once)
	EventStarted   Event = 2 // the first announce of a torrent
	EventStopped   Event = 3 // the torrent is going away
)

// String returns the event's name as used in HTTP announces ("" for None).
func (e Event) String() string {
	switch e {
	case EventCompleted:
		return "completed"
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	}
	return ""
}

// AnnounceRequest is what one announce tells a tracker.
type AnnounceRequest struct {
	InfoHash   [20]byte
	PeerID     [20]byte
	Port       uint16 // our TCP listen port
	Uploaded   int64  // bytes uploaded since "started"
	Downloaded int64  // bytes downloaded since "started"
	Left       int64  // bytes still missing; 0 = seeding
	Event      Event
	NumWant    int    // peers wanted; 0 = let the tracker choose (UDP sends -1)
	Key        uint32 // random per session, lets the tracker know us across IP changes
	TrackerID  string // the "tracker id" from this tracker's previous answer, if any
	// Family is the IP family the announce travels over. For HTTP it is
	// enforced only with the Client's own HTTP client (Config.HTTPClient
	// nil); an injected client dials as it likes.
	Family Family
	// IPv4 and IPv6 are our addresses of each family to tell the tracker
	// (BEP 7 "ipv4=" / "ipv6=" on HTTP announces, with Port as the port);
	// invalid ones are left out. Use them for the family the announce does
	// not travel over: the tracker sees that one as the source address.
	IPv4, IPv6 netip.Addr
}

// AnnounceResponse is a tracker's answer. Durations are clamped to
// [0, MaxInterval]; zero means the tracker did not say.
type AnnounceResponse struct {
	Interval    time.Duration
	MinInterval time.Duration
	Peers       []netip.AddrPort // deduplicated, at most Config.MaxPeers
	Seeders     int              // -1 when the tracker did not say
	Leechers    int              // -1 when the tracker did not say
	TrackerID   string           // HTTP "tracker id"; send it back next time
	Warning     string           // HTTP "warning message"
}

// MaxInterval caps intervals taken from a tracker (one day).
const MaxInterval = 24 * time.Hour

// Config configures a Client. The zero value is valid.
type Config struct {
	// HTTPClient sends HTTP(S) announces; nil = a private client with a
	// cloned default transport. Its redirects are followed (at most 10).
	HTTPClient *http.Client
	// UserAgent is sent with HTTP announces; "" = "swarmfs".
	UserAgent string
	// Timeout bounds one Announce call (all retransmissions included) when
	// the caller's context has no earlier deadline; 0 = 60 s.
	Timeout time.Duration
	// MaxResponseBytes caps an HTTP response body; 0 = 2 MiB. Larger
	// bodies are an error wrapping ErrBadResponse.
	MaxResponseBytes int64
	// MaxPeers caps the peers kept from one answer; 0 = 1000.
	MaxPeers int
	// UDPRetryBase is the first UDP timeout; the n-th retransmission waits
	// UDPRetryBase*2^n (BEP 15 uses 15 s). 0 = 15 s.
	UDPRetryBase time.Duration
	// UDPMaxRetries is the number of retransmissions in one Announce call
	// (connect and announce together) before ErrNoResponse (BEP 15 stops
	// at n = 8). 0 = 8; negative = none.
	UDPMaxRetries int
	// UDPListenAddr is the local address of the shared UDP socket;
	// "" = ":0" (all interfaces, any port, IPv4 and IPv6).
	UDPListenAddr string
	// Logger receives debug logs; nil = silent.
	Logger *slog.Logger
}

// Client announces to HTTP(S) and UDP trackers. One Client serves all the
// torrents of an engine; it is safe for concurrent use.
type Client struct {
	cfg     Config
	http    [3]*http.Client // by Family; the same injected client thrice
	ownHTTP bool            // http was made here: Close closes its idle connections
	log     *slog.Logger
	closed  chan struct{}
	once    sync.Once
	life    context.Context // cancelled by Close, ends HTTP announces in flight
	end     context.CancelFunc

	udpMu sync.Mutex // guards udp (lazy creation)
	udp   *udpClient
}

// NewClient returns a Client with cfg's defaults filled in. It opens no
// socket until the first UDP announce.
func NewClient(cfg Config) *Client {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "swarmfs"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 2 << 20
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 1000
	}
	if cfg.UDPRetryBase <= 0 {
		cfg.UDPRetryBase = 15 * time.Second
	}
	switch {
	case cfg.UDPMaxRetries == 0:
		cfg.UDPMaxRetries = 8
	case cfg.UDPMaxRetries < 0:
		cfg.UDPMaxRetries = 0
	}
	if cfg.UDPListenAddr == "" {
		cfg.UDPListenAddr = ":0"
	}
	var hcs [3]*http.Client
	if cfg.HTTPClient != nil {
		hcs = [3]*http.Client{cfg.HTTPClient, cfg.HTTPClient, cfg.HTTPClient}
	} else {
		// One transport per family: pooled connections must not carry an
		// announce over the other family.
		for f := range hcs {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.DialContext = dialFamily(Family(f))
			hcs[f] = &http.Client{Transport: tr}
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	life, end := context.WithCancel(context.Background())
	return &Client{cfg: cfg, http: hcs, ownHTTP: cfg.HTTPClient == nil, log: log,
		closed: make(chan struct{}), life: life, end: end}
}

// Announce sends req to the tracker at rawURL (http, https or udp) and
// returns its answer. A tracker refusal is a *FailureError.
func (c *Client) Announce(ctx context.Context, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: bad announce URL %q: %w", rawURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()
	var resp *AnnounceResponse
	switch u.Scheme {
	case "http", "https":
		resp, err = c.announceHTTP(ctx, u, rawURL, req)
	case "udp":
		var uc *udpClient
		if uc, err = c.udpClient(); err == nil {
			resp, err = uc.announce(ctx, u, rawURL, req)
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
	if err != nil && c.life.Err() != nil && !errors.Is(err, ErrClosed) {
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return resp, err
}

// Close releases the UDP socket (and the idle connections of the HTTP
// client it made, not of an injected one) and makes later Announce calls fail with
// ErrClosed; announces in flight return promptly with an error wrapping
// ErrClosed.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.end()
		if c.ownHTTP {
			for _, hc := range c.http {
				hc.CloseIdleConnections()
			}
		}
	})
	c.udpMu.Lock()
	uc := c.udp
	c.udpMu.Unlock()
	if uc != nil {
		return uc.close()
	}
	return nil
}
