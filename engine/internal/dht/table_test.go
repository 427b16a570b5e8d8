package dht

import (
	"crypto/rand"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

func allowAll(a netip.AddrPort) bool {
	return (&Config{AllowLoopback: true, AllowPrivate: true}).validAddr(a)
}

// idWithPrefix returns a random id sharing exactly cpl leading bits with self.
func idWithPrefix(self metainfo.Hash, cpl int) metainfo.Hash {
	t := &table{self: self, buckets: make([]*bucket, 161)}
	return t.randomIDInBucket(cpl)
}

func addrN(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881)
}

func randHash() (h metainfo.Hash) {
	rand.Read(h[:])
	return h
}

func TestRandomIDInBucket(t *testing.T) {
	self := randHash()
	for cpl := range 160 {
		if got := commonPrefix(self, idWithPrefix(self, cpl)); got != cpl {
			t.Fatalf("cpl %d: got id with prefix %d", cpl, got)
		}
	}
}

func TestTableSplitsOnlyOwnBucket(t *testing.T) {
	now := time.Now()
	self := randHash()
	tb := newTable(self, K, 1000, 15*time.Minute, allowAll, now)
	// 8 nodes far away (cpl 0) fill bucket 0 before any split.
	for i := range K {
		tb.seen(idWithPrefix(self, 0), addrN(i), true, now)
	}
	if len(tb.buckets) != 1 || tb.count != K {
		t.Fatalf("buckets %d count %d", len(tb.buckets), tb.count)
	}
	// A closer node forces a split: bucket 0 keeps the far nodes.
	tb.seen(idWithPrefix(self, 3), addrN(100), true, now)
	if len(tb.buckets) != 2 || tb.count != K+1 {
		t.Fatalf("after split: buckets %d count %d", len(tb.buckets), tb.count)
	}
	// More far nodes do not split bucket 0 again: they become replacements.
	for i := range 5 {
		tb.seen(idWithPrefix(self, 0), addrN(200+i), true, now)
	}
	if len(tb.buckets[0].nodes) != K || len(tb.buckets[0].repl) != 5 || tb.count != K+1 {
		t.Fatalf("bucket 0: %d nodes %d repl, count %d", len(tb.buckets[0].nodes), len(tb.buckets[0].repl), tb.count)
	}
	// Nodes at every distance: buckets split down towards our id.
	for cpl := 1; cpl < 40; cpl++ {
		for j := range 3 {
			tb.seen(idWithPrefix(self, cpl), addrN(1000+cpl*4+j), true, now)
		}
	}
	for i, b := range tb.buckets {
		if len(b.nodes) > K {
			t.Fatalf("bucket %d holds %d nodes", i, len(b.nodes))
		}
		for _, e := range b.nodes {
			if bi := tb.bucketIndex(e.id); bi != i {
				t.Fatalf("node with cpl %d in bucket %d, belongs in %d", commonPrefix(self, e.id), i, bi)
			}
		}
	}
	if len(tb.buckets) < 30 {
		t.Fatalf("only %d buckets after nodes at 40 distances", len(tb.buckets))
	}
}

func TestTableIgnoresSelfAndBadAddrs(t *testing.T) {
	now := time.Now()
	self := randHash()
	strict := &Config{}
	tb := newTable(self, K, 1000, time.Minute, strict.validAddr, now)
	tb.seen(self, addrN(1), true, now)
	tb.seen(randHash(), netip.MustParseAddrPort("1.2.3.4:0"), true, now)
	tb.seen(randHash(), netip.MustParseAddrPort("127.0.0.1:6881"), true, now)
	tb.seen(randHash(), netip.MustParseAddrPort("192.168.1.1:6881"), true, now)
	tb.seen(randHash(), netip.MustParseAddrPort("0.0.0.0:6881"), true, now)
	tb.seen(randHash(), netip.MustParseAddrPort("224.0.0.1:6881"), true, now)
	if tb.count != 0 {
		t.Fatalf("table took %d invalid nodes", tb.count)
	}
	tb.seen(randHash(), netip.MustParseAddrPort("1.2.3.4:6881"), true, now)
	if tb.count != 1 {
		t.Fatalf("table refused a public node")
	}
}

func TestTableReplacement(t *testing.T) {
	t0 := time.Now()
	self := randHash()
	tb := newTable(self, K, 1000, 15*time.Minute, allowAll, t0)
	// Split once so that bucket 0 cannot split any more.
	tb.seen(idWithPrefix(self, 5), addrN(999), true, t0)
	var ids []metainfo.Hash
	for i := range K {
		id := idWithPrefix(self, 0)
		ids = append(ids, id)
		tb.seen(id, addrN(i), true, t0)
	}
	tb.seen(idWithPrefix(self, 5), addrN(998), true, t0) // forces the split
	if len(tb.buckets) < 2 {
		t.Fatal("no split")
	}
	// While all nodes are good, a newcomer waits as a replacement and no
	// ping is asked for.
	newcomer := idWithPrefix(self, 0)
	if ping := tb.seen(newcomer, addrN(50), true, t0.Add(time.Minute)); len(ping) != 0 {
		t.Fatalf("asked to ping %d good nodes", len(ping))
	}
	// After 15 minutes of silence all are questionable: the table asks to
	// ping them, once.
	later := t0.Add(16 * time.Minute)
	tb.seen(ids[0], addrN(0), true, later) // one refreshed node stays good
	ping := tb.seen(idWithPrefix(self, 0), addrN(51), true, later)
	if len(ping) != K-1 {
		t.Fatalf("asked to ping %d nodes, want %d", len(ping), K-1)
	}
	if again := tb.seen(idWithPrefix(self, 0), addrN(52), true, later); len(again) != 0 {
		t.Fatalf("asked to ping %d nodes already being pinged", len(again))
	}
	// A failed ping replaces the node with the newest replacement.
	victim := ping[0]
	tb.failed(victim.addr, true, later)
	for _, e := range tb.buckets[0].nodes {
		if e.id == victim.id {
			t.Fatal("failed node still in bucket")
		}
	}
	if !inBucket(tb.buckets[0], addrN(52)) {
		t.Fatal("newest replacement not promoted")
	}
	// A node that answers is kept.
	ok := ping[1]
	tb.seen(ok.id, ok.addr, true, later)
	if ok.pinging || tb.state(ok, later) != stateGood {
		t.Fatal("answering node not good")
	}
	// Two timeouts in a row make a node bad; a newcomer replaces a bad node
	// at once even with no replacement queued.
	tb.buckets[0].repl = nil
	tb.failed(ok.addr, false, later)
	tb.failed(ok.addr, false, later)
	if tb.state(ok, later) != stateBad {
		t.Fatal("node not bad after two failures")
	}
	fresh := idWithPrefix(self, 0)
	tb.seen(fresh, addrN(77), true, later)
	if !inBucket(tb.buckets[0], addrN(77)) || inBucket(tb.buckets[0], ok.addr) {
		t.Fatal("bad node not replaced by newcomer")
	}
	// closest never returns bad nodes.
	for _, ni := range tb.closest(self, 1000, later) {
		for _, b := range tb.buckets {
			for _, e := range b.nodes {
				if e.id == ni.ID && tb.state(e, later) == stateBad {
					t.Fatal("closest returned a bad node")
				}
			}
		}
	}
}

func inBucket(b *bucket, a netip.AddrPort) bool {
	for _, e := range b.nodes {
		if e.addr == a {
			return true
		}
	}
	return false
}

func TestTableBounds(t *testing.T) {
	now := time.Now()
	self := randHash()
	tb := newTable(self, K, 100, time.Minute, allowAll, now)
	for i := range 5000 {
		tb.seen(randHash(), addrN(i), true, now)
		cpl := i % 160
		tb.seen(idWithPrefix(self, cpl), addrN(10000+i), true, now)
	}
	total := 0
	for _, b := range tb.buckets {
		if len(b.nodes) > K || len(b.repl) > K {
			t.Fatalf("bucket over k: %d nodes %d repl", len(b.nodes), len(b.repl))
		}
		total += len(b.nodes)
	}
	if total != tb.count || total > 100 {
		t.Fatalf("total %d count %d, cap 100", total, tb.count)
	}
	if len(tb.buckets) > 160 {
		t.Fatalf("%d buckets", len(tb.buckets))
	}
}

func TestTableClosestOrder(t *testing.T) {
	now := time.Now()
	self := randHash()
	tb := newTable(self, K, 1000, time.Minute, allowAll, now)
	for i := range 300 {
		tb.seen(randHash(), addrN(i), true, now)
	}
	target := randHash()
	got := tb.closest(target, K, now)
	if len(got) != K {
		t.Fatalf("closest returned %d", len(got))
	}
	// Brute force: no node in the table is closer than the K-th returned.
	kth := new(big.Int).SetBytes(distanceBytes(target, got[K-1].ID))
	for i := 1; i < len(got); i++ {
		if closer(target, got[i].ID, got[i-1].ID) {
			t.Fatal("closest not sorted")
		}
	}
	in := map[metainfo.Hash]bool{}
	for _, g := range got {
		in[g.ID] = true
	}
	for _, ni := range tb.all() {
		if !in[ni.ID] && new(big.Int).SetBytes(distanceBytes(target, ni.ID)).Cmp(kth) < 0 {
			t.Fatal("a closer node was left out")
		}
	}
}

func distanceBytes(a, b metainfo.Hash) []byte {
	d := distance(a, b)
	return d[:]
}

func TestTableStaleTargets(t *testing.T) {
	t0 := time.Now()
	self := randHash()
	tb := newTable(self, K, 1000, time.Minute, allowAll, t0)
	for i := range 50 {
		tb.seen(randHash(), addrN(i), true, t0)
	}
	if got := tb.staleTargets(time.Minute, t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("%d stale buckets right after filling", len(got))
	}
	got := tb.staleTargets(time.Minute, t0.Add(2*time.Minute))
	if len(got) != len(tb.buckets) {
		t.Fatalf("%d stale targets, %d buckets", len(got), len(tb.buckets))
	}
	for _, id := range got {
		if tb.bucketIndex(id) < 0 {
			t.Fatal("bad target")
		}
	}
	seen := map[int]bool{}
	for _, id := range got {
		seen[tb.bucketIndex(id)] = true
	}
	if len(seen) != len(tb.buckets) {
		t.Fatalf("targets cover %d of %d buckets", len(seen), len(tb.buckets))
	}
	if again := tb.staleTargets(time.Minute, t0.Add(2*time.Minute)); len(again) != 0 {
		t.Fatal("refresh not recorded")
	}
}
