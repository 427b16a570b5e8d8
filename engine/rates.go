package engine

import (
	"sync/atomic"
	"time"
)

// byteCounters count a torrent's payload bytes since it was added. Peers'
// goroutines add to them and Stats reads them, without the loop.
type byteCounters struct {
	down, up atomic.Int64
}

// tally counts what a torrent went through since it was added, for Stats
// (and so /metrics). Used from the loop goroutine only.
type tally struct {
	hashFailed   int64 // pieces that failed their hash check (from peers or web seeds)
	evictedBytes int64 // verified bytes the cache evicted
}

// rates holds the torrent's recent payload rates, the sum of its peers'
// rates, updated by the loop once a second. Used from the loop goroutine
// only.
type rates struct {
	down, up float64 // bytes per second
	lastTick time.Time
}

// interval returns the seconds since the last tick (1 when the clock did
// not move) and starts the next interval.
func (r *rates) interval(now time.Time) float64 {
	dt := now.Sub(r.lastTick).Seconds()
	r.lastTick = now
	if dt <= 0 {
		dt = 1
	}
	return dt
}

// rate is one direction's recent rate of a peer, in bytes per second.
type rate struct {
	last  int64 // the byte counter at the last update
	value float64
}

// update folds the bytes counted since the last update into the rate.
func (r *rate) update(total int64, dt float64) float64 {
	r.value = ewma(r.value, float64(total-r.last)/dt)
	r.last = total
	return r.value
}

func ewma(old, sample float64) float64 {
	if old == 0 {
		return sample
	}
	return 0.6*old + 0.4*sample
}
