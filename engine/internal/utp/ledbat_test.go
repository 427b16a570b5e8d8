package utp

import (
	"testing"
	"time"
)

const testMSS = 1000

// ackRound acknowledges a full window in packets of testMSS with the given
// queuing delay and returns the new window.
func ackRound(l *ledbat, base uint32, qd time.Duration, now time.Time) int {
	w := l.window()
	for acked := 0; acked < w; acked += testMSS {
		l.addDelaySample(base+uint32(qd/time.Microsecond), now)
		l.onAck(testMSS, l.window()) // the sender keeps the window full
	}
	return l.window()
}

func TestLedbatSlowStartThenLinear(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLedbat(100*time.Millisecond, 3000, testMSS, 1<<30)
	base := uint32(4000000000) // near the 32-bit wrap
	l.addDelaySample(base, now)
	w0 := l.window()
	if w := ackRound(&l, base, 0, now); w != 2*w0 {
		t.Fatalf("slow start: window %d after a round from %d, want doubling", w, w0)
	}
	// Half the target ends slow start; from then on growth is at most
	// Gain per round trip, proportional to the distance to the target.
	ackRound(&l, base, 60*time.Millisecond, now)
	if l.slow {
		t.Fatal("still in slow start above half the target delay")
	}
	w1 := l.window()
	w2 := ackRound(&l, base, 0, now)
	if d := w2 - w1; d < 2600 || d > 3100 {
		t.Fatalf("window grew by %d in a round with no queuing, want about Gain (3000)", d)
	}
	w3 := ackRound(&l, base, 50*time.Millisecond, now)
	if d := w3 - w2; d < 1300 || d > 2000 {
		t.Fatalf("window grew by %d at half the target, want about 1500", d)
	}
	// Above the target the window shrinks by the excess fraction per round
	// trip, at most half.
	w4 := ackRound(&l, base, 120*time.Millisecond, now)
	if r := float64(w4) / float64(w3); r < 0.75 || r > 0.9 {
		t.Fatalf("window went from %d to %d at 1.2 times the target, want about 20%% less", w3, w4)
	}
	w5 := ackRound(&l, base, 300*time.Millisecond, now)
	if r := float64(w5) / float64(w4); r < 0.4 || r > 0.65 {
		t.Fatalf("window went from %d to %d at 3 times the target, want about half", w4, w5)
	}
}

func TestLedbatAppLimitedDoesNotGrow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLedbat(100*time.Millisecond, 3000, testMSS, 1<<30)
	l.cwnd = 100 * testMSS
	l.addDelaySample(5, now)
	for range 1000 {
		l.onAck(testMSS, 10*testMSS) // a tenth of the window in flight
	}
	if l.window() != 100*testMSS {
		t.Fatalf("window %d grew while application limited", l.window())
	}
}

func TestLedbatLossOncePerWindow(t *testing.T) {
	l := newLedbat(100*time.Millisecond, 3000, testMSS, 1<<30)
	l.cwnd = 64 * testMSS
	l.onLoss(100, 150)
	if l.window() != 32*testMSS {
		t.Fatalf("window %d after a loss, want half", l.window())
	}
	l.onLoss(120, 160) // sent before the cut: same event
	if l.window() != 32*testMSS {
		t.Fatalf("window %d after a second loss of the same window", l.window())
	}
	l.onLoss(150, 170) // sent after the cut: a new event
	if l.window() != 16*testMSS {
		t.Fatalf("window %d after a later loss, want a quarter", l.window())
	}
	l.onTimeout(200)
	if l.window() != l.minWnd || !l.slow {
		t.Fatalf("after a timeout window %d slow %v, want %d in slow start", l.window(), l.slow, l.minWnd)
	}
	for range 20 {
		l.onLoss(250, 300)
	}
	if l.window() < l.minWnd {
		t.Fatalf("window %d below the minimum", l.window())
	}
}

func TestBaseDelayHistory(t *testing.T) {
	var b baseDelay
	now := time.Unix(0, 0)
	if _, ok := b.min(); ok {
		t.Fatal("base delay before any sample")
	}
	// Values across the 32-bit wrap: 0xfffffff0 is smaller than 0x10.
	b.add(0x10, now)
	b.add(0xfffffff0, now.Add(time.Second))
	if m, _ := b.min(); m != 0xfffffff0 {
		t.Fatalf("min %#x, want 0xfffffff0", m)
	}
	// The minimum is forgotten after baseHistory minutes.
	for i := 1; i <= baseHistory; i++ {
		b.add(0x20, now.Add(time.Duration(i)*time.Minute+time.Second))
	}
	if m, _ := b.min(); m != 0x20 {
		t.Fatalf("min %#x after %d minutes, want 0x20", m, baseHistory)
	}
}

func TestRTTEstimator(t *testing.T) {
	r := newRTT(time.Second, 500*time.Millisecond, 30*time.Second)
	r.sample(10 * time.Millisecond)
	if r.rto != 500*time.Millisecond {
		t.Fatalf("rto %v, want the minimum", r.rto)
	}
	for range 20 {
		r.sample(time.Second)
	}
	if r.rto < time.Second || r.rto > 3*time.Second {
		t.Fatalf("rto %v for a steady 1 s round trip", r.rto)
	}
	for range 10 {
		r.backoff()
	}
	if r.rto != 30*time.Second {
		t.Fatalf("rto %v after backoff, want the 30 s cap", r.rto)
	}
}
