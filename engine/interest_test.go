package engine

import (
	"testing"
	"time"
)

// TestInterestLingers: interest in a peer outlives the last want by
// interestLinger (a peer told we are not interested chokes us, and the
// next reader would wait for its unchoke), but not a complete torrent.
func TestInterestLingers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                 string
		interested, complete bool
		since                time.Duration
		want                 bool
	}{
		{"just now", true, false, time.Second, true},
		{"expired", true, false, interestLinger, false},
		{"complete", true, true, time.Second, false},
		{"never interested", false, false, time.Second, false},
	} {
		if got := keepInterest(c.interested, c.complete, t0, t0.Add(c.since)); got != c.want {
			t.Errorf("%s: keepInterest %v, want %v", c.name, got, c.want)
		}
	}
}
