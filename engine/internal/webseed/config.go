package webseed

import (
	"log/slog"
	"net"
	"time"
)

// Config tunes a Seed. The zero Config is valid; each field says what its
// zero value means.
type Config struct {
	// MaxConns is the most fetches in flight at once, and so the most
	// connections to the server; 0 means 2.
	MaxConns int
	// MaxRedirects is the most redirects followed by one request (only to
	// http and https URLs); 0 means 5, negative means none.
	MaxRedirects int
	// IdleTimeout is the longest wait for a connection, for response
	// headers and for each read of the body to return bytes; 0 means 15 s.
	IdleTimeout time.Duration
	// Retries is how many times one fetch re-sends a request that failed
	// in a way that may pass (5xx, 429, resets, stalls, short bodies),
	// resuming after the bytes already received; 0 means 3, negative means
	// none.
	Retries int
	// RetryDelay is the wait before the first retry, doubled for each
	// next one; 0 means 250 ms.
	RetryDelay time.Duration
	// MaxRetryWait is the longest a fetch waits before a retry. When the
	// server's Retry-After asks for more, the fetch fails and the seed
	// backs off until then instead; 0 means 5 s.
	MaxRetryWait time.Duration
	// MinBackoff and MaxBackoff bound how long the seed rests after a fetch
	// failed with every retry spent: MinBackoff doubled for each fetch in a
	// row that failed so, at most MaxBackoff; 0 means 1 s and 2 min.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the server's Retry-After; 0 means 10 min.
	MaxRetryAfter time.Duration
	// MaxDiscard is how many bytes of a 200 response (a server that ignored
	// Range and sent the whole file) may be read and thrown away to reach
	// the wanted part; 0 means 1 MiB, negative means such responses are
	// never used.
	MaxDiscard int64
	// MaxFaults is how many faults (pieces that failed their hash check,
	// see Failed, plus responses that broke HTTP: bad Content-Range,
	// ignored Range, bad redirects) drop the seed; 0 means 3.
	MaxFaults int
	// WrapConn, when not nil, wraps every connection the seed dials (the
	// engine charges web seed bytes to its rate limiters through it).
	WrapConn func(net.Conn) net.Conn
	// UserAgent is sent with every request; "" means "swarmfs".
	UserAgent string
	// Logger receives state changes (backoff, drop, skipped files) at Info
	// and retries at Debug; nil means silent.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxConns      = 2
	DefaultMaxRedirects  = 5
	DefaultIdleTimeout   = 15 * time.Second
	DefaultRetries       = 3
	DefaultRetryDelay    = 250 * time.Millisecond
	DefaultMaxRetryWait  = 5 * time.Second
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = 2 * time.Minute
	DefaultMaxRetryAfter = 10 * time.Minute
	DefaultMaxDiscard    = 1 << 20
	DefaultMaxFaults     = 3
)

// maxDrain is the most bytes left in a body that are read to keep its
// connection for reuse; a longer rest closes the connection instead.
const maxDrain = 64 << 10

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.MaxRedirects == 0:
		c.MaxRedirects = DefaultMaxRedirects
	case c.MaxRedirects < 0:
		c.MaxRedirects = 0
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.RetryDelay, DefaultRetryDelay)
	def(&c.MaxRetryWait, DefaultMaxRetryWait)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.MaxRetryAfter, DefaultMaxRetryAfter)
	switch {
	case c.MaxDiscard == 0:
		c.MaxDiscard = DefaultMaxDiscard
	case c.MaxDiscard < 0:
		c.MaxDiscard = -1
	}
	if c.MaxFaults <= 0 {
		c.MaxFaults = DefaultMaxFaults
	}
	if c.UserAgent == "" {
		c.UserAgent = "swarmfs"
	}
	return c
}
