package engine

import (
	"slices"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// prefetchGate keeps prefetch within a capped cache: prefetching stops
// while storing one more piece (beyond the blocks already requested)
// would evict a piece that is still wanted (one no reader has read yet,
// or one in a reader's window) or could not stay (the rest is pinned),
// and resumes when eviction would only drop pieces readers are done
// with. Pieces the cache evicts are spent (picker.SetSpent): prefetch
// never wants them again. Without a cap the gate is always open. Used from
// the loop goroutine only.
type prefetchGate struct {
	held bool   // prefetch is held back: the picker's default is None
	read []bool // pieces a reader has read (or is reading); nil until one has
}

// noteRead records the pieces of a reader's Now ranges as read.
func (g *prefetchGate) noteRead(rs []picker.Range, numPieces int) {
	for _, r := range rs {
		if r.Prio != picker.Now {
			continue
		}
		if g.read == nil {
			g.read = make([]bool, numPieces)
		}
		for i := max(r.First, 0); i < min(r.End, numPieces); i++ {
			g.read[i] = true
		}
	}
}

// stillWanted reports whether evicting piece i would drop something
// prefetch or a reader still wants.
func (ls *loopState) stillWanted(i int) bool {
	g := &ls.gate
	if ls.pk.Priority(i) >= picker.Readahead {
		return true // in a reader's window
	}
	return g.read == nil || !g.read[i]
}

// gatePrefetch opens or closes the prefetch gate before requests are
// picked.
func (ls *loopState) gatePrefetch() {
	if !ls.prefetch || ls.pk == nil || ls.t.c.budget == nil {
		return
	}
	info, st := ls.info(), ls.store()
	inFlight := int64(0)
	for p := range ls.conns.peers {
		inFlight += int64(ls.pk.Outstanding(p.id)) * wire.BlockSize
	}
	size := info.PieceLength + inFlight
	if ls.gate.held {
		size += info.PieceLength // hysteresis: reopen with a piece to spare
	}
	f := st.WouldEvict(size)
	hold := f.Short > 0 || f.Others > 0 || slices.ContainsFunc(f.Pieces, ls.stillWanted)
	if hold == ls.gate.held {
		return
	}
	ls.gate.held = hold
	if hold {
		ls.t.log.Debug("prefetch held: the cache is full of pieces still wanted")
		ls.pk.SetDefault(picker.None)
	} else {
		ls.pk.SetDefault(picker.Normal)
	}
	ls.updateInterestAll()
}
