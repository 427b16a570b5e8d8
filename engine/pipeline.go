package engine

import (
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// Bounds of a peer's duplicate timeout (see pipeEst.dupAfter).
const (
	minDupAfter = 50 * time.Millisecond
	maxDupAfter = 2 * time.Second
)

// pipeEst estimates, from the blocks a peer sends, its round trip and the
// rate it delivers at, so that its request pipeline starts from the
// bandwidth-delay product its first blocks show and its blocks are
// duplicated elsewhere only once they are late for that peer. Used by the
// loop goroutine only; it never reads the clock.
//
// The round trip is the least time from a request's send to its block (a
// round trip plus one block's transfer). The rate is sampled over windows
// of at least one round trip, so while the pipeline is what limits the
// rate, each window shows what the last depth carried, and a depth of twice
// that product doubles the pipeline every round trip until the peer's
// bandwidth, not our depth, limits the rate (TCP's slow start, in
// requests).
type pipeEst struct {
	rtt   time.Duration // least request-to-block time seen; 0 until a block came
	winAt time.Time     // start of the current rate window
	winB  int64         // bytes received in the current window
	rate  float64       // bytes/s over the last whole window; 0 until one ended
}

// block records a block of n bytes received at now for a request sent at
// sent (zero when the block answers a send superseded since: its send time
// is unknown).
func (e *pipeEst) block(now, sent time.Time, n int) {
	if !sent.IsZero() {
		if lat := now.Sub(sent); lat > 0 && (e.rtt == 0 || lat < e.rtt) {
			e.rtt = lat
		}
	}
	if e.winAt.IsZero() {
		// The first block opens the window: the bytes of the window are
		// those that arrive after it.
		e.winAt = now
		return
	}
	e.winB += int64(n)
	if el := now.Sub(e.winAt); e.rtt > 0 && el >= e.rtt {
		e.rate = float64(e.winB) / el.Seconds()
		e.winAt, e.winB = now, 0
	}
}

// initialPipeline is the depth at a peer before any rate is known: a
// quarter of a 1 MiB piece, so that the first piece a read waits on
// right after connecting is asked of four peers at once in one round
// trip, and a peer 80 ms away at 3 MB/s (a bandwidth-delay product of 15
// blocks) is kept busy from its first round trip.
const initialPipeline = 16

// depth returns how many requests to keep outstanding at the peer: the
// larger of about one second of data at its smoothed rate (longRate, the
// rate the loop measures per tick) and twice the bandwidth-delay product
// its recent blocks show, plus minPipeline, within [minPipeline,
// maxPipeline]; at least initialPipeline while its blocks have not shown
// a rate over a round trip yet. A rate-limited seeder that sends nothing
// until its next bandwidth tick (a fresh libtorrent seeder: 0.5 s) makes
// the loop's first smoothed rate tiny, and a depth cut to minPipeline on
// it would drain its queue, so that it stops building up quota.
func (e *pipeEst) depth(longRate float64) int {
	d := int(longRate / wire.BlockSize)
	if e.rate > 0 && e.rtt > 0 {
		d = max(d, int(2*e.rate*e.rtt.Seconds()/wire.BlockSize))
	}
	d = min(d+minPipeline, maxPipeline)
	if e.rate == 0 {
		d = max(d, initialPipeline)
	}
	return d
}

// dupAfter returns how long a block of a piece a read waits on may be
// outstanding at the peer, when it was requested with none queued before
// it, before it is late there: the least request-to-block time seen (a
// round trip and one block's transfer) plus one more block's transfer at
// the peer's rate (none while the rate is not known), within
// [minDupAfter, maxDupAfter]; the blocks queued before it add queueTime
// each. Zero means not known yet (no block came). A rate-limited seeder
// that has spent its quota sends nothing until its next bandwidth tick
// (libtorrent: every 0.5 s), and a peer done with its share then takes
// over the blocks it sits on as soon as they are late.
func (e *pipeEst) dupAfter(longRate float64) time.Duration {
	if e.rtt == 0 {
		return 0
	}
	return min(max(e.rtt+e.queueTime(longRate), minDupAfter), maxDupAfter)
}

// queueTime returns how long the peer takes to send one block: at its
// smoothed rate (longRate), or before the loop has one at the rate its
// recent blocks show; 0 while neither is known.
func (e *pipeEst) queueTime(longRate float64) time.Duration {
	r := longRate
	if r <= 0 {
		r = e.rate
	}
	if r <= 0 {
		return 0
	}
	return time.Duration(float64(wire.BlockSize) / r * float64(time.Second))
}

// lateTimer wakes the loop when the next block of a piece a read waits on
// becomes late at the peers holding it (picker.NextLate), so that a peer
// done with its share takes it over at once, not at its next block or the
// loop's next tick. Used by the loop goroutine only.
type lateTimer struct {
	t  *time.Timer
	at time.Time // when t fires; zero while it is stopped
}

// C returns the channel the timer fires on; nil (never ready) while it is
// stopped.
func (lt *lateTimer) C() <-chan time.Time {
	if lt.at.IsZero() {
		return nil
	}
	return lt.t.C
}

// set arms the timer for at, or stops it for the zero time.
func (lt *lateTimer) set(at, now time.Time) {
	if at.Equal(lt.at) {
		return
	}
	lt.stop()
	if at.IsZero() {
		return
	}
	if lt.t == nil {
		lt.t = time.NewTimer(at.Sub(now))
	} else {
		lt.t.Reset(at.Sub(now))
	}
	lt.at = at
}

// fired records that the timer's channel delivered.
func (lt *lateTimer) fired() { lt.at = time.Time{} }

// stop stops the timer.
func (lt *lateTimer) stop() {
	if lt.t != nil {
		lt.t.Stop()
	}
	lt.at = time.Time{}
}
