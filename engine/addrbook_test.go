package engine

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestAddrBookAdd(t *testing.T) {
	self := ap("127.0.0.1:6881")
	b := newAddrBook(self)
	b.Ban(netip.MustParseAddr("10.0.0.66"), "test")
	n := b.Add([]netip.AddrPort{
		ap("10.0.0.1:6881"),
		ap("10.0.0.1:6881"),          // duplicate
		ap("[::ffff:10.0.0.2]:6881"), // v4-mapped: stored unmapped
		self,                         // ourselves
		ap("0.0.0.0:6881"),           // unspecified
		ap("10.0.0.3:0"),             // no port
		ap("10.0.0.66:6881"),         // banned
		{},                           // invalid
	}, SourceTracker)
	if n != 2 || b.Len() != 2 {
		t.Fatalf("added %d, known %d; want 2 and 2", n, b.Len())
	}
	if !b.Has(ap("10.0.0.2:6881")) {
		t.Fatal("v4-mapped address not stored unmapped")
	}
	if got := b.Source(ap("10.0.0.1:6881")); got != SourceTracker {
		t.Fatalf("source %v, want tracker", got)
	}
	if got := b.Source(ap("10.9.9.9:1")); got != SourceUnknown || got.String() != "unknown" {
		t.Fatalf("source of an unknown address: %v", got)
	}
}

func TestAddrBookCaps(t *testing.T) {
	b := newAddrBook(netip.AddrPort{})
	many := func(prefix byte, n int) []netip.AddrPort {
		out := make([]netip.AddrPort, n)
		for i := range out {
			out[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, prefix, byte(i >> 8), byte(i)}), 6881)
		}
		return out
	}
	b.Add(many(1, maxPexKnown+10), SourcePex)
	if b.pexKnown != maxPexKnown || b.Len() != maxPexKnown {
		t.Fatalf("%d known through PEX, cap %d", b.pexKnown, maxPexKnown)
	}
	b.Add(many(2, maxKnownPeers), SourceDHT)
	if b.Len() != maxKnownPeers {
		t.Fatalf("%d known, cap %d", b.Len(), maxKnownPeers)
	}
	// A full book refuses more from the swarm but takes the user's, in
	// place of a PEX address.
	if n := b.Add([]netip.AddrPort{ap("10.3.0.1:6881")}, SourceTracker); n != 0 {
		t.Fatal("a full book took a tracker address")
	}
	user := ap("10.4.0.1:6881")
	if n := b.Add([]netip.AddrPort{user}, SourceUser); n != 1 || !b.Has(user) {
		t.Fatal("a full book refused the user's address")
	}
	if b.Len() != maxKnownPeers || b.pexKnown != maxPexKnown-1 {
		t.Fatalf("after the user's address: %d known, %d through PEX", b.Len(), b.pexKnown)
	}
}

func TestAddrBookDialQueue(t *testing.T) {
	b := newAddrBook(netip.AddrPort{})
	a1, a2, a3 := ap("10.0.0.1:1"), ap("10.0.0.2:1"), ap("10.0.0.3:1")
	b.Add([]netip.AddrPort{a1, a2, a3}, SourceTracker)
	now := time.Unix(1000, 0)
	a, ok := b.NextDial()
	if !ok || a != a1 {
		t.Fatalf("first dial %v, want %v", a, a1)
	}
	b.Unpop(a) // no slot: back at the head
	if a, _ = b.NextDial(); a != a1 {
		t.Fatalf("after Unpop: %v, want %v", a, a1)
	}
	b.Dialing(a1, now)
	b.Ban(a2.Addr(), "test")
	if a, _ = b.NextDial(); a != a3 {
		t.Fatalf("dial %v, want %v (a2 is banned)", a, a3)
	}
	b.Dialing(a3, now)
	if _, ok := b.NextDial(); ok || b.Queued() {
		t.Fatal("queue not empty")
	}
	// a1 connects, a3 fails; a dialing or connected address is not
	// queued again, a failed one after its backoff.
	b.DialDone(a1, TransportTCP)
	b.Connected(a1)
	b.Failed(a3, errors.New("refused"))
	b.RequeueDue(now.Add(500 * time.Millisecond))
	if b.Queued() {
		t.Fatal("requeued before the backoff")
	}
	b.RequeueDue(now.Add(time.Second))
	if a, ok := b.NextDial(); !ok || a != a3 {
		t.Fatalf("requeued %v %v, want %v", a, ok, a3)
	}
	b.Dialing(a3, now)
	b.Failed(a3, errSelf)
	b.RequeueDue(now.Add(time.Hour))
	if b.Queued() {
		t.Fatal("our own address queued again")
	}
	if got := b.Unconnected(); got != 1 {
		t.Fatalf("%d unconnected, want 1 (a3)", got)
	}
	b.Gone(a1, now)
	b.RetryAll()
	seen := map[netip.AddrPort]bool{}
	for a, ok := b.NextDial(); ok; a, ok = b.NextDial() {
		seen[a] = true
	}
	if !seen[a1] || !seen[a3] {
		t.Fatalf("RetryAll queued %v, want a1 and a3", seen)
	}
}

func TestAddrBookListening(t *testing.T) {
	b := newAddrBook(netip.AddrPort{})
	l := ap("10.0.0.9:6881")
	b.Listening(l)
	if !b.Has(l) || b.Source(l) != SourceIncoming || b.Unconnected() != 0 {
		t.Fatal("listen address of an incoming peer not known as connected")
	}
	b.Add([]netip.AddrPort{l}, SourceTracker)
	if b.Queued() {
		t.Fatal("connected address queued")
	}
	b.Gone(l, time.Now())
	if b.Unconnected() != 1 {
		t.Fatal("gone address still connected")
	}
}

func TestAddrBookBlame(t *testing.T) {
	b := newAddrBook(netip.AddrPort{})
	liar, helper := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	b.Add([]netip.AddrPort{ap("10.0.0.1:1"), ap("10.0.0.1:2"), ap("10.0.0.2:1")}, SourceTracker)
	// Shared blame costs each IP one point, sole blame two.
	got := b.Blame([]netip.Addr{liar, helper}, "bad")
	if len(got) != 2 || got[0].points != strikeShared || got[1].points != strikeShared {
		t.Fatalf("shared blame: %+v", got)
	}
	b.Credit([]netip.Addr{helper})
	if b.strikes[helper] != 0 {
		t.Fatalf("helper has %d points after a good piece", b.strikes[helper])
	}
	got = b.Blame([]netip.Addr{liar}, "bad")
	if got[0].points != strikeShared+strikeSole || got[0].banned {
		t.Fatalf("sole blame: %+v", got)
	}
	got = b.Blame([]netip.Addr{liar}, "bad")
	if !got[0].banned || !b.Banned(liar) || b.Banned(helper) {
		t.Fatalf("liar at %d points: banned %v", got[0].points, b.Banned(liar))
	}
	if b.Has(ap("10.0.0.1:1")) || b.Has(ap("10.0.0.1:2")) || !b.Has(ap("10.0.0.2:1")) {
		t.Fatal("the banned IP's addresses are still known, or others were forgotten")
	}
	if b.Ban(liar, "again") {
		t.Fatal("Ban of a banned IP reported new")
	}
	if ips := b.BannedIPs(); len(ips) != 1 || ips[0] != liar {
		t.Fatalf("banned %v", ips)
	}
	if !b.Banned(netip.MustParseAddr("::ffff:10.0.0.1")) {
		t.Fatal("v4-mapped form of a banned IP not banned")
	}
}

func TestPeerSourceString(t *testing.T) {
	for s, want := range map[PeerSource]string{
		SourceUser: "user", SourceOptions: "options", SourceTracker: "tracker",
		SourceDHT: "dht", SourcePex: "pex", SourceIncoming: "incoming", 99: "unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

func TestAddrBookParole(t *testing.T) {
	b := newAddrBook(netip.AddrPort{})
	ip := netip.MustParseAddr("10.0.0.1")
	if !b.Parole(ip) || b.Parole(ip) || !b.OnParole(ip) {
		t.Fatal("Parole did not take, or took twice")
	}
	if !b.EndParole(ip) || b.EndParole(ip) || b.OnParole(ip) {
		t.Fatal("EndParole did not take, or took twice")
	}
	b.Parole(ip)
	b.Ban(ip, "test")
	if b.OnParole(ip) || b.Parole(ip) {
		t.Fatal("a banned IP is on parole")
	}
}
