package tracker

import (
	"math/rand/v2"
	"slices"
)

// Tiers holds announce URLs in BEP 12 order. NewTiers shuffles each tier
// once; URLs lists trackers in the order to try them (tier by tier, so a
// whole tier is tried before the next); Succeeded moves a tracker that
// answered to the front of its tier. Tiers does no I/O and is not safe for
// concurrent use.
type Tiers struct {
	tiers [][]string
}

// NewTiers copies tiers, drops empty strings, empty tiers and URLs already
// seen in an earlier position, and shuffles each tier with rng (nil = a
// randomly seeded source).
func NewTiers(tiers [][]string, rng *rand.Rand) *Tiers {
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	seen := make(map[string]bool)
	t := &Tiers{}
	for _, tier := range tiers {
		var kept []string
		for _, u := range tier {
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			kept = append(kept, u)
		}
		if len(kept) == 0 {
			continue
		}
		rng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
		t.tiers = append(t.tiers, kept)
	}
	return t
}

// Len returns the number of distinct URLs.
func (t *Tiers) Len() int {
	n := 0
	for _, tier := range t.tiers {
		n += len(tier)
	}
	return n
}

// URLs returns every URL in the order to try them: the first tier's in its
// current order, then the second tier's, and so on. The slice is a copy.
func (t *Tiers) URLs() []string {
	out := make([]string, 0, t.Len())
	for _, tier := range t.tiers {
		out = append(out, tier...)
	}
	return out
}

// Tiers returns a copy of the current order, tier by tier.
func (t *Tiers) Tiers() [][]string {
	out := make([][]string, len(t.tiers))
	for i, tier := range t.tiers {
		out[i] = slices.Clone(tier)
	}
	return out
}

// Succeeded records that url answered: it moves to the front of its tier,
// the others of that tier keep their relative order. Unknown URLs are
// ignored.
func (t *Tiers) Succeeded(url string) {
	for _, tier := range t.tiers {
		i := slices.Index(tier, url)
		if i < 0 {
			continue
		}
		copy(tier[1:i+1], tier[:i])
		tier[0] = url
		return
	}
}
