package engine

import "github.com/swarmfs/swarmfs/engine/internal/picker"

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
