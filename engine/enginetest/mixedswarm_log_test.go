package enginetest

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseSwarmfsPeerLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want PeerConn
		ok   bool
	}{
		{`time=2026-12-01T18:42:19.708Z level=DEBUG msg="peer connected" torrent=7bcb6190 peer=[2001:db8::2]:6881 outgoing=true transport=utp punched=false fast=true ext=true client=-LT2080- crypto="mse plaintext"`,
			PeerConn{Addr: netip.MustParseAddrPort("[2001:db8::2]:6881"), Transport: "utp", Outgoing: true}, true},
		{`time=2026-12-01T18:42:39.869Z level=DEBUG msg="peer connected" torrent=7bcb6190 peer=100.64.1.4:40122 outgoing=false transport=tcp punched=true fast=true ext=true client=-LT2080- crypto=none`,
			PeerConn{Addr: netip.MustParseAddrPort("100.64.1.4:40122"), Transport: "tcp", Punched: true}, true},
		// An IPv4-mapped address counts as the IPv4 one.
		{`level=DEBUG msg="peer connected" peer=[::ffff:100.64.0.3]:6881 outgoing=true transport=tcp`,
			PeerConn{Addr: netip.MustParseAddrPort("100.64.0.3:6881"), Transport: "tcp", Outgoing: true}, true},
		// The peer's chosen client name cannot replace the engine's attributes.
		{`level=DEBUG msg="peer connected" peer=100.64.0.3:6881 outgoing=true transport=tcp punched=false client="x peer=1.2.3.4:5 punched=true"`,
			PeerConn{Addr: netip.MustParseAddrPort("100.64.0.3:6881"), Transport: "tcp", Outgoing: true}, true},
		{`level=DEBUG msg="peer removed" peer=100.64.0.3:6881 reason="read: EOF"`, PeerConn{}, false},
		{`level=DEBUG msg="dial failed" peer=100.64.1.4:6881 err="peer connected"`, PeerConn{}, false},
		{`level=DEBUG msg="peer connected" peer=nonsense transport=tcp`, PeerConn{}, false},
		{`level=DEBUG msg="peer connected" peer=100.64.0.3:6881 transport=2`, PeerConn{}, false},
		{`mixed.bin: downloaded 16 MiB in 25s (655 KiB/s), verified`, PeerConn{}, false},
		{``, PeerConn{}, false},
	} {
		got, ok := ParseSwarmfsPeerLine(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseSwarmfsPeerLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseLTPeerLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want PeerConn
		ok   bool
	}{
		{"peer 100.64.0.3 6881 utp direct out", PeerConn{Addr: netip.MustParseAddrPort("100.64.0.3:6881"), Transport: "utp", Outgoing: true}, true},
		{"peer 2001:db8::6 6881 tcp punched in", PeerConn{Addr: netip.MustParseAddrPort("[2001:db8::6]:6881"), Transport: "tcp", Punched: true}, true},
		{"peer ::ffff:100.64.1.2 51234 utp direct in", PeerConn{Addr: netip.MustParseAddrPort("100.64.1.2:51234"), Transport: "utp"}, true},
		{"peer 100.64.0.3 6881 utp direct", PeerConn{}, false},
		{"peer 100.64.0.3 70000 utp direct out", PeerConn{}, false},
		{"peer 100.64.0.3 6881 udp direct out", PeerConn{}, false},
		{"peer 100.64.0.3 6881 utp maybe out", PeerConn{}, false},
		{"peer 100.64.0.3 6881 utp direct sideways", PeerConn{}, false},
		{"peer host 6881 utp direct out", PeerConn{}, false},
		{"done 12.000 1398101", PeerConn{}, false},
	} {
		got, ok := ParseLTPeerLine(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseLTPeerLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestReach: connections count once per swarm peer, by any of its
// addresses, in the swarm's order; other addresses are not the swarm's.
func TestReach(t *testing.T) {
	a := netip.MustParseAddr
	sw := &MixedSwarm{Peers: []*MixedPeer{
		{Name: "pub", ips: []netip.Addr{a("100.64.0.2"), a("fd64::2"), a("2001:db8::2")}},
		{Name: "cone", ips: []netip.Addr{a("100.64.1.1"), a("fd64::1:1"), a("2001:db8::1:1")}},
		{Name: "v6", ips: []netip.Addr{a("fd64::3"), a("2001:db8::3")}},
	}}
	r := sw.NewReach()
	conn := func(s, tr string, out bool) PeerConn {
		return PeerConn{Addr: netip.MustParseAddrPort(s), Transport: tr, Outgoing: out}
	}
	if got := r.Add(conn("100.64.0.2:6881", "utp", true)); got != "pub" {
		t.Fatalf("Add(pub) = %q", got)
	}
	r.Add(conn("[2001:db8::2]:6881", "tcp", true)) // pub again, by IPv6
	r.Add(conn("100.64.1.1:40000", "tcp", false))  // cone, from a NATed port
	if got := r.Add(conn("100.64.0.9:7000", "utp", true)); got != "" {
		t.Fatalf("Add(another client) = %q, want none of the swarm", got)
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
	if c, ok := r.Conn("pub"); !ok || c.Transport != "utp" || c.String() != "utp" {
		t.Errorf("Conn(pub) = %+v, %v: want the first connection, utp", c, ok)
	}
	if c, _ := r.Conn("cone"); c.String() != "tcp in" {
		t.Errorf("Conn(cone) = %q, want \"tcp in\"", c.String())
	}
	if m := r.Missed(); !slices.Equal(m, []string{"v6"}) {
		t.Errorf("Missed = %v, want [v6]", m)
	}
	if sw.PeerOf(a("::ffff:100.64.1.1")) != "cone" {
		t.Error("PeerOf does not unmap IPv4-mapped addresses")
	}
}
