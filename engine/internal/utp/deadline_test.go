package utp

import (
	"testing"
	"time"
)

func passed(d *deadline) bool { return expired(d.wait()) }

// TestDeadlineMovedLaterAndEarlier moves a deadline later many times (the
// timer stays armed for the first one and sleeps again), then earlier,
// then clears it, and checks when its channel closes.
func TestDeadlineMovedLaterAndEarlier(t *testing.T) {
	var d deadline
	d.init()
	defer d.stop()
	start := time.Now()
	for i := range 100 {
		d.set(start.Add(20*time.Millisecond + time.Duration(i)*time.Millisecond))
	}
	d.mu.Lock()
	first := d.armed
	d.mu.Unlock()
	if !first.Equal(start.Add(20 * time.Millisecond)) {
		t.Fatalf("timer armed for %v, want the first deadline", first.Sub(start))
	}
	select {
	case <-d.wait():
	case <-time.After(10 * time.Second):
		t.Fatal("deadline never passed")
	}
	if el := time.Since(start); el < 119*time.Millisecond {
		t.Fatalf("deadline passed after %v, before the last one set", el)
	}
	// A passed deadline set again in the future is open again.
	d.set(time.Now().Add(time.Hour))
	if passed(&d) {
		t.Fatal("deadline an hour away has passed")
	}
	// Earlier: the timer is brought forward.
	d.set(time.Now().Add(10 * time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(10 * time.Second):
		t.Fatal("earlier deadline never passed")
	}
	// Cleared: an armed timer fires and leaves the channel open.
	d.set(time.Now().Add(10 * time.Millisecond))
	d.set(time.Time{})
	ch := d.wait()
	time.Sleep(50 * time.Millisecond)
	if expired(ch) {
		t.Fatal("cleared deadline passed")
	}
	// In the past: passed at once.
	d.set(time.Now().Add(-time.Second))
	if !passed(&d) {
		t.Fatal("past deadline not passed")
	}
}
