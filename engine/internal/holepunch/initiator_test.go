package holepunch

import (
	"net/netip"
	"testing"
	"time"
)

func TestInitiatorRendezvousAndPunch(t *testing.T) {
	in := NewInitiator(InitiatorConfig{})
	target, relay := ap("203.0.113.2:6881"), ap("203.0.113.9:6881")
	// Unknown targets (never named by a relay) get no rendezvous.
	if _, ok := in.DialFailed(t0, target); ok {
		t.Fatal("rendezvous for a peer no relay named")
	}
	in.Learned(t0, target, relay)
	s, ok := in.DialFailed(t0, target)
	if !ok || s != (Send{To: relay, Msg: Msg{Type: Rendezvous, Addr: target}}) {
		t.Fatalf("got %+v %v", s, ok)
	}
	if o, _ := in.Outcome(target); o != Pending {
		t.Fatalf("outcome %v", o)
	}
	// One rendezvous at a time per target.
	if _, ok := in.DialFailed(t0.Add(time.Second), target); ok {
		t.Fatal("second rendezvous while one is pending")
	}
	// The relay's connect extends the wait; the connection is a punch.
	in.OnConnect(t0.Add(20*time.Second), relay, Msg{Type: Connect, Addr: target})
	in.Tick(t0.Add(40 * time.Second)) // within Wait of the connect
	if o, _ := in.Outcome(target); o != Pending {
		t.Fatalf("outcome after connect %v", o)
	}
	in.Connected(t0.Add(41*time.Second), target)
	if o, _ := in.Outcome(target); o != Punched {
		t.Fatalf("outcome %v, want punched", o)
	}
	if st := in.Stats(); st.Sent != 1 || st.Punched != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A peer reached without help is forgotten.
	other := ap("203.0.113.3:6881")
	in.Learned(t0, other, relay)
	in.Connected(t0, other)
	if o, _ := in.Outcome(other); o != Unknown {
		t.Fatalf("directly reached peer: %v", o)
	}
}

func TestInitiatorTimeoutBackoffGiveUp(t *testing.T) {
	in := NewInitiator(InitiatorConfig{Wait: 30 * time.Second, Backoff: time.Minute, MaxAttempts: 3})
	target, relay := ap("203.0.113.2:6881"), ap("203.0.113.9:6881")
	in.Learned(t0, target, relay)
	now := t0
	var sentAt []time.Duration
	for range 200 {
		if _, ok := in.DialFailed(now, target); ok {
			sentAt = append(sentAt, now.Sub(t0))
		}
		now = now.Add(10 * time.Second)
		in.Tick(now)
	}
	// Sent at 0; failed at 30 s, retried a minute later (at 90 s); failed
	// at 120 s, retried two minutes later (at 240 s); then given up.
	want := []time.Duration{0, 90 * time.Second, 240 * time.Second}
	if len(sentAt) != len(want) {
		t.Fatalf("rendezvous at %v, want %v", sentAt, want)
	}
	for i := range want {
		if sentAt[i] != want[i] {
			t.Fatalf("rendezvous at %v, want %v", sentAt, want)
		}
	}
	if o, _ := in.Outcome(target); o != GaveUp {
		t.Fatalf("outcome %v", o)
	}
	if st := in.Stats(); st.Sent != 3 || st.Failed != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInitiatorErrors(t *testing.T) {
	in := NewInitiator(InitiatorConfig{})
	target := ap("203.0.113.2:6881")
	r1, r2 := ap("203.0.113.8:6881"), ap("203.0.113.9:6881")
	in.Learned(t0, target, r1)
	in.Learned(t0, target, r2)
	s, ok := in.DialFailed(t0, target)
	if !ok || s.To != r2 {
		t.Fatalf("first rendezvous %+v %v, want through the newest relay %v", s, ok, r2)
	}
	// An error from another relay, or about another target, changes nothing.
	in.OnError(t0, r1, Msg{Type: Error, Addr: target, Err: NotConnected})
	if o, _ := in.Outcome(target); o != Pending {
		t.Fatalf("outcome %v", o)
	}
	// NotConnected: the next relay is asked at once.
	s, ok = in.OnError(t0, r2, Msg{Type: Error, Addr: target, Err: NotConnected})
	if !ok || s != (Send{To: r1, Msg: Msg{Type: Rendezvous, Addr: target}}) {
		t.Fatalf("after NotConnected: %+v %v", s, ok)
	}
	// NoSupport: nobody can help.
	in.OnError(t0, r1, Msg{Type: Error, Addr: target, Err: NoSupport})
	if o, code := in.Outcome(target); o != GaveUp || code != NoSupport {
		t.Fatalf("after NoSupport: %v %v", o, code)
	}
	if _, ok := in.DialFailed(t0.Add(time.Hour), target); ok {
		t.Fatal("rendezvous after giving up")
	}
	if st := in.Stats(); st.Errors[NotConnected] != 2 || st.Errors[NoSupport] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInitiatorRelayGoneAndCaps(t *testing.T) {
	in := NewInitiator(InitiatorConfig{PerMinute: 3, MaxTargets: 10, MaxRelays: 2})
	relay := ap("203.0.113.9:6881")
	// A relay that left is no way to anyone.
	target := ap("203.0.113.2:6881")
	in.Learned(t0, target, relay)
	in.RelayGone(relay)
	if _, ok := in.DialFailed(t0, target); ok {
		t.Fatal("rendezvous through a relay that left")
	}
	// Relays per target are capped, newest kept.
	for i := range 5 {
		in.Learned(t0, target, netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}), 1))
	}
	if s, ok := in.DialFailed(t0, target); !ok || s.To != ap("203.0.113.104:1") || len(in.targets[target].relays) != 2 {
		t.Fatalf("got %+v %v, relays %v", s, ok, in.targets[target].relays)
	}
	// At most PerMinute rendezvous a minute in all; targets are capped.
	sent := 1
	for i := range 50 {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 1)
		in.Learned(t0, a, relay)
		if _, ok := in.DialFailed(t0, a); ok {
			sent++
		}
	}
	if sent != 3 {
		t.Fatalf("%d rendezvous in a minute, cap 3", sent)
	}
	if len(in.targets) > 10 {
		t.Fatalf("%d targets remembered, cap 10", len(in.targets))
	}
	// Pending targets are never evicted.
	for a, tg := range in.targets {
		if tg.outcome == Pending {
			if _, ok := in.targets[a]; !ok {
				t.Fatal("pending target evicted")
			}
		}
	}
	if o, _ := in.Outcome(target); o != Pending {
		t.Fatalf("first target: %v", o)
	}
	// Unusable addresses and a relay naming itself are ignored.
	in.Learned(t0, ap("[fe80::1]:1"), relay)
	in.Learned(t0, relay, relay)
	if _, ok := in.targets[ap("[fe80::1]:1")]; ok {
		t.Fatal("link-local target remembered")
	}
}
