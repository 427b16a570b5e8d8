package engine

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

func TestPriosApply(t *testing.T) {
	p := newPrios()
	r1 := []picker.Range{{First: 1, End: 2, Prio: picker.Now}}
	r2 := []picker.Range{{First: 5, End: 9, Prio: picker.Readahead}}
	if !p.Apply(prioOwner{owner: 1, ranges: r2, seq: 2}) {
		t.Fatal("first update dropped")
	}
	if p.Apply(prioOwner{owner: 1, ranges: r1, seq: 1}) {
		t.Fatal("an older update applied")
	}
	if got := p.owners[1]; len(got) != 1 || got[0] != r2[0] {
		t.Fatalf("ranges %v, want %v", got, r2)
	}
	if !p.Apply(prioOwner{owner: 1, clear: true}) || len(p.owners)+len(p.seq) != 0 {
		t.Fatal("clear left state behind")
	}
	// After a clear, an owner starts over.
	if !p.Apply(prioOwner{owner: 1, ranges: r1, seq: 1}) {
		t.Fatal("update after clear dropped")
	}
}

func TestRates(t *testing.T) {
	var r rates
	t0 := time.Unix(100, 0)
	r.lastTick = t0
	if dt := r.interval(t0.Add(2 * time.Second)); dt != 2 {
		t.Fatalf("interval %v, want 2", dt)
	}
	if dt := r.interval(t0); dt != 1 {
		t.Fatalf("interval after the clock went back: %v, want 1", dt)
	}
	var pr rate
	if v := pr.update(1000, 1); v != 1000 {
		t.Fatalf("first sample %v, want 1000", v)
	}
	if v := pr.update(1000, 1); math.Abs(v-600) > 1e-9 {
		t.Fatalf("idle second: %v, want 600", v)
	}
}

func TestConns(t *testing.T) {
	c := newConns()
	p1 := &peer{addr: netip.MustParseAddrPort("10.0.0.1:1"), id: c.newID()}
	p2 := &peer{addr: netip.MustParseAddrPort("10.0.0.1:2"), id: c.newID()}
	p1.hs.peerID[0] = 1
	c.add(p1)
	c.add(p2)
	if c.len() != 2 || c.get(p2.id) != p2 || !c.connectedTo(p1.addr) || len(c.fromIP(p1.addr.Addr())) != 2 {
		t.Fatal("two peers not found")
	}
	if !c.hasClient(p1.hs.peerID) {
		t.Fatal("peer id not found")
	}
	c.wantRefill(p1)
	c.refillAll = true
	c.remove(p1)
	if c.len() != 1 || c.get(p1.id) != nil || c.refill[p1] || c.connectedTo(p1.addr) {
		t.Fatal("removed peer still there")
	}
	c.clearRefill()
	if c.refillAll || len(c.refill) != 0 {
		t.Fatal("refill marks not cleared")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{
		StateFetchingMetadata: "fetching metadata", StatePaused: "paused",
		StateVerifying: "verifying", StateDownloading: "downloading",
		StateSeeding: "seeding", StateIdle: "idle", StateRemoved: "removed", 200: "unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(100, 0)
	b := newTokenBucket(2, 10*time.Second, t0)
	for i, step := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, false}, // the burst
		{5 * time.Second, false},                            // half an interval: no token yet
		{10 * time.Second, true}, {10 * time.Second, false}, // one per interval
		{time.Hour, true}, {time.Hour, true}, {time.Hour, false}, // capped at the burst
	} {
		if got := b.take(t0.Add(step.at)); got != step.want {
			t.Fatalf("step %d (at %v): take %v, want %v", i, step.at, got, step.want)
		}
	}
}

func TestPrioBox(t *testing.T) {
	b := newPrioBox()
	b.put(prioOwner{owner: 1, seq: 2})
	b.put(prioOwner{owner: 1, seq: 1}) // older: dropped
	b.put(prioOwner{owner: 2, seq: 1})
	b.put(prioOwner{owner: 2, clear: true})
	b.put(prioOwner{owner: 2, seq: 5}) // after a clear: dropped
	select {
	case <-b.wake:
	default:
		t.Fatal("no wake-up")
	}
	got := map[int]prioOwner{}
	for _, u := range b.take() {
		got[u.owner] = u
	}
	if len(got) != 2 || got[1].seq != 2 || got[1].clear || !got[2].clear {
		t.Fatalf("took %+v", got)
	}
	if len(b.take()) != 0 {
		t.Fatal("box not emptied")
	}
}
