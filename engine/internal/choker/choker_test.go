package choker

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newChoker(slots int) *Choker {
	return New(Config{Slots: slots}, rand.New(rand.NewPCG(1, 1)))
}

func TestDefaults(t *testing.T) {
	c := New(Config{}, nil)
	cfg := c.Config()
	if cfg.Slots != 4 || cfg.OptimisticInterval != 30*time.Second || cfg.RechokeInterval != 10*time.Second {
		t.Fatalf("defaults %+v", cfg)
	}
	if !c.Due(t0) {
		t.Fatal("not due before the first rechoke")
	}
	c.Rechoke(t0, nil, false)
	if c.Due(t0.Add(9*time.Second)) || !c.Due(t0.Add(10*time.Second)) {
		t.Fatal("Due does not follow RechokeInterval")
	}
}

func TestRechoke(t *testing.T) {
	tests := []struct {
		name    string
		slots   int
		seeding bool
		peers   []Peer
		regular []int // expected regular slots, in order
		optFrom []int // the optimistic peer must be one of these (nil: none)
		extra   []int // uninterested fast peers also unchoked
	}{
		{
			name:  "tit for tat picks fastest uploaders",
			slots: 3,
			peers: []Peer{
				{ID: 1, Interested: true, DownRate: 100},
				{ID: 2, Interested: true, DownRate: 500},
				{ID: 3, Interested: true, DownRate: 300},
				{ID: 4, Interested: true, DownRate: 50},
				{ID: 5, Interested: true, DownRate: 0},
			},
			regular: []int{2, 3},
			optFrom: []int{1, 4, 5},
		},
		{
			name:  "uninterested peers get no regular slot",
			slots: 3,
			peers: []Peer{
				{ID: 1, Interested: false, DownRate: 10},
				{ID: 2, Interested: true, DownRate: 5},
				{ID: 3, Interested: true, DownRate: 1},
				{ID: 4, Interested: true, DownRate: 0},
			},
			regular: []int{2, 3},
			optFrom: []int{4},
			extra:   []int{1}, // faster than the slowest regular peer
		},
		{
			name:  "snubbed peers only get the optimistic slot",
			slots: 3,
			peers: []Peer{
				{ID: 1, Interested: true, Snubbed: true, DownRate: 1000},
				{ID: 2, Interested: true, DownRate: 5},
			},
			regular: []int{2},
			optFrom: []int{1},
		},
		{
			name:    "seeding ranks by upload rate",
			slots:   3,
			seeding: true,
			peers: []Peer{
				{ID: 1, Interested: true, DownRate: 1000, UpRate: 1},
				{ID: 2, Interested: true, UpRate: 700},
				{ID: 3, Interested: true, UpRate: 900},
				{ID: 4, Interested: false, UpRate: 5000},
			},
			regular: []int{3, 2},
			optFrom: []int{1},
		},
		{
			name:  "ties keep unchoked peers",
			slots: 2,
			peers: []Peer{
				{ID: 1, Interested: true, Choked: true},
				{ID: 2, Interested: true, Choked: false},
				{ID: 3, Interested: true, Choked: true},
			},
			regular: []int{2},
			optFrom: []int{1, 3},
		},
		{
			name:    "no interested peer",
			slots:   4,
			peers:   []Peer{{ID: 1}, {ID: 2}},
			regular: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChoker(tc.slots)
			got := c.Rechoke(t0, tc.peers, tc.seeding)
			n := len(tc.regular)
			if len(got) < n || !slices.Equal(got[:n], tc.regular) {
				t.Fatalf("unchoked %v, want regular %v first", got, tc.regular)
			}
			rest := got[n:]
			if len(rest) < len(tc.extra) || !slices.Equal(rest[:len(tc.extra)], tc.extra) {
				t.Fatalf("unchoked %v, want extra %v", got, tc.extra)
			}
			rest = rest[len(tc.extra):]
			opt, ok := c.Optimistic()
			switch {
			case tc.optFrom == nil && (ok || len(rest) != 0):
				t.Fatalf("unexpected optimistic unchoke in %v", got)
			case tc.optFrom != nil && (!ok || len(rest) != 1 || rest[0] != opt || !slices.Contains(tc.optFrom, opt)):
				t.Fatalf("unchoked %v, optimistic %d %v, want one of %v", got, opt, ok, tc.optFrom)
			}
		})
	}
}

func TestOptimisticRotation(t *testing.T) {
	peers := []Peer{
		{ID: 1, Interested: true, DownRate: 100},
		{ID: 2, Interested: true},
		{ID: 3, Interested: true},
		{ID: 4, Interested: true},
		{ID: 5, Interested: true},
	}
	c := newChoker(2)
	c.Rechoke(t0, peers, false)
	first, _ := c.Optimistic()
	// Kept across rechokes within the interval.
	for s := 10; s < 30; s += 10 {
		c.Rechoke(t0.Add(time.Duration(s)*time.Second), peers, false)
		if o, _ := c.Optimistic(); o != first {
			t.Fatalf("optimistic changed from %d to %d after %ds", first, o, s)
		}
	}
	// Rotated once the interval is over, to a different peer.
	got := c.Rechoke(t0.Add(30*time.Second), peers, false)
	second, _ := c.Optimistic()
	if second == first || second == 1 || got[len(got)-1] != second {
		t.Fatalf("after 30s optimistic %d (was %d), unchoked %v", second, first, got)
	}
	// Replaced at once when it loses interest.
	for i := range peers {
		if peers[i].ID == second {
			peers[i].Interested = false
		}
	}
	c.Rechoke(t0.Add(31*time.Second), peers, false)
	if third, ok := c.Optimistic(); !ok || third == second {
		t.Fatalf("optimistic %d kept after losing interest", third)
	}
}

func TestOptimisticPromotedToRegular(t *testing.T) {
	peers := []Peer{{ID: 1, Interested: true, DownRate: 10}, {ID: 2, Interested: true}}
	c := newChoker(2)
	c.Rechoke(t0, peers, false)
	if o, _ := c.Optimistic(); o != 2 {
		t.Fatalf("optimistic %d, want 2", o)
	}
	// Peer 2 now uploads fastest and takes the regular slot.
	peers[1].DownRate = 1000
	got := c.Rechoke(t0.Add(10*time.Second), peers, false)
	if o, _ := c.Optimistic(); !slices.Equal(got, []int{2, 1}) || o != 1 {
		t.Fatalf("unchoked %v optimistic %d, want [2 1] with 1 optimistic", got, o)
	}
}

func TestNewPeersFavoured(t *testing.T) {
	const rounds = 3000
	var peers []Peer
	for id := range 10 {
		p := Peer{ID: id, Interested: true, Connected: t0.Add(-time.Hour)}
		if id == 9 {
			p.Connected = t0.Add(-10 * time.Second)
		}
		peers = append(peers, p)
	}
	c := New(Config{Slots: 1}, rand.New(rand.NewPCG(7, 7)))
	newCount := 0
	for r := range rounds {
		c.Rechoke(t0.Add(time.Duration(r)*31*time.Second), peers, false)
		if o, _ := c.Optimistic(); o == 9 {
			newCount++
		}
		// Keep peer 9 new relative to each round.
		peers[9].Connected = t0.Add(time.Duration(r+1)*31*time.Second - 10*time.Second)
	}
	// Weight 3 against 9 old peers of weight 1 gives 3/12 = 25%, minus the
	// rounds where 9 was the previous optimistic and may not repeat.
	frac := float64(newCount) / rounds
	if frac < 0.17 || frac > 0.30 {
		t.Fatalf("new peer optimistic %.3f of rounds, want about 0.2-0.25", frac)
	}
}

func TestDeterministic(t *testing.T) {
	peers := make([]Peer, 20)
	for i := range peers {
		peers[i] = Peer{ID: i, Interested: i%3 != 0, DownRate: float64(i % 4)}
	}
	run := func() [][]int {
		c := New(Config{}, rand.New(rand.NewPCG(3, 4)))
		var out [][]int
		for r := range 10 {
			out = append(out, c.Rechoke(t0.Add(time.Duration(r)*10*time.Second), peers, r%2 == 0))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("round %d: %v vs %v", i, a[i], b[i])
		}
	}
}
