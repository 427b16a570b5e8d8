package tracker

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// AnnouncerConfig configures one torrent's Announcer. The zero value of
// each field is valid and documented.
type AnnouncerConfig struct {
	InfoHash [20]byte
	PeerID   [20]byte
	Port     uint16 // our TCP listen port; 0 is sent as is
	// NumWant is the number of peers asked for; 0 = 50.
	NumWant int
	// Key identifies this session to trackers; 0 = random.
	Key uint32
	// DefaultInterval is the re-announce interval when a tracker gives
	// none; 0 = 30 min.
	DefaultInterval time.Duration
	// MinInterval is the floor between two announces of this torrent,
	// whatever the tracker says, and so the rate limit of NeedPeers (the
	// tracker's own "min interval" raises it); 0 = 30 s. The one
	// "completed" announce does not wait for it.
	MinInterval time.Duration
	// RetryInterval is the wait after a round in which every tracker
	// failed; it doubles with each failed round up to DefaultInterval and
	// is never below MinInterval. 0 = 1 min.
	RetryInterval time.Duration
	// StopTimeout bounds the "stopped" announces sent when Run's context
	// ends; 0 = 5 s.
	StopTimeout time.Duration
	// MaxPendingPeers caps the peers held for a slow reader of Peers(); 0 = 1000.
	MaxPendingPeers int
	// Family is the IP family of every announce (AnnounceRequest.Family);
	// a dual-stack client runs one Announcer per family. The zero value
	// lets each tracker's name decide, IPv4 first.
	Family Family
	// IPv4 and IPv6 are sent as BEP 7 "ipv4=" / "ipv6=" (see
	// AnnounceRequest); invalid addresses are not sent.
	IPv4, IPv6 netip.Addr
	// Logger receives debug logs; nil = silent.
	Logger *slog.Logger
}

// Status is a snapshot of an Announcer for display.
type Status struct {
	URL          string    // the tracker that answered last; "" if none yet
	LastAnnounce time.Time // when that answer came; zero if none yet
	NextAnnounce time.Time // when the next regular announce is due; zero when not running
	Seeders      int       // from the last answer; -1 when unknown
	Leechers     int       // from the last answer; -1 when unknown
	Peers        int       // peers in the last answer
	Warning      string    // the last answer's warning message
	LastError    error     // the last failure; nil after a round that succeeded
	Announces    int       // successful announces since NewAnnouncer
	Failures     int       // failed announce attempts since NewAnnouncer
}

// Announcer keeps one torrent announced to its trackers. Create it with
// NewAnnouncer and run Run in a goroutine; the other methods are safe to
// call from any goroutine at any time.
type Announcer struct {
	c     *Client
	cfg   AnnouncerConfig
	stats func() (uploaded, downloaded, left int64)
	log   *slog.Logger
	tiers *Tiers // owned by Run

	peers     chan []netip.AddrPort // cap 1, Run is the only sender
	need      chan struct{}         // cap 1, coalesced
	completed chan struct{}         // cap 1, coalesced
	complete  atomic.Int32          // completeNo, completePending, completeSent
	running   atomic.Bool

	mu     sync.Mutex
	status Status
}

// States of Announcer.complete.
const (
	completeNo      = iota // not complete yet
	completePending        // "completed" to be sent
	completeSent           // "completed" was accepted by a tracker
)

// errAlreadyRunning is returned by Run when another Run is active.
var errAlreadyRunning = errors.New("tracker: announcer already running")

// NewAnnouncer returns an Announcer for the BEP 12 tiers of announce URLs.
// stats reports the byte counters sent with every announce; it is called
// from Run's goroutine and must be safe to call from any goroutine.
func NewAnnouncer(c *Client, tiers [][]string, cfg AnnouncerConfig, stats func() (uploaded, downloaded, left int64)) *Announcer {
	if cfg.NumWant <= 0 {
		cfg.NumWant = 50
	}
	if cfg.Key == 0 {
		cfg.Key = rand.Uint32() | 1
	}
	if cfg.DefaultInterval <= 0 {
		cfg.DefaultInterval = 30 * time.Minute
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 30 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Minute
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.MaxPendingPeers <= 0 {
		cfg.MaxPendingPeers = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stats == nil {
		stats = func() (int64, int64, int64) { return 0, 0, 0 }
	}
	return &Announcer{
		c:         c,
		cfg:       cfg,
		stats:     stats,
		log:       log,
		tiers:     NewTiers(tiers, nil),
		peers:     make(chan []netip.AddrPort, 1),
		need:      make(chan struct{}, 1),
		completed: make(chan struct{}, 1),
		status:    Status{Seeders: -1, Leechers: -1},
	}
}

// Peers delivers the peers of each successful announce. When the reader
// falls behind, newer batches are merged into the pending one (deduplicated,
// at most MaxPendingPeers), so the announcer never blocks on it.
func (a *Announcer) Peers() <-chan []netip.AddrPort { return a.peers }

// NeedPeers asks for an announce as soon as the min interval allows.
// Calls are coalesced; it never blocks.
func (a *Announcer) NeedPeers() {
	select {
	case a.need <- struct{}{}:
	default:
	}
}

// Completed records that the download finished: the next announce to a
// tracker that was already told "started" carries "completed", and once one
// such announce succeeds no other does. It asks for that announce at once,
// without waiting for the min interval, and never blocks. When Completed is called before
// the first "started" went out and that "started" reports Left = 0 (the
// torrent was complete when added), no "completed" is sent at all.
func (a *Announcer) Completed() {
	if !a.complete.CompareAndSwap(completeNo, completePending) {
		return
	}
	select {
	case a.completed <- struct{}{}:
	default:
	}
}

// Status returns a snapshot for display.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// LastError returns the error of the last failed round, nil after success.
func (a *Announcer) LastError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status.LastError
}
