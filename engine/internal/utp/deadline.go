package utp

import (
	"sync"
	"time"
)

// deadline is a settable point in time whose channel is closed once it
// passes, for selects in Read, Write and ReadFrom. It keeps one timer for
// its life: moving the deadline later (as a caller that sets it before
// every read does) leaves the timer alone, and the timer, when it fires
// early, sleeps again until the deadline.
type deadline struct {
	mu     sync.Mutex // guards the fields below
	at     time.Time  // the deadline; zero for none
	timer  *time.Timer
	armed  time.Time     // when the timer fires; zero when it is stopped or fired
	ch     chan struct{} // closed when the deadline passes
	passed bool          // ch is closed
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

// set arms the deadline for t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.passed {
		d.ch, d.passed = make(chan struct{}), false
	}
	d.at = t
	if t.IsZero() {
		return // a timer still armed finds no deadline when it fires
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		d.passed = true
		return
	}
	if !d.armed.IsZero() && !d.armed.After(t) {
		return // the timer fires first and sleeps again until t
	}
	d.armed = t
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
		return
	}
	d.timer.Reset(dur)
}

// fire runs when the timer does: it closes the channel if the deadline
// passed, or sleeps again until it.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = time.Time{}
	if d.at.IsZero() || d.passed {
		return
	}
	if dur := time.Until(d.at); dur > 0 {
		d.armed = d.at
		d.timer.Reset(dur)
		return
	}
	close(d.ch)
	d.passed = true
}

// stop stops the timer, for a connection that ended (set starts it again).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.armed = time.Time{}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
