package holepunch

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeView is a torrent's connections for the policies.
type fakeView struct {
	peers  map[netip.AddrPort]Peer
	self   map[netip.AddrPort]bool
	banned map[netip.AddrPort]bool
}

func (v fakeView) Peer(a netip.AddrPort) (Peer, bool) { p, ok := v.peers[a]; return p, ok }
func (v fakeView) IsSelf(a netip.AddrPort) bool       { return v.self[a] }
func (v fakeView) Connected(a netip.AddrPort) bool    { _, ok := v.peers[a]; return ok }
func (v fakeView) Banned(a netip.AddrPort) bool       { return v.banned[a] }

func newView(peers ...Peer) fakeView {
	v := fakeView{peers: map[netip.AddrPort]Peer{}, self: map[netip.AddrPort]bool{ap("198.51.100.1:6881"): true}, banned: map[netip.AddrPort]bool{}}
	for _, p := range peers {
		v.peers[p.Addr] = p
	}
	return v
}

func TestRelayRendezvous(t *testing.T) {
	initiator := Peer{Addr: ap("203.0.113.1:40000"), Holepunch: true}
	target := Peer{Addr: ap("203.0.113.2:50000"), Holepunch: true}
	old := Peer{Addr: ap("203.0.113.3:6881")}
	lan := Peer{Addr: ap("192.168.1.5:6881"), Holepunch: true}
	v6 := Peer{Addr: ap("[2001:db8::2]:6881"), Holepunch: true}
	v := newView(initiator, target, old, lan, v6)
	rv := func(a string) Msg { return Msg{Type: Rendezvous, Addr: ap(a)} }
	refused := func(a string, code ErrCode) []Send {
		return []Send{{To: initiator.Addr, Msg: Msg{Type: Error, Addr: ap(a), Err: code}}}
	}
	tests := []struct {
		name string
		from Peer
		m    Msg
		want []Send
	}{
		{"bridged", initiator, rv("203.0.113.2:50000"), []Send{
			{To: initiator.Addr, Msg: Msg{Type: Connect, Addr: target.Addr}},
			{To: target.Addr, Msg: Msg{Type: Connect, Addr: initiator.Addr}}}},
		{"bridged over IPv6", initiator, rv("[2001:db8::2]:6881"), []Send{
			{To: initiator.Addr, Msg: Msg{Type: Connect, Addr: v6.Addr}},
			{To: v6.Addr, Msg: Msg{Type: Connect, Addr: initiator.Addr}}}},
		{"mapped target", initiator, rv("[::ffff:203.0.113.2]:50000"), []Send{
			{To: initiator.Addr, Msg: Msg{Type: Connect, Addr: target.Addr}},
			{To: target.Addr, Msg: Msg{Type: Connect, Addr: initiator.Addr}}}},
		{"not connected", initiator, rv("203.0.113.9:1"), refused("203.0.113.9:1", NotConnected)},
		{"no support", initiator, rv("203.0.113.3:6881"), refused("203.0.113.3:6881", NoSupport)},
		{"relay itself", initiator, rv("198.51.100.1:6881"), refused("198.51.100.1:6881", NoSelf)},
		{"initiator itself", initiator, rv("203.0.113.1:40000"), refused("203.0.113.1:40000", NoSelf)},
		{"LAN target for a public initiator", initiator, rv("192.168.1.5:6881"), refused("192.168.1.5:6881", NoSuchPeer)},
		{"link-local", initiator, rv("[fe80::1]:6881"), refused("[fe80::1]:6881", NoSuchPeer)},
		{"initiator without ut_holepunch", Peer{Addr: initiator.Addr}, rv("203.0.113.2:50000"), nil},
		{"not a rendezvous", initiator, Msg{Type: Connect, Addr: target.Addr}, nil},
	}
	r := NewRelay(RelayConfig{PerInitiator: 100, PerTarget: 100, Total: 100})
	for _, tt := range tests {
		if got := r.Rendezvous(t0, tt.from, tt.m, v); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	s := r.Stats()
	if s.Bridged != 3 || s.Refused[NoSelf] != 2 || s.Refused[NoSuchPeer] != 2 || s.Refused[NotConnected] != 1 || s.Refused[NoSupport] != 1 {
		t.Errorf("stats %+v", s)
	}
	// A LAN initiator may meet a LAN target.
	lan2 := Peer{Addr: ap("192.168.1.6:6881"), Holepunch: true}
	if got := r.Rendezvous(t0, lan2, rv("192.168.1.5:6881"), v); len(got) != 2 {
		t.Errorf("LAN to LAN: %+v", got)
	}
}

func TestRelayRateLimits(t *testing.T) {
	initiator := Peer{Addr: ap("203.0.113.1:40000"), Holepunch: true}
	target := Peer{Addr: ap("203.0.113.2:50000"), Holepunch: true}
	v := newView(initiator, target)
	m := Msg{Type: Rendezvous, Addr: target.Addr}
	r := NewRelay(RelayConfig{PerInitiator: 3, PerTarget: 5, Total: 8})
	served := 0
	for i := range 10 {
		if len(r.Rendezvous(t0.Add(time.Duration(i)*time.Second), initiator, m, v)) > 0 {
			served++
		}
	}
	if served != 3 || r.Stats().Throttled != 7 {
		t.Fatalf("one initiator served %d times in a minute (throttled %d), cap 3", served, r.Stats().Throttled)
	}
	// A minute later it is welcome again.
	if len(r.Rendezvous(t0.Add(70*time.Second), initiator, m, v)) != 2 {
		t.Fatal("initiator still throttled after a minute")
	}
	// Many initiators may not pester one target more than PerTarget times.
	now := t0.Add(3 * time.Minute)
	connects := 0
	for i := range 20 {
		p := Peer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), 1), Holepunch: true}
		v.peers[p.Addr] = p
		if len(r.Rendezvous(now, p, m, v)) == 2 {
			connects++
		}
	}
	if connects != 5 {
		t.Fatalf("target got %d connects in a minute, cap 5", connects)
	}
	// The total cap holds across targets and initiators.
	now = now.Add(2 * time.Minute)
	answered := 0
	for i := range 20 {
		p := Peer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 114, byte(i)}), 1), Holepunch: true}
		if len(r.Rendezvous(now, p, Msg{Type: Rendezvous, Addr: ap("203.0.113.250:1")}, v)) > 0 {
			answered++
		}
	}
	if answered != 8 {
		t.Fatalf("answered %d rendezvous in a minute, total cap 8", answered)
	}
}

func TestRelayTrackingBounded(t *testing.T) {
	r := NewRelay(RelayConfig{MaxTracked: 16, Total: 1 << 20})
	v := newView()
	for i := range 1000 {
		p := Peer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 1), Holepunch: true}
		r.Rendezvous(t0, p, Msg{Type: Rendezvous, Addr: ap("203.0.113.250:1")}, v)
	}
	if n := len(r.initiators.m); n > 16 {
		t.Fatalf("%d initiators tracked, cap 16", n)
	}
}
