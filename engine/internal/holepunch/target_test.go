package holepunch

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestTargetConnect(t *testing.T) {
	relay := ap("203.0.113.9:6881")
	v := newView(Peer{Addr: ap("203.0.113.5:6881")})
	v.banned[ap("203.0.113.6:6881")] = true
	tg := NewTarget(TargetConfig{})
	conn := func(a string) Msg { return Msg{Type: Connect, Addr: ap(a)} }
	d, ok := tg.Connect(t0, relay, conn("203.0.113.1:40000"), v)
	want := Dial{Addr: ap("203.0.113.1:40000"), Transports: []Transport{UTP, TCP}, Attempts: 3, Every: time.Second}
	if !ok || !reflect.DeepEqual(d, want) {
		t.Fatalf("got %+v %v, want %+v", d, ok, want)
	}
	for name, m := range map[string]Msg{
		"repeat":                 conn("203.0.113.1:40000"),
		"connected":              conn("203.0.113.5:6881"),
		"banned":                 conn("203.0.113.6:6881"),
		"self":                   conn("198.51.100.1:6881"),
		"LAN from a public peer": conn("10.0.0.7:6881"),
		"loopback":               conn("127.0.0.1:6881"),
		"link-local v6":          conn("[fe80::2]:6881"),
		"rendezvous":             {Type: Rendezvous, Addr: ap("203.0.113.7:1")},
	} {
		if d, ok := tg.Connect(t0.Add(time.Second), relay, m, v); ok {
			t.Errorf("%s: dials %+v", name, d)
		}
	}
	// After Dedup the same address may be dialled again; IPv6 works alike.
	if _, ok := tg.Connect(t0.Add(11*time.Second), relay, conn("[::ffff:203.0.113.1]:40000"), v); !ok {
		t.Error("no dial after the dedup window")
	}
	if d, ok := tg.Connect(t0, relay, conn("[2001:db8::1]:6881"), v); !ok || d.Addr != ap("[2001:db8::1]:6881") {
		t.Errorf("IPv6: %+v %v", d, ok)
	}
	// A LAN relay may point us at its LAN.
	if _, ok := tg.Connect(t0, ap("10.0.0.1:6881"), conn("10.0.0.7:6881"), v); !ok {
		t.Error("LAN relay's LAN peer refused")
	}
	// A TCP-only client dials over TCP only.
	tcp := NewTarget(TargetConfig{Transports: []Transport{TCP}})
	if d, _ := tcp.Connect(t0, relay, conn("203.0.113.1:40000"), v); !reflect.DeepEqual(d.Transports, []Transport{TCP}) {
		t.Errorf("transports %v", d.Transports)
	}
}

func TestTargetRateLimits(t *testing.T) {
	v := newView()
	tg := NewTarget(TargetConfig{PerRelay: 4, Total: 6, MaxTracked: 8})
	addr := func(i int) Msg {
		return Msg{Type: Connect, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 1)}
	}
	dials := 0
	for i := range 10 {
		if _, ok := tg.Connect(t0, ap("198.51.100.9:1"), addr(i), v); ok {
			dials++
		}
	}
	if dials != 4 {
		t.Fatalf("one relay made us dial %d times, cap 4", dials)
	}
	for i := range 10 {
		if _, ok := tg.Connect(t0, ap("198.51.100.10:1"), addr(50+i), v); ok {
			dials++
		}
	}
	if dials != 6 {
		t.Fatalf("%d dials in a minute, total cap 6", dials)
	}
	if len(tg.recent) > 8 {
		t.Fatalf("%d recent addresses, cap 8", len(tg.recent))
	}
}

// TestTargetDone: a connect repeated while the first one's dial runs is
// ignored, and acted on once that dial is Done (the answer to a second
// rendezvous after a failed punch); Punched reports the dial meanwhile and
// the hole for HoleTTL after it.
func TestTargetDone(t *testing.T) {
	relay := ap("203.0.113.9:6881")
	peer := ap("203.0.113.1:40000")
	m := Msg{Type: Connect, Addr: peer}
	tg := NewTarget(TargetConfig{HoleTTL: time.Minute, MaxTracked: 2})
	v := newView()
	if tg.Punched(t0, peer) {
		t.Fatal("punched before any connect")
	}
	if _, ok := tg.Connect(t0, relay, m, v); !ok {
		t.Fatal("first connect ignored")
	}
	if !tg.Punched(t0.Add(time.Second), ap("[::ffff:203.0.113.1]:40000")) {
		t.Error("not punched while dialing")
	}
	if _, ok := tg.Connect(t0.Add(time.Second), relay, m, v); ok {
		t.Error("a repeat while dialing was acted on")
	}
	tg.Done(t0.Add(2*time.Second), peer)
	if !tg.Punched(t0.Add(61*time.Second), peer) {
		t.Error("the hole is forgotten before HoleTTL")
	}
	if tg.Punched(t0.Add(62*time.Second), peer) {
		t.Error("the hole is remembered past HoleTTL")
	}
	if _, ok := tg.Connect(t0.Add(2*time.Second), relay, m, v); !ok {
		t.Error("a connect after Done was ignored")
	}
	// The holes map stays within MaxTracked; expired holes make room.
	for i := range 5 {
		tg.Done(t0.Add(time.Duration(i)*time.Hour), netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), 1))
	}
	if len(tg.holes) > 2 {
		t.Fatalf("%d holes tracked, cap 2", len(tg.holes))
	}
	if !tg.Punched(t0.Add(4*time.Hour), ap("203.0.113.14:1")) {
		t.Error("the newest hole was not recorded")
	}
}
