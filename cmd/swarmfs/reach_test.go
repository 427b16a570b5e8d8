package main

import (
	"testing"

	"github.com/swarmfs/swarmfs/engine"
)

func TestReachText(t *testing.T) {
	for _, tc := range []struct {
		r    engine.Reach
		want string
	}{
		{engine.Reach{}, ""},
		{engine.Reach{
			Sources:    map[engine.PeerSource]int{engine.SourceTracker: 2, engine.SourceLSD: 1, engine.SourceDHT: 1, engine.SourcePex: 0},
			Transports: map[engine.Transport]int{engine.TransportUTP: 3, engine.TransportTCP: 1},
		}, "tracker 2, dht 1, lsd 1; utp 3, tcp 1"},
		{engine.Reach{
			Sources:    map[engine.PeerSource]int{engine.SourceHolepunch: 1},
			Transports: map[engine.Transport]int{engine.TransportUTP: 1},
			Punched:    1,
		}, "holepunch 1; utp 1; punched 1"},
	} {
		if got := reachText(tc.r); got != tc.want {
			t.Errorf("reachText(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}
