package dht

import (
	"crypto/rand"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// maxFails is the number of unanswered queries in a row after which a node
// is bad and may be replaced without asking.
const maxFails = 2

// entry is one node in the routing table.
type entry struct {
	id       metainfo.Hash
	addr     netip.AddrPort
	lastSeen time.Time // last query or response from it
	lastResp time.Time // last response to one of our queries; zero = never
	fails    int       // unanswered queries in a row
	pinging  bool      // a ping to decide its fate is in flight
}

// nodeState is BEP 5's classification of a node.
type nodeState int

const (
	stateGood nodeState = iota
	stateQuestionable
	stateBad
)

type bucket struct {
	nodes   []*entry // at most k
	repl    []*entry // replacement candidates, newest last, at most k
	changed time.Time
}

// table is a BEP 5 routing table: buckets of k nodes over the 160-bit XOR
// metric; only the bucket covering our own id splits. It is a plain type
// used from the node's loop goroutine only.
type table struct {
	self     metainfo.Hash
	k        int
	maxNodes int
	goodFor  time.Duration // a node stays good this long after it was heard
	valid    func(netip.AddrPort) bool
	buckets  []*bucket // bucket i holds ids sharing exactly i leading bits with self; the last holds the rest
	count    int
}

func newTable(self metainfo.Hash, k, maxNodes int, goodFor time.Duration, valid func(netip.AddrPort) bool, now time.Time) *table {
	return &table{self: self, k: k, maxNodes: maxNodes, goodFor: goodFor, valid: valid,
		buckets: []*bucket{{changed: now}}}
}

// distance returns a XOR b.
func distance(a, b metainfo.Hash) (d metainfo.Hash) {
	for i := range a {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// commonPrefix returns the number of leading bits a and b share (160 if equal).
func commonPrefix(a, b metainfo.Hash) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// closer reports whether a is closer to target than b.
func closer(target, a, b metainfo.Hash) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

func (t *table) bucketIndex(id metainfo.Hash) int {
	return min(commonPrefix(t.self, id), len(t.buckets)-1)
}

func (t *table) state(e *entry, now time.Time) nodeState {
	switch {
	case e.fails >= maxFails:
		return stateBad
	case !e.lastResp.IsZero() && now.Sub(e.lastSeen) < t.goodFor:
		return stateGood
	default:
		return stateQuestionable
	}
}

// seen records that a node sent us a query (responded false) or answered
// one of ours (responded true). It returns questionable nodes of a full
// bucket that the caller should ping; a ping that fails must be reported
// with failed, which then lets the newest replacement candidate in.
func (t *table) seen(id metainfo.Hash, addr netip.AddrPort, responded bool, now time.Time) (toPing []*entry) {
	if id == t.self || !t.valid(addr) {
		return nil
	}
	for {
		bi := t.bucketIndex(id)
		b := t.buckets[bi]
		for _, e := range b.nodes {
			if e.id != id {
				continue
			}
			if e.addr != addr {
				// Another address claims a known id: keep the one we know
				// unless it has gone bad.
				if t.state(e, now) != stateBad {
					return nil
				}
				e.addr, e.lastResp = addr, time.Time{}
			}
			e.lastSeen = now
			if responded {
				e.lastResp, e.fails, e.pinging = now, 0, false
			}
			b.changed = now
			return nil
		}
		ne := &entry{id: id, addr: addr, lastSeen: now}
		if responded {
			ne.lastResp = now
		}
		if len(b.nodes) < t.k && t.count < t.maxNodes {
			b.nodes = append(b.nodes, ne)
			b.changed = now
			t.count++
			return nil
		}
		if len(b.nodes) >= t.k && bi == len(t.buckets)-1 && bi < 159 && t.count < t.maxNodes {
			t.split(now)
			continue
		}
		for i, e := range b.nodes {
			if t.state(e, now) == stateBad {
				b.nodes[i] = ne
				b.changed = now
				return nil
			}
		}
		t.addReplacement(b, ne)
		for _, e := range b.nodes {
			if !e.pinging && t.state(e, now) == stateQuestionable {
				e.pinging = true
				toPing = append(toPing, e)
			}
		}
		return toPing
	}
}

func (t *table) addReplacement(b *bucket, ne *entry) {
	b.repl = slices.DeleteFunc(b.repl, func(e *entry) bool { return e.id == ne.id })
	if len(b.repl) >= t.k {
		b.repl = slices.Delete(b.repl, 0, 1)
	}
	b.repl = append(b.repl, ne)
}

// split divides the last bucket: nodes sharing more leading bits with self
// move to a new last bucket.
func (t *table) split(now time.Time) {
	last := len(t.buckets) - 1
	old := t.buckets[last]
	nb := &bucket{changed: now}
	keep := old.nodes[:0:0]
	for _, e := range old.nodes {
		if commonPrefix(t.self, e.id) > last {
			nb.nodes = append(nb.nodes, e)
		} else {
			keep = append(keep, e)
		}
	}
	var keepRepl []*entry
	for _, e := range old.repl {
		if commonPrefix(t.self, e.id) > last {
			nb.repl = append(nb.repl, e)
		} else {
			keepRepl = append(keepRepl, e)
		}
	}
	old.nodes, old.repl = keep, keepRepl
	t.buckets = append(t.buckets, nb)
}

// failed records that addr did not answer a query. With definitive (a ping
// sent to decide whether to replace the node) the node becomes bad at once.
// A bad node is replaced by the newest replacement candidate, if any.
func (t *table) failed(addr netip.AddrPort, definitive bool, now time.Time) {
	for _, b := range t.buckets {
		for i, e := range b.nodes {
			if e.addr != addr {
				continue
			}
			e.fails++
			e.pinging = false
			if definitive {
				e.fails = max(e.fails, maxFails)
			}
			if e.fails >= maxFails && len(b.repl) > 0 {
				b.nodes[i] = b.repl[len(b.repl)-1]
				b.repl = b.repl[:len(b.repl)-1]
				b.changed = now
			}
			return
		}
	}
}

// closest returns up to n non-bad nodes nearest to target, nearest first.
func (t *table) closest(target metainfo.Hash, n int, now time.Time) []nodeInfo {
	return t.closestOf(target, n, now, famBoth)
}

// closestOf is closest for the nodes of the families in fam only.
func (t *table) closestOf(target metainfo.Hash, n int, now time.Time, fam family) []nodeInfo {
	var all []nodeInfo
	for _, b := range t.buckets {
		for _, e := range b.nodes {
			if t.state(e, now) != stateBad && fam.has(familyOf(e.addr.Addr())) {
				all = append(all, nodeInfo{e.id, e.addr})
			}
		}
	}
	slices.SortFunc(all, func(a, b nodeInfo) int {
		switch {
		case closer(target, a.ID, b.ID):
			return -1
		case closer(target, b.ID, a.ID):
			return 1
		}
		return 0
	})
	return all[:min(n, len(all))]
}

// all returns every node in the table.
func (t *table) all() []nodeInfo {
	var out []nodeInfo
	for _, b := range t.buckets {
		for _, e := range b.nodes {
			out = append(out, nodeInfo{e.id, e.addr})
		}
	}
	return out
}

// counts returns the number of nodes and of good nodes.
func (t *table) counts(now time.Time) (nodes, good int) {
	for _, b := range t.buckets {
		for _, e := range b.nodes {
			if t.state(e, now) == stateGood {
				good++
			}
		}
	}
	return t.count, good
}

// staleTargets returns a random id inside each bucket that has not changed
// for interval, and marks those buckets changed (a refresh is under way).
func (t *table) staleTargets(interval time.Duration, now time.Time) []metainfo.Hash {
	var out []metainfo.Hash
	for i, b := range t.buckets {
		if now.Sub(b.changed) < interval {
			continue
		}
		b.changed = now
		out = append(out, t.randomIDInBucket(i))
	}
	return out
}

// randomIDInBucket returns a random id sharing exactly i leading bits with
// self (at least i for the last bucket).
func (t *table) randomIDInBucket(i int) metainfo.Hash {
	var id metainfo.Hash
	rand.Read(id[:])
	for bit := range min(i, 160) {
		mask := byte(0x80) >> (bit % 8)
		id[bit/8] = id[bit/8]&^mask | t.self[bit/8]&mask
	}
	if i < len(t.buckets)-1 && i < 160 {
		mask := byte(0x80) >> (i % 8)
		id[i/8] = id[i/8]&^mask | (^t.self[i/8])&mask
	}
	return id
}
