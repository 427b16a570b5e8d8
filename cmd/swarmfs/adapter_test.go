package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
)

// TestStatsFeedNeverWaits stands for a torrent loop that stops answering:
// get keeps returning the last snapshot at once, and the feed publishes
// the next answer when the loop replies, at once when the metadata comes.
func TestStatsFeedNeverWaits(t *testing.T) {
	var calls atomic.Int64
	wedged := make(chan struct{})
	f := newStatsFeed(func() engine.Stats {
		if calls.Add(1) > 1 {
			<-wedged // the loop is busy
		}
		return engine.Stats{State: "downloading", Peers: int(calls.Load())}
	})
	done, infoReady := make(chan struct{}), make(chan struct{})
	ended := make(chan struct{})
	go func() {
		f.run(done, infoReady, time.Hour)
		close(ended)
	}()
	close(infoReady) // the feed asks the loop at once, which does not answer
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the feed did not ask for stats when the metadata arrived")
		}
		time.Sleep(time.Millisecond)
	}
	got := make(chan engine.Stats)
	go func() { got <- f.get() }()
	select {
	case st := <-got:
		if st.Peers != 1 {
			t.Errorf("get = %+v, want the first snapshot", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get waited for the wedged loop")
	}
	close(wedged)
	for f.get().Peers != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the loop's answer was not published")
		}
		time.Sleep(time.Millisecond)
	}
	close(done)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end when done closed")
	}
}
