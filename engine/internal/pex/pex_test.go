package pex

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestSenderDiffs(t *testing.T) {
	var sw Swarm
	sw.Add(ap("127.0.3.1:1000"), wire.PexSeed)
	sw.Add(ap("127.0.3.2:1000"), 0)
	sw.Add(ap("127.0.3.9:1000"), 0) // the recipient itself
	s := NewSender(ap("[::ffff:127.0.3.9]:1000"))

	m, ok := s.Next(t0, &sw)
	if !ok || len(m.Added) != 2 || len(m.Dropped) != 0 {
		t.Fatalf("first message: %+v %v", m, ok)
	}
	if m.Added[0].Addr != ap("127.0.3.1:1000") || m.Added[0].Flags != wire.PexSeed {
		t.Errorf("first added %+v", m.Added[0])
	}
	// Changes wait for the interval.
	sw.Remove(ap("127.0.3.1:1000"))
	sw.Add(ap("127.0.3.3:1000"), wire.PexReachable)
	if _, ok := s.Next(t0.Add(Interval-time.Second), &sw); ok {
		t.Fatal("sent twice within the interval")
	}
	m, ok = s.Next(t0.Add(Interval), &sw)
	if !ok || len(m.Added) != 1 || m.Added[0].Addr != ap("127.0.3.3:1000") ||
		len(m.Dropped) != 1 || m.Dropped[0] != ap("127.0.3.1:1000") {
		t.Fatalf("diff: %+v", m)
	}
	// Nothing changed: no message, even after the interval.
	if m, ok := s.Next(t0.Add(3*Interval), &sw); ok {
		t.Fatalf("empty diff sent: %+v", m)
	}
}

func TestSenderCaps(t *testing.T) {
	var sw Swarm
	for i := range 120 {
		sw.Add(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881), 0)
	}
	s := NewSender(ap("10.9.9.9:1"))
	total := 0
	now := t0
	for range 3 {
		m, ok := s.Next(now, &sw)
		if !ok {
			t.Fatal("no message while peers remain untold")
		}
		if len(m.Added) > wire.MaxPexSend {
			t.Fatalf("%d added in one message, cap %d", len(m.Added), wire.MaxPexSend)
		}
		// The message fits libtorrent's limits once encoded.
		if n := len(wire.AppendPex(nil, m)); n > 4096 {
			t.Fatalf("message of %d bytes", n)
		}
		total += len(m.Added)
		now = now.Add(Interval)
	}
	if total != 120 {
		t.Fatalf("told %d peers over three messages, want 120", total)
	}
	// Everyone leaves: dropped entries are capped too.
	for i := range 120 {
		sw.Remove(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881))
	}
	m, _ := s.Next(now, &sw)
	if len(m.Dropped) != wire.MaxPexSend || sw.Len() != 0 {
		t.Fatalf("%d dropped", len(m.Dropped))
	}
}

func payload(m wire.PexMsg) []byte { return wire.AppendPex(nil, m) }

func TestReceiver(t *testing.T) {
	r := NewReceiver(netip.MustParseAddr("127.0.3.5"))
	added, dropped, err := r.Receive(t0, payload(wire.PexMsg{Added: []wire.PexPeer{
		{Addr: ap("127.0.3.6:1"), Flags: wire.PexSeed},
		{Addr: ap("192.0.2.1:2")},
	}}))
	if err != nil || len(added) != 2 || len(dropped) != 0 || added[0].Flags != wire.PexSeed {
		t.Fatalf("first: %+v %+v %v", added, dropped, err)
	}
	// Repeats are filtered; drops are reported for known addresses only.
	added, dropped, err = r.Receive(t0.Add(time.Minute), payload(wire.PexMsg{
		Added:   []wire.PexPeer{{Addr: ap("127.0.3.6:1")}, {Addr: ap("127.0.3.7:1")}},
		Dropped: []netip.AddrPort{ap("192.0.2.1:2"), ap("198.51.100.1:3")},
	}))
	if err != nil || len(added) != 1 || added[0].Addr != ap("127.0.3.7:1") ||
		len(dropped) != 1 || dropped[0] != ap("192.0.2.1:2") {
		t.Fatalf("second: %+v %+v %v", added, dropped, err)
	}
	// Malformed payloads are wire errors.
	if _, _, err := r.Receive(t0.Add(3*time.Minute), []byte("d5:added5:xxxxxe")); !errors.Is(err, wire.ErrPex) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestReceiverPublicPeerLocalAddresses(t *testing.T) {
	r := NewReceiver(netip.MustParseAddr("198.51.100.7"))
	added, _, err := r.Receive(t0, payload(wire.PexMsg{Added: []wire.PexPeer{
		{Addr: ap("127.0.0.1:1")}, {Addr: ap("192.168.1.2:1")}, {Addr: ap("203.0.113.4:1")},
	}}))
	if err != nil || len(added) != 1 || added[0].Addr != ap("203.0.113.4:1") {
		t.Fatalf("got %+v %v", added, err)
	}
}

func TestReceiverKnownCap(t *testing.T) {
	r := NewReceiver(netip.MustParseAddr("10.0.0.1"))
	now := t0
	total := 0
	for round := range MaxKnownPerPeer/wire.MaxPexPeers + 2 {
		var m wire.PexMsg
		for i := range wire.MaxPexPeers {
			n := round*wire.MaxPexPeers + i
			m.Added = append(m.Added, wire.PexPeer{Addr: ap(fmt.Sprintf("10.1.%d.%d:1", n/256, n%256))})
		}
		added, _, err := r.Receive(now, payload(m))
		if err != nil {
			t.Fatal(err)
		}
		total += len(added)
		now = now.Add(Interval)
	}
	if total != MaxKnownPerPeer {
		t.Fatalf("learned %d addresses from one peer, cap %d", total, MaxKnownPerPeer)
	}
}

func TestReceiverFlood(t *testing.T) {
	r := NewReceiver(netip.MustParseAddr("10.0.0.1"))
	empty := payload(wire.PexMsg{})
	// A burst of FloodBurst messages (a stalled connection catching up)
	// is accepted; one more within the window is not.
	for i := range FloodBurst {
		if _, _, err := r.Receive(t0.Add(time.Duration(i)*time.Second), empty); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, _, err := r.Receive(t0.Add(10*time.Second), empty); !errors.Is(err, ErrTooFrequent) {
		t.Fatalf("flood: %v", err)
	}
	// Once the window has passed, messages are welcome again.
	if _, _, err := r.Receive(t0.Add(FloodWindow+time.Second), empty); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestIPv6Exchange: IPv6 peers go out in added6/dropped6 with their flags
// and come back the same; link-local IPv6 addresses are never taken, and
// private (ULA) ones only from a private sender.
func TestIPv6Exchange(t *testing.T) {
	var sw Swarm
	sw.Add(ap("[2001:db8::1]:6881"), wire.PexHolepunch|wire.PexUTP)
	sw.Add(ap("[fd00::2]:6881"), wire.PexSeed)
	sw.Add(ap("198.51.100.3:6881"), wire.PexReachable)
	s := NewSender(ap("[2001:db8::9]:1"))
	m, ok := s.Next(t0, &sw)
	if !ok || len(m.Added) != 3 {
		t.Fatalf("first message %+v", m)
	}
	p := payload(m)
	for _, key := range []string{"6:added636:", "8:added6.f2:", "5:added6:", "7:added.f1:"} {
		if !strings.Contains(string(p), key) {
			t.Errorf("payload %q lacks %q", p, key)
		}
	}
	r := NewReceiver(netip.MustParseAddr("2001:db8::9"))
	added, _, err := r.Receive(t0, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []wire.PexPeer{
		{Addr: ap("198.51.100.3:6881"), Flags: wire.PexReachable},
		{Addr: ap("[2001:db8::1]:6881"), Flags: wire.PexHolepunch | wire.PexUTP},
	}
	if !slices.Equal(added, want) {
		t.Fatalf("public receiver took %+v, want %+v", added, want)
	}
	// A private sender's ULA peers are fine; link-local never.
	r = NewReceiver(netip.MustParseAddr("fd00::7"))
	added, _, err = r.Receive(t0, payload(wire.PexMsg{Added: []wire.PexPeer{
		{Addr: ap("[fd00::2]:6881")}, {Addr: ap("[fe80::1]:6881")}}}))
	if err != nil || len(added) != 1 || added[0].Addr != ap("[fd00::2]:6881") {
		t.Fatalf("private receiver took %+v %v", added, err)
	}
	// A peer leaving shows up in dropped6.
	sw.Remove(ap("[2001:db8::1]:6881"))
	m, ok = s.Next(t0.Add(Interval), &sw)
	if !ok || len(m.Dropped) != 1 || !strings.Contains(string(payload(m)), "8:dropped618:") {
		t.Fatalf("second message %+v", m)
	}
}
