package engine

import (
	"sync"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// prioOwner is a reader's priority update for the loop.
type prioOwner struct {
	owner  int
	ranges []picker.Range
	seq    uint64 // ranges older than the owner's last applied seq are dropped
	clear  bool
}

// prios holds the piece ranges each reader wants, with the sequence number
// of its last update, so that the picker can be given them again once the
// metadata is known and late updates are dropped. Used from the loop
// goroutine only.
type prios struct {
	owners map[int][]picker.Range
	seq    map[int]uint64
}

func newPrios() prios {
	return prios{owners: make(map[int][]picker.Range), seq: make(map[int]uint64)}
}

// Apply records an update. It reports false for an update older than the
// owner's last one, which must be dropped.
func (p prios) Apply(u prioOwner) bool {
	if u.clear {
		delete(p.seq, u.owner)
		delete(p.owners, u.owner)
		return true
	}
	if u.seq < p.seq[u.owner] {
		return false
	}
	p.seq[u.owner] = u.seq
	p.owners[u.owner] = u.ranges
	return true
}

// Replay gives every owner's ranges to pk (the metadata just arrived).
func (p prios) Replay(pk *picker.Picker) {
	for o, rs := range p.owners {
		pk.SetRanges(o, rs)
	}
}

// applyTo gives the update u, applied, to pk.
func (u prioOwner) applyTo(pk *picker.Picker) {
	if u.clear {
		pk.ClearOwner(u.owner)
	} else {
		pk.SetRanges(u.owner, u.ranges)
	}
}

// prioBox carries readers' priority updates to the loop without ever
// making a reader wait for it: a reader leaves its latest update here and
// wakes the loop, which takes all of them at its next step. It holds one
// update per reader (the newest by seq; a clear is final), so its size is
// bounded by the open readers.
type prioBox struct {
	mu      sync.Mutex // guards pending
	pending map[int]prioOwner
	wake    chan struct{} // cap 1: updates are pending
}

func newPrioBox() *prioBox {
	return &prioBox{pending: make(map[int]prioOwner), wake: make(chan struct{}, 1)}
}

// put leaves u for the loop. It never blocks.
func (b *prioBox) put(u prioOwner) {
	b.mu.Lock()
	old, ok := b.pending[u.owner]
	if !ok || u.clear || (!old.clear && u.seq >= old.seq) {
		b.pending[u.owner] = u
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take returns the pending updates and empties the box.
func (b *prioBox) take() []prioOwner {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]prioOwner, 0, len(b.pending))
	for _, u := range b.pending {
		out = append(out, u)
	}
	clear(b.pending)
	return out
}
