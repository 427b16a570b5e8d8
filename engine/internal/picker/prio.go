package picker

import (
	"cmp"
	"slices"
)

// SetDefault sets the priority of pieces that no owner's range covers: None
// when only streaming, Normal when prefetching everything. Values above
// HeadTail are treated as HeadTail (streaming order belongs to ranges).
// It costs time proportional to the number of pieces.
func (p *Picker) SetDefault(prio Priority) {
	prio = min(max(prio, None), HeadTail)
	if prio == p.def {
		return
	}
	p.def = prio
	p.recompute([]Range{{0, p.numPieces, None}})
}

// SetSpent marks piece i as spent, or no longer: a spent piece was had
// and dropped (a capped cache evicted it), so that only Readahead and Now
// ranges want it again; the default and HeadTail or Normal ranges do not,
// or a cache too small for everything would fetch and evict the same
// pieces forever. It costs time proportional to the owners' ranges.
func (p *Picker) SetSpent(i int, on bool) {
	if i < 0 || i >= p.numPieces || p.isSpent(i) == on {
		return
	}
	if p.spent == nil {
		p.spent = make([]bool, p.numPieces)
	}
	p.spent[i] = on
	p.recompute([]Range{{i, i + 1, None}})
}

func (p *Picker) isSpent(i int) bool { return p.spent != nil && p.spent[i] }

// Default returns the default priority.
func (p *Picker) Default() Priority { return p.def }

// SetRanges replaces the ranges of owner (for example one open reader).
// Ranges are clipped to the torrent; a piece covered by several ranges gets
// the highest priority. A reader's window is typically
// {pos, pos+1, Now} and {pos+1, end, Readahead}. It costs time proportional
// to the pieces covered by the old and new ranges.
func (p *Picker) SetRanges(owner int, ranges []Range) {
	var nr []Range
	for _, r := range ranges {
		r.First, r.End = max(r.First, 0), min(r.End, p.numPieces)
		r.Prio = min(max(r.Prio, None), Now)
		if r.First < r.End {
			nr = append(nr, r)
		}
	}
	old := p.owners[owner]
	if slices.Equal(old, nr) {
		return // readers often repeat their window; keep the stream order
	}
	if len(nr) == 0 {
		delete(p.owners, owner)
	} else {
		p.owners[owner] = nr
	}
	p.markStream(old)
	p.markStream(nr)
	p.recompute(append(slices.Clip(old), nr...))
}

// ClearOwner drops every range of owner.
func (p *Picker) ClearOwner(owner int) { p.SetRanges(owner, nil) }

// Priority returns the effective priority of piece i.
func (p *Picker) Priority(i int) Priority {
	if i < 0 || i >= p.numPieces {
		return None
	}
	return p.prio[i]
}

// markStream notes that the streaming order must be rebuilt if any range
// is in a streaming class.
func (p *Picker) markStream(rs []Range) {
	for _, r := range rs {
		if r.Prio >= Readahead {
			p.streamDirty = true
		}
	}
}

// recompute sets the effective priority of every piece in the given ranges
// (their priorities are ignored) from the default and all owners' ranges.
func (p *Picker) recompute(affected []Range) {
	if len(affected) == 0 {
		return
	}
	slices.SortFunc(affected, func(a, b Range) int { return cmp.Compare(a.First, b.First) })
	// Merge overlapping or touching intervals.
	merged := affected[:1]
	for _, r := range affected[1:] {
		last := &merged[len(merged)-1]
		if r.First <= last.End {
			last.End = max(last.End, r.End)
		} else {
			merged = append(merged, r)
		}
	}
	for _, m := range merged {
		n := m.End - m.First
		if cap(p.tmpPrio) < n {
			p.tmpPrio = make([]Priority, n)
		}
		tmp := p.tmpPrio[:n]
		for k := range tmp {
			tmp[k] = p.def
			if p.isSpent(m.First + k) {
				tmp[k] = None
			}
		}
		for _, rs := range p.owners {
			for _, r := range rs {
				lo, hi := max(r.First, m.First), min(r.End, m.End)
				for i := lo; i < hi; i++ {
					if r.Prio > tmp[i-m.First] && (r.Prio >= Readahead || !p.isSpent(i)) {
						tmp[i-m.First] = r.Prio
					}
				}
			}
		}
		for k, np := range tmp {
			p.setPrio(m.First+k, np)
		}
	}
}

// setPrio changes the effective priority of piece i.
func (p *Picker) setPrio(i int, np Priority) {
	op := p.prio[i]
	if op == np {
		return
	}
	if op >= Readahead || np >= Readahead {
		p.streamDirty = true
	}
	p.detach(i, true)
	p.prio[i] = np
	p.attach(i, true)
}

// streamEntry is a candidate of the streaming order.
type streamEntry struct {
	piece int
	prio  Priority
	rank  int // distance from the start of its range
}

// refreshStream rebuilds the streaming order if priorities changed: Now
// pieces before Readahead ones, each by distance from the start of the range
// that gave the priority, then by index.
func (p *Picker) refreshStream() {
	if !p.streamDirty {
		return
	}
	p.streamDirty = false
	var es []streamEntry
	for _, rs := range p.owners {
		for _, r := range rs {
			if r.Prio < Readahead {
				continue
			}
			for i := r.First; i < r.End; i++ {
				if p.prio[i] == r.Prio {
					es = append(es, streamEntry{i, r.Prio, i - r.First})
				}
			}
		}
	}
	slices.SortFunc(es, func(a, b streamEntry) int {
		return cmp.Or(cmp.Compare(b.prio, a.prio), cmp.Compare(a.rank, b.rank),
			cmp.Compare(a.piece, b.piece))
	})
	if p.stamp == nil {
		p.stamp = make([]uint32, p.numPieces)
	}
	p.stampGen++
	if p.stampGen == 0 {
		clear(p.stamp)
		p.stampGen = 1
	}
	p.stream = p.stream[:0]
	for _, e := range es {
		if p.stamp[e.piece] != p.stampGen {
			p.stamp[e.piece] = p.stampGen
			p.stream = append(p.stream, e.piece)
		}
	}
}
