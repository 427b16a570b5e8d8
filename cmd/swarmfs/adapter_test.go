package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
)

// TestStatsFeedNeverWaits stands for a torrent loop that stops answering:
// get keeps returning the last snapshot at once; the feed publishes the
// loop's answer when it comes, and asks again at once when the metadata
// arrives (the period here is an hour).
func TestStatsFeedNeverWaits(t *testing.T) {
	var calls atomic.Int64
	wedged := make(chan struct{})
	f := newStatsFeed(func() engine.Stats {
		n := calls.Add(1)
		if n == 2 {
			<-wedged // the loop is busy
		}
		return engine.Stats{State: engine.StateDownloading, Peers: int(n)}
	})
	done, infoReady := make(chan struct{}), make(chan struct{})
	ended := make(chan struct{})
	go func() {
		f.run(done, infoReady, time.Hour)
		close(ended)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("the feed to ask the loop", func() bool { return calls.Load() >= 2 })
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
	waitFor("the loop's answer to be published", func() bool { return f.get().Peers == 2 })
	close(infoReady)
	waitFor("a refresh when the metadata arrived", func() bool { return f.get().Peers == 3 })
	close(done)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end when done closed")
	}
}
