package engine

import (
	"errors"
	"time"
)

// What a peer may send is checked by its reader goroutine, before anything
// is copied or queued for the loop: the cost of a message is charged to
// its sender, and a peer over its share is dropped.
const (
	// extHandshakeBurst extension handshakes may come at once (the first
	// and a few updates, as BEP 10 allows); then one per
	// extHandshakeEvery. A peer sending more is dropped.
	extHandshakeBurst = 4
	extHandshakeEvery = 10 * time.Second
	// bitfieldBurst bitfields may come at once, then one per
	// bitfieldEvery (a bitfield may be 1 MiB).
	bitfieldBurst = 4
	bitfieldEvery = 10 * time.Second
)

// errExtFlood is the reason a peer that repeats its extension handshake
// too often is dropped.
var errExtFlood = errors.New("extension handshakes too frequent")

// errBitfieldFlood is the reason a peer that repeats its bitfield too
// often is dropped.
var errBitfieldFlood = errors.New("bitfields too frequent")

// tokenBucket allows burst events at once and then one per every.
type tokenBucket struct {
	tokens float64
	burst  float64
	every  time.Duration
	last   time.Time
}

func newTokenBucket(burst int, every time.Duration, now time.Time) tokenBucket {
	return tokenBucket{tokens: float64(burst), burst: float64(burst), every: every, last: now}
}

// take spends a token, reporting false when none is left.
func (b *tokenBucket) take(now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+float64(d)/float64(b.every))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
