package engine

import (
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// simLink feeds a pipeEst from a simulated peer with a round trip rtt and a
// bandwidth of bw bytes/s, keeping depth(0) requests outstanding (no
// smoothed rate: the depth comes from the blocks alone). It returns the
// bytes delivered in the last quarter of the run and the final depth.
func simLink(rtt time.Duration, bw float64, run time.Duration) (float64, int) {
	var e pipeEst
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	perBlock := time.Duration(wire.BlockSize / bw * float64(time.Second))
	type req struct{ sent, due time.Time }
	var queue []req
	lastDue := t0
	send := func(now time.Time) {
		for len(queue) < e.depth(0) {
			due := now.Add(rtt)
			if next := lastDue.Add(perBlock); next.After(due) {
				due = next
			}
			lastDue = due
			queue = append(queue, req{now, due})
		}
	}
	send(t0)
	var late float64
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if r.due.Sub(t0) > run {
			break
		}
		e.block(r.due, r.sent, wire.BlockSize)
		if r.due.Sub(t0) > run*3/4 {
			late += wire.BlockSize
		}
		send(r.due)
	}
	return late / (run / 4).Seconds(), e.depth(0)
}

// TestPipelineStartsFromBDP: a peer 80 ms away delivering 3 MB/s is used
// at its bandwidth within a second of its first blocks, with no smoothed
// rate yet; a fixed starting depth of minPipeline would carry
// minPipeline blocks per round trip (800 kB/s). Before any rate is known
// the depth is initialPipeline, not minPipeline: the first piece a read
// waits on is asked of several peers in the first round trip.
func TestPipelineStartsFromBDP(t *testing.T) {
	var e pipeEst
	if d := e.depth(0); d != initialPipeline {
		t.Fatalf("depth before any block %d, want %d", d, initialPipeline)
	}
	for _, c := range []struct {
		rtt time.Duration
		bw  float64
	}{{80 * time.Millisecond, 3e6}, {200 * time.Millisecond, 3e6}, {20 * time.Millisecond, 12e6}} {
		rate, depth := simLink(c.rtt, c.bw, time.Second+10*c.rtt)
		if rate < 0.9*c.bw {
			t.Errorf("rtt %v bw %.0f: %.0f B/s at the end, depth %d", c.rtt, c.bw, rate, depth)
		}
		if bdp := c.bw * c.rtt.Seconds() / wire.BlockSize; float64(depth) > 4*bdp+minPipeline+1 || depth > maxPipeline {
			t.Errorf("rtt %v bw %.0f: depth %d, bdp %.1f blocks", c.rtt, c.bw, depth, bdp)
		}
	}
}

// TestDupAfterFromRTTAndRate: the duplicate timeout is the least
// request-to-block time plus one block at the peer's rate (none without a
// rate), clamped, and each block queued before adds one block at
// that rate; unknown before the first block.
func TestDupAfterFromRTTAndRate(t *testing.T) {
	var e pipeEst
	if d := e.dupAfter(1e6); d != 0 {
		t.Fatalf("dupAfter before any block %v, want 0", d)
	}
	if q := e.queueTime(0); q != 0 {
		t.Fatalf("queueTime without a rate %v, want 0", q)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.block(t0.Add(80*time.Millisecond), t0, wire.BlockSize)
	if d := e.dupAfter(0); d != 80*time.Millisecond {
		t.Fatalf("dupAfter without a rate %v, want the round trip", d)
	}
	// One block at 3 MB/s: 5.46 ms behind an 80 ms round trip.
	rate := 3e6
	block := time.Duration(float64(wire.BlockSize) / rate * float64(time.Second))
	if d := e.dupAfter(3e6); d != 80*time.Millisecond+block {
		t.Fatalf("dupAfter %v, want %v", d, 80*time.Millisecond+block)
	}
	if q := e.queueTime(3e6); q != block {
		t.Fatalf("queueTime %v, want %v", q, block)
	}
	if d := e.dupAfter(5e3); d != maxDupAfter {
		t.Fatalf("slow peer: dupAfter %v, want the cap %v", d, maxDupAfter)
	}
	var near pipeEst
	near.block(t0.Add(time.Millisecond), t0, wire.BlockSize)
	if d := near.dupAfter(100e6); d != minDupAfter {
		t.Fatalf("near fast peer: dupAfter %v, want the floor %v", d, minDupAfter)
	}
}

// TestLateTimer: the late timer fires at the time it is set for, only
// once, is re-armed for a new time and stops for the zero time.
func TestLateTimer(t *testing.T) {
	var lt lateTimer
	if lt.C() != nil {
		t.Fatal("an unset timer has a channel")
	}
	now := time.Now()
	lt.set(now.Add(time.Hour), now)
	lt.set(now.Add(time.Millisecond), now)
	select {
	case <-lt.C():
		lt.fired()
	case <-time.After(10 * time.Second):
		t.Fatal("the timer re-armed for 1 ms did not fire")
	}
	if lt.C() != nil {
		t.Fatal("a fired timer still has a channel")
	}
	lt.set(time.Now().Add(time.Millisecond), time.Now())
	lt.set(time.Time{}, time.Now())
	if lt.C() != nil {
		t.Fatal("a stopped timer has a channel")
	}
	lt.stop()
}

// TestDepthNotCutBeforeRate: until a peer's blocks show a rate over a
// round trip, a tiny smoothed rate (a rate-limited seeder that waited for
// its bandwidth tick) does not cut its depth below initialPipeline; once
// they show one, a slow peer's depth follows its rate.
func TestDepthNotCutBeforeRate(t *testing.T) {
	var e pipeEst
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.block(t0.Add(80*time.Millisecond), t0, wire.BlockSize) // opens the window, no rate yet
	if d := e.depth(10e3); d != initialPipeline {
		t.Fatalf("depth at 10 kB/s before a measured rate %d, want %d", d, initialPipeline)
	}
	e.block(t0.Add(time.Second), t0.Add(100*time.Millisecond), wire.BlockSize) // 16 KiB in 0.92 s
	if d := e.depth(10e3); d >= initialPipeline {
		t.Fatalf("depth of a slow peer with a measured rate %d, want under %d", d, initialPipeline)
	}
}
