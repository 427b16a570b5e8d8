package utp

import (
	"sync"
	"time"
)

// deadline is a settable point in time whose channel is closed once it
// passes, for selects in Read, Write and ReadFrom.
type deadline struct {
	mu    sync.Mutex // guards the fields below
	timer *time.Timer
	ch    chan struct{} // closed when the deadline passes
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

// set arms the deadline for t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait for its close, then renew
	}
	d.timer = nil
	if expired(d.ch) {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	close(d.ch)
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
