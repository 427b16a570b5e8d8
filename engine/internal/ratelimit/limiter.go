package ratelimit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on what a Limiter accepts, so that its fixed-point token count
// (nanobytes in an int64) cannot overflow.
const (
	MaxRate    = 1 << 40 // bytes per second
	MaxBurst   = 1 << 30 // bytes
	MaxReserve = 1 << 32 // bytes in one Reserve call; WaitN takes any n
)

// minBurst is the smallest derived burst: a 16 KiB block with its message
// header, several times over.
const minBurst = 64 << 10

// maxChunk is the most a Conn charges or moves in one step.
const maxChunk = 64 << 10

// scale turns bytes into the nanobytes the bucket counts in: at r bytes/s
// the bucket gains exactly r nanobytes per nanosecond.
const scale = int64(time.Second)

// ErrRate reports a rate or burst that is negative or above its maximum.
var ErrRate = errors.New("ratelimit: rate or burst out of range")

// ErrTooLarge reports a Reserve above MaxReserve.
var ErrTooLarge = errors.New("ratelimit: reservation above MaxReserve")

// Class orders waiters when tokens are scarce: every Urgent waiter is
// served before any Normal one.
type Class uint8

// The classes, lowest priority first.
const (
	Normal Class = iota // background transfer: prefetch, readahead, seeding
	Urgent              // bytes a reader is blocked on (Now pieces)
	numClasses
)

// String returns "normal" or "urgent".
func (c Class) String() string {
	switch c {
	case Normal:
		return "normal"
	case Urgent:
		return "urgent"
	}
	return "class?"
}

// Config configures a Limiter. The zero Config is an unlimited limiter on
// the real clock.
type Config struct {
	// Rate is the sustained rate in bytes per second; 0 means unlimited.
	Rate int64
	// Burst is how many bytes the bucket holds; 0 derives it from the rate
	// (an eighth of a second's worth, at least 64 KiB) and SetRate
	// re-derives it. A fixed Burst stays as given.
	Burst int64
	// Clock is the time source; nil means real time (SystemClock).
	Clock Clock
}

// Limiter is a token bucket with two priority classes of waiters. A nil
// *Limiter is valid and unlimited; a Limiter must otherwise come from New.
type Limiter struct {
	clock    Clock
	rateNow  atomic.Int64 // mirrors rate for the lock-free unlimited check
	burstNow atomic.Int64 // mirrors burst for lock-free reads

	mu         sync.Mutex // guards the fields below
	rate       int64      // bytes/s, 0 = unlimited
	burst      int64      // bytes
	fixedBurst bool
	tokens     int64     // nanobytes; negative after a grant above the burst
	last       time.Time // when tokens was last brought up to date
	queue      [numClasses][]*Reservation
	timer      Timer  // armed for the head of the queue, or nil
	timerGen   uint64 // tells a stale timer callback from the current one
}

// New returns a Limiter with a full bucket.
func New(cfg Config) (*Limiter, error) {
	if cfg.Rate < 0 || cfg.Rate > MaxRate || cfg.Burst < 0 || cfg.Burst > MaxBurst {
		return nil, ErrRate
	}
	l := &Limiter{clock: cfg.Clock, rate: cfg.Rate, burst: cfg.Burst, fixedBurst: cfg.Burst > 0}
	if l.clock == nil {
		l.clock = SystemClock{}
	}
	if !l.fixedBurst {
		l.burst = defaultBurst(cfg.Rate)
	}
	l.tokens = l.burst * scale
	l.last = l.clock.Now()
	l.rateNow.Store(cfg.Rate)
	l.burstNow.Store(l.burst)
	return l, nil
}

func defaultBurst(rate int64) int64 {
	return min(max(rate/8, minBurst), MaxBurst)
}

// Rate returns the rate in bytes per second (0: unlimited).
func (l *Limiter) Rate() int64 {
	if l == nil {
		return 0
	}
	return l.rateNow.Load()
}

// Burst returns the bucket's size in bytes.
func (l *Limiter) Burst() int64 {
	if l == nil {
		return 0
	}
	return l.burstNow.Load()
}

// Limited reports whether a rate is set; it is one atomic load.
func (l *Limiter) Limited() bool { return l.Rate() != 0 }

// SetRate changes the rate (0: unlimited) and, unless Config.Burst fixed
// it, the burst. Tokens earned so far are kept (up to the new burst);
// queued waiters are re-timed, and all are served at once when the new
// rate is unlimited.
func (l *Limiter) SetRate(rate int64) error {
	if rate < 0 || rate > MaxRate {
		return ErrRate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(l.clock.Now())
	l.rate = rate
	if !l.fixedBurst {
		l.burst = defaultBurst(rate)
	}
	l.tokens = min(l.tokens, l.burst*scale)
	if rate == 0 {
		l.tokens = l.burst * scale // unlimited: always full
	}
	l.rateNow.Store(rate)
	l.burstNow.Store(l.burst)
	l.dispatchLocked()
	return nil
}

// Waiting returns how many reservations are queued, not yet granted.
func (l *Limiter) Waiting() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue[Normal]) + len(l.queue[Urgent])
}

// chunk returns the most a Conn should charge in one step.
func (l *Limiter) chunk() int {
	return int(min(l.Burst(), maxChunk))
}

// Reservation is a claim on n tokens. Ready is closed when they are
// granted; Cancel gives up the claim, or returns granted tokens unused.
type Reservation struct {
	l     *Limiter
	n     int64
	class Class
	ready chan struct{}
	state resState // guarded by l.mu
}

type resState uint8

const (
	resQueued resState = iota
	resGranted
	resCancelled
)

// closedChan is the Ready channel of reservations granted on creation.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Reserve queues a claim on n bytes in class c and returns at once. Its
// Ready channel is closed when the bucket holds n tokens (or is full, when
// n exceeds the burst) and no earlier claim of the same or a higher class
// is waiting. A nil or unlimited Limiter grants at once.
func (l *Limiter) Reserve(n int64, c Class) (*Reservation, error) {
	if n > MaxReserve {
		return nil, ErrTooLarge
	}
	r := &Reservation{l: l, n: max(n, 0), class: min(c, Urgent)}
	if l == nil || n <= 0 || !l.Limited() {
		r.ready, r.state = closedChan, resGranted
		return r, nil
	}
	r.ready = make(chan struct{})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue[r.class] = append(l.queue[r.class], r)
	l.dispatchLocked()
	return r, nil
}

// Ready is closed once the tokens are granted.
func (r *Reservation) Ready() <-chan struct{} { return r.ready }

// Cancel withdraws a queued reservation, or puts a granted reservation's
// tokens back in the bucket when the caller did not use them. Calling it
// again does nothing.
func (r *Reservation) Cancel() {
	l := r.l
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.state {
	case resQueued:
		q := l.queue[r.class]
		if i := slices.Index(q, r); i >= 0 {
			l.queue[r.class] = slices.Delete(q, i, i+1)
		}
	case resGranted:
		l.advanceLocked(l.clock.Now())
		l.tokens = min(l.tokens+r.n*scale, l.burst*scale)
	}
	r.state = resCancelled
	l.dispatchLocked()
}

// refund puts n unused bytes' tokens back in the bucket.
func (l *Limiter) refund(n int64) {
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(l.clock.Now())
	l.tokens = min(l.tokens+n*scale, l.burst*scale)
	l.dispatchLocked()
}

// WaitN blocks until n bytes may pass in class c, or ctx ends. n larger
// than the burst is taken in burst-sized chunks, each queued anew, so a
// large transfer does not hold up smaller ones for long. On error no
// tokens are consumed: chunks already granted go back to the bucket.
func (l *Limiter) WaitN(ctx context.Context, n int64, c Class) error {
	if !l.Limited() || n <= 0 {
		return nil
	}
	var taken int64
	for taken < n {
		step := min(n-taken, l.Burst())
		r, err := l.Reserve(step, c)
		if err != nil {
			l.refund(taken)
			return err
		}
		select {
		case <-r.Ready():
			taken += step
		case <-ctx.Done():
			r.Cancel()
			l.refund(taken)
			return ctx.Err()
		}
	}
	return nil
}

// advanceLocked adds the tokens earned since l.last.
func (l *Limiter) advanceLocked(now time.Time) {
	elapsed := now.Sub(l.last).Nanoseconds()
	if elapsed <= 0 {
		return
	}
	l.last = now
	capacity := l.burst * scale
	if l.rate == 0 {
		l.tokens = capacity
		return
	}
	fill := capacity - l.tokens
	if fill <= 0 {
		return
	}
	if elapsed >= ceilDiv(fill, l.rate) {
		l.tokens = capacity
		return
	}
	l.tokens += l.rate * elapsed // < fill + rate: no overflow
}

// dispatchLocked grants every reservation that can be served now, in
// class then arrival order, and arms the timer for the first that cannot.
func (l *Limiter) dispatchLocked() {
	l.advanceLocked(l.clock.Now())
	for c := Urgent; ; c-- {
		for len(l.queue[c]) > 0 {
			r := l.queue[c][0]
			need := min(r.n, l.burst) * scale
			if l.rate != 0 && l.tokens < need {
				l.armLocked(time.Duration(ceilDiv(need-l.tokens, l.rate)))
				return
			}
			if l.rate != 0 {
				l.tokens -= r.n * scale
			}
			l.queue[c][0] = nil
			l.queue[c] = l.queue[c][1:]
			r.state = resGranted
			close(r.ready)
		}
		if c == Normal {
			break
		}
	}
	l.stopTimerLocked()
}

func (l *Limiter) armLocked(d time.Duration) {
	l.stopTimerLocked()
	gen := l.timerGen
	l.timer = l.clock.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.timerGen != gen {
			return // stopped or replaced after it fired
		}
		l.timer = nil
		l.dispatchLocked()
	})
}

func (l *Limiter) stopTimerLocked() {
	l.timerGen++
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
