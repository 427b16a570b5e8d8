package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// newFake returns a limiter on a fake clock that starts at the real time
// (so deadlines passed on to real connections are sane).
func newFake(t *testing.T, rate, burst int64) (*Limiter, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(time.Now())
	l, err := New(Config{Rate: rate, Burst: burst, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

func reserve(t *testing.T, l *Limiter, n int64, c Class) *Reservation {
	t.Helper()
	r, err := l.Reserve(n, c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func isReady(r *Reservation) bool {
	select {
	case <-r.Ready():
		return true
	default:
		return false
	}
}

// eventually waits (in real time, bounded) until cond holds; it is for
// handing over to goroutines, never for measuring time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestBurstThenRate(t *testing.T) {
	l, clk := newFake(t, 1000, 500)
	if r := reserve(t, l, 500, Normal); !isReady(r) {
		t.Fatal("a full bucket did not grant its burst at once")
	}
	r := reserve(t, l, 100, Normal)
	if isReady(r) {
		t.Fatal("granted from an empty bucket")
	}
	clk.Advance(99 * time.Millisecond)
	if isReady(r) {
		t.Fatal("granted 100 B after 99 ms at 1000 B/s")
	}
	clk.Advance(time.Millisecond)
	if !isReady(r) {
		t.Fatal("not granted 100 B after 100 ms at 1000 B/s")
	}
	if clk.Pending() != 0 || l.Waiting() != 0 {
		t.Errorf("after the last grant: %d timers, %d waiting", clk.Pending(), l.Waiting())
	}
}

func TestUrgentBeforeNormalAndFIFO(t *testing.T) {
	l, clk := newFake(t, 1000, 100)
	reserve(t, l, 100, Normal) // empties the bucket
	n1 := reserve(t, l, 100, Normal)
	n2 := reserve(t, l, 10, Normal) // small, but queued behind n1
	u1 := reserve(t, l, 100, Urgent)
	u2 := reserve(t, l, 50, Urgent)
	step := func(d time.Duration, want ...bool) {
		t.Helper()
		clk.Advance(d)
		got := []bool{u1.ready != nil && isReady(u1), isReady(u2), isReady(n1), isReady(n2)}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("after %v: ready u1,u2,n1,n2 = %v, want %v", d, got, want)
			}
		}
	}
	step(0, false, false, false, false)
	step(100*time.Millisecond, true, false, false, false)
	step(50*time.Millisecond, true, true, false, false)
	step(99*time.Millisecond, true, true, false, false)
	step(time.Millisecond, true, true, true, false)
	step(10*time.Millisecond, true, true, true, true)
}

func TestSetRate(t *testing.T) {
	l, clk := newFake(t, 100, 100)
	reserve(t, l, 100, Normal)
	r := reserve(t, l, 100, Normal) // 1 s at 100 B/s
	clk.Advance(500 * time.Millisecond)
	if isReady(r) {
		t.Fatal("granted early")
	}
	// 50 B earned so far are kept; the other 50 take 50 ms at 1000 B/s.
	if err := l.SetRate(1000); err != nil {
		t.Fatal(err)
	}
	clk.Advance(49 * time.Millisecond)
	if isReady(r) {
		t.Fatal("granted before the new rate earned the rest")
	}
	clk.Advance(time.Millisecond)
	if !isReady(r) {
		t.Fatal("not re-timed for the higher rate")
	}
	a, b := reserve(t, l, 100, Normal), reserve(t, l, 100, Urgent)
	if err := l.SetRate(0); err != nil {
		t.Fatal(err)
	}
	if !isReady(a) || !isReady(b) || l.Limited() {
		t.Fatal("unlimited rate did not release the queue")
	}
	if err := l.SetRate(1000); err != nil {
		t.Fatal(err)
	}
	if !isReady(reserve(t, l, 100, Normal)) {
		t.Fatal("the bucket was not full after an unlimited spell")
	}
	if err := l.SetRate(-1); !errors.Is(err, ErrRate) {
		t.Errorf("SetRate(-1) = %v", err)
	}

	d, _ := newFake(t, 8<<20, 0)
	if d.Burst() != 1<<20 {
		t.Errorf("derived burst at 8 MiB/s = %d, want 1 MiB", d.Burst())
	}
	_ = d.SetRate(1000)
	if d.Burst() != minBurst {
		t.Errorf("derived burst at 1000 B/s = %d, want %d", d.Burst(), minBurst)
	}
}

func TestCancel(t *testing.T) {
	l, clk := newFake(t, 1000, 100)
	reserve(t, l, 100, Normal)
	big := reserve(t, l, 100, Urgent)
	small := reserve(t, l, 10, Normal)
	clk.Advance(10 * time.Millisecond)
	if isReady(small) {
		t.Fatal("normal served while an urgent waiter waits")
	}
	big.Cancel()
	if !isReady(small) {
		t.Fatal("cancelling the head did not serve the next waiter")
	}
	if l.Waiting() != 0 {
		t.Fatalf("%d still waiting", l.Waiting())
	}
	// A granted reservation cancelled puts its tokens back.
	clk.Advance(time.Second)
	g := reserve(t, l, 100, Normal)
	g.Cancel()
	g.Cancel()
	if !isReady(reserve(t, l, 100, Normal)) {
		t.Fatal("cancelled grant's tokens were not returned")
	}
	if _, err := l.Reserve(MaxReserve+1, Normal); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge Reserve: %v", err)
	}
}

func TestAboveBurstWaitsForFullBucket(t *testing.T) {
	l, clk := newFake(t, 1000, 100)
	r := reserve(t, l, 300, Normal) // full bucket: granted, 200 B in debt
	if !isReady(r) {
		t.Fatal("n above the burst not granted from a full bucket")
	}
	next := reserve(t, l, 100, Normal)
	clk.Advance(299 * time.Millisecond)
	if isReady(next) {
		t.Fatal("the debt was not paid first")
	}
	clk.Advance(time.Millisecond)
	if !isReady(next) {
		t.Fatal("not granted once the debt was paid")
	}
}

func TestWaitNSplitsLargeN(t *testing.T) {
	l, clk := newFake(t, 1000, 100)
	done := make(chan error, 1)
	go func() { done <- l.WaitN(context.Background(), 1000, Normal) }()
	steps := 0
	for finished := false; !finished; {
		eventually(t, "the next chunk to queue", func() bool {
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("WaitN: %v", err)
				}
				finished = true
				return true
			default:
				return l.Waiting() == 1
			}
		})
		if !finished {
			clk.Advance(100 * time.Millisecond)
			steps++
		}
	}
	if steps != 9 {
		t.Errorf("1000 B at 1000 B/s with a 100 B burst took %d steps of 100 ms, want 9", steps)
	}

	// Cancelled half-way: the chunks taken go back.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- l.WaitN(ctx, 1000, Normal) }()
	eventually(t, "the first chunk to queue", func() bool { return l.Waiting() == 1 })
	clk.Advance(100 * time.Millisecond)
	eventually(t, "the second chunk to queue", func() bool { return l.Waiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled WaitN: %v", err)
	}
	if !isReady(reserve(t, l, 100, Normal)) {
		t.Error("tokens of the cancelled WaitN's granted chunk were lost")
	}
}

func TestNilAndUnlimited(t *testing.T) {
	var l *Limiter
	if l.Limited() || l.WaitN(context.Background(), 1<<40, Urgent) != nil || !isReady(reserve(t, l, 5, Normal)) {
		t.Fatal("a nil limiter limits")
	}
	u, _ := newFake(t, 0, 0)
	if !isReady(reserve(t, u, MaxReserve, Normal)) {
		t.Fatal("an unlimited limiter made a reservation wait")
	}
	if _, err := New(Config{Rate: MaxRate + 1}); !errors.Is(err, ErrRate) {
		t.Errorf("New above MaxRate: %v", err)
	}
}

// TestRandomSchedules runs random reservations, cancellations and clock
// steps, and checks that grants never exceed burst + rate*time, that each
// class is served in order, and that everything is served in the end.
func TestRandomSchedules(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		rate := 1 + rng.Int64N(5000)
		burst := 1 + rng.Int64N(2000)
		l, clk := newFake(t, rate, burst)
		start := clk.Now()
		type res struct {
			r         *Reservation
			cancelled bool
			granted   bool
		}
		var all [numClasses][]*res
		var granted int64
		check := func() {
			for c := range all {
				seenWaiting := false
				for _, x := range all[c] {
					if x.cancelled {
						continue
					}
					ready := isReady(x.r)
					if ready && seenWaiting {
						t.Fatalf("seed %d: class %v served out of order", seed, Class(c))
					}
					if !ready {
						seenWaiting = true
					}
					if ready && !x.granted {
						x.granted = true
						granted += x.r.n
					}
				}
			}
			elapsed := clk.Now().Sub(start)
			if limit := burst + int64(float64(rate)*elapsed.Seconds()) + 1; granted > limit {
				t.Fatalf("seed %d: granted %d B in %v at %d B/s burst %d (limit %d)", seed, granted, elapsed, rate, burst, limit)
			}
		}
		for range 300 {
			switch op := rng.IntN(10); {
			case op < 5:
				c := Class(rng.IntN(2))
				all[c] = append(all[c], &res{r: reserve(t, l, 1+rng.Int64N(burst), c)})
			case op < 6:
				c := rng.IntN(2)
				if len(all[c]) > 0 {
					x := all[c][rng.IntN(len(all[c]))]
					if !isReady(x.r) {
						x.r.Cancel()
						x.cancelled = true
					}
				}
			default:
				clk.Advance(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
			}
			check()
		}
		// Each step earns a full burst, enough for the head waiter.
		fill := time.Duration(ceilDiv(burst*scale, rate))
		queued := l.Waiting()
		for i := 0; l.Waiting() > 0; i++ {
			if i >= queued {
				t.Fatalf("seed %d: %d reservations never served (rate %d, burst %d)", seed, l.Waiting(), rate, burst)
			}
			clk.Advance(fill)
		}
		check()
		if clk.Pending() != 0 {
			t.Fatalf("seed %d: %d timers left armed with nothing queued", seed, clk.Pending())
		}
	}
}
