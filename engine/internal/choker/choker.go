package choker

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Config configures a Choker. The zero value is valid.
type Config struct {
	// Slots is the number of upload slots, the optimistic one included.
	// Zero means 4.
	Slots int
	// OptimisticInterval is how long an optimistic unchoke lasts. Zero
	// means 30 seconds.
	OptimisticInterval time.Duration
	// RechokeInterval is how often the engine should call Rechoke. Zero
	// means 10 seconds.
	RechokeInterval time.Duration
}

// Peer is the choker's view of one connection.
type Peer struct {
	// ID identifies the peer; it is what Rechoke returns.
	ID int
	// Interested reports that the peer wants data from us.
	Interested bool
	// Choked reports that we currently choke the peer.
	Choked bool
	// Snubbed reports that the peer sent us nothing for a long time
	// although we requested; it gets no regular slot while downloading.
	Snubbed bool
	// DownRate is the recent rate of payload from the peer to us, in
	// bytes per second.
	DownRate float64
	// UpRate is the recent rate of payload from us to the peer, in bytes
	// per second.
	UpRate float64
	// Connected is when the connection was established. Peers connected
	// for less than two optimistic intervals are three times as likely to
	// get the optimistic unchoke. The zero time means long ago.
	Connected time.Time
}

// Choker chooses the peers to unchoke. Create it with New.
type Choker struct {
	cfg Config
	rng *rand.Rand

	optimistic      int       // ID of the optimistic unchoke; valid if hasOptimistic
	hasOptimistic   bool      // an optimistic unchoke is current
	optimisticSince time.Time // when it was chosen
	last            time.Time // time of the last Rechoke
}

// New returns a Choker. The zero Config fields take their defaults. rng is
// the random source for the optimistic unchoke and ties; nil means a source
// with a fixed seed.
func New(cfg Config, rng *rand.Rand) *Choker {
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.OptimisticInterval <= 0 {
		cfg.OptimisticInterval = 30 * time.Second
	}
	if cfg.RechokeInterval <= 0 {
		cfg.RechokeInterval = 10 * time.Second
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	return &Choker{cfg: cfg, rng: rng}
}

// Config returns the configuration with defaults filled in.
func (c *Choker) Config() Config { return c.cfg }

// Due reports whether RechokeInterval has passed since the last Rechoke (or
// Rechoke never ran).
func (c *Choker) Due(now time.Time) bool {
	return c.last.IsZero() || now.Sub(c.last) >= c.cfg.RechokeInterval
}

// Optimistic returns the peer holding the optimistic unchoke, if any.
func (c *Choker) Optimistic() (id int, ok bool) {
	return c.optimistic, c.hasOptimistic
}

// Rechoke returns the IDs of the peers to unchoke, regular slots first (best
// first), then unchoked uninterested peers, then the optimistic unchoke last.
// Every peer not listed should be choked. seeding selects seed mode (rank by
// our upload rate to the peer) rather than tit-for-tat (rank by the peer's
// upload rate to us). The optimistic unchoke is kept for OptimisticInterval
// unless its peer left, lost interest or earned a regular slot.
func (c *Choker) Rechoke(now time.Time, peers []Peer, seeding bool) []int {
	c.last = now
	rate := func(p *Peer) float64 {
		if seeding {
			return p.UpRate
		}
		return p.DownRate
	}

	// Candidates for regular slots, in random order so that the stable
	// sort breaks ties between equal rates at random, after preferring
	// peers already unchoked.
	cand := make([]*Peer, 0, len(peers))
	for i := range peers {
		p := &peers[i]
		if p.Interested && (seeding || !p.Snubbed) {
			cand = append(cand, p)
		}
	}
	c.rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	sortPeers(cand, rate)

	regular := c.cfg.Slots - 1
	if regular > len(cand) {
		regular = len(cand)
	}
	out := make([]int, 0, c.cfg.Slots+4)
	chosen := make(map[int]bool, c.cfg.Slots)
	for _, p := range cand[:regular] {
		out = append(out, p.ID)
		chosen[p.ID] = true
	}

	// While downloading, peers that upload to us faster than the slowest
	// regular peer are unchoked even if not interested (BEP 3): it costs
	// nothing and they can start at once when they become interested.
	if !seeding && regular > 0 {
		floor := rate(cand[regular-1])
		for i := range peers {
			p := &peers[i]
			if !p.Interested && !p.Snubbed && p.DownRate > floor && !chosen[p.ID] {
				out = append(out, p.ID)
				chosen[p.ID] = true
			}
		}
	}

	c.pickOptimistic(now, peers, chosen)
	if c.hasOptimistic {
		out = append(out, c.optimistic)
	}
	return out
}

// pickOptimistic keeps or replaces the optimistic unchoke.
func (c *Choker) pickOptimistic(now time.Time, peers []Peer, chosen map[int]bool) {
	if c.hasOptimistic {
		keep := false
		if now.Sub(c.optimisticSince) < c.cfg.OptimisticInterval && !chosen[c.optimistic] {
			for i := range peers {
				if peers[i].ID == c.optimistic && peers[i].Interested {
					keep = true
					break
				}
			}
		}
		if keep {
			return
		}
	}
	prev, hadPrev := c.optimistic, c.hasOptimistic
	c.hasOptimistic = false
	newAge := 2 * c.cfg.OptimisticInterval
	total := 0
	weight := func(p *Peer) int {
		if !p.Interested || chosen[p.ID] || (hadPrev && p.ID == prev) {
			return 0
		}
		if !p.Connected.IsZero() && now.Sub(p.Connected) < newAge {
			return 3
		}
		return 1
	}
	for i := range peers {
		total += weight(&peers[i])
	}
	if total == 0 {
		// The previous optimistic peer may be the only candidate left.
		if hadPrev && !chosen[prev] {
			for i := range peers {
				if peers[i].ID == prev && peers[i].Interested {
					c.optimistic, c.hasOptimistic, c.optimisticSince = prev, true, now
				}
			}
		}
		return
	}
	n := c.rng.IntN(total)
	for i := range peers {
		w := weight(&peers[i])
		if n < w {
			c.optimistic, c.hasOptimistic, c.optimisticSince = peers[i].ID, true, now
			return
		}
		n -= w
	}
}

// sortPeers sorts by descending rate, then unchoked before choked; it is
// stable so the caller's shuffle breaks the remaining ties.
func sortPeers(ps []*Peer, rate func(*Peer) float64) {
	slices.SortStableFunc(ps, func(a, b *Peer) int {
		ra, rb := rate(a), rate(b)
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		case !a.Choked && b.Choked:
			return -1
		case a.Choked && !b.Choked:
			return 1
		}
		return 0
	})
}
