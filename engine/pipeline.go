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
// maxPipeline]; initialPipeline while neither rate is known.
func (e *pipeEst) depth(longRate float64) int {
	if e.rate == 0 && longRate == 0 {
		return initialPipeline
	}
	d := int(longRate / wire.BlockSize)
	if e.rate > 0 && e.rtt > 0 {
		d = max(d, int(2*e.rate*e.rtt.Seconds()/wire.BlockSize))
	}
	return min(d+minPipeline, maxPipeline)
}

// dupAfter returns how long a block of a piece a read waits on may be
// outstanding at the peer before it is late there: twice the time the peer
// takes to answer a request and send minPipeline blocks, at its round trip
// and rate; within [minDupAfter, maxDupAfter]. Zero means not known yet
// (no block came). The blocks queued before it at the peer are left out on
// purpose: a read is waiting, and a duplicate at a peer with a shorter
// queue is worth the bytes it may waste.
func (e *pipeEst) dupAfter(longRate float64) time.Duration {
	if e.rtt == 0 {
		return 0
	}
	exp := e.rtt
	if r := max(e.rate, longRate); r > 0 {
		exp += time.Duration(float64(minPipeline*wire.BlockSize) / r * float64(time.Second))
	}
	return min(max(2*exp, minDupAfter), maxDupAfter)
}
