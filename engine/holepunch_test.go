package engine

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// punchSettings are the libtorrent settings of every peer in the hole
// punching tests: uTP on (BEP 55 punches over uTP), seeds keep their
// connections to peers that want nothing (the relay stays connected to
// both sides), and alerts are printed for the failure output.
var punchSettings = map[string]any{
	"enable_incoming_utp": true, "enable_outgoing_utp": true,
	"close_redundant_connections": false, "alert_mask": 0xffffffff,
}

// punchSim is a simulated internet for the hole punching tests: a public
// host for the relay and two cone-NAT home routers without port forwards,
// alice behind the first and bob behind the second.
type punchSim struct {
	sim        *enginetest.NetSim
	relayHost  *enginetest.NetHost
	ra, rb     *enginetest.NetRouter
	alice, bob *enginetest.NetHost
}

func newPunchSim(t *testing.T) *punchSim {
	enginetest.RequireLibtorrent(t)
	s := &punchSim{sim: enginetest.NewNetSim(t)}
	s.relayHost = s.sim.PublicHost("relay")
	s.ra, s.rb = s.sim.Router("homea", enginetest.ConeNAT), s.sim.Router("homeb", enginetest.ConeNAT)
	s.alice, s.bob = s.ra.Host("alice"), s.rb.Host("bob")
	return s
}

// startRelay starts a public libtorrent peer in upload mode: it never
// has a piece to give, so that what alice and bob exchange must flow over
// a connection between them.
func (s *punchSim) startRelay(t *testing.T, f *fixture) *enginetest.LT {
	return s.relayHost.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: t.TempDir(),
		UploadMode: true, Settings: punchSettings})
}

// punchedPeer returns our connection to a peer behind router r.
func punchedPeer(tor *Torrent, r *enginetest.NetRouter) (PeerInfo, bool) {
	for _, p := range tor.Peers() {
		if p.Addr.Addr().Unmap() == r.ExternalAddr() {
			return p, true
		}
	}
	return PeerInfo{}, false
}

// requirePunched waits until tor holds a punched uTP connection to the
// peer behind r that moved payload (moved reports it for the peer), and
// fails t at ctx's deadline. Peers is a snapshot the loop publishes now
// and then, so the counters may lag behind the transfer a little.
func requirePunched(t *testing.T, ctx context.Context, tor *Torrent, r *enginetest.NetRouter, moved func(PeerInfo) bool, logs ...*enginetest.LT) {
	t.Helper()
	for {
		p, ok := punchedPeer(tor, r)
		if ok && p.Punched && p.Transport == TransportUTP && moved(p) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("connection to the peer behind %v: %+v (found %v), want punched over uTP with payload; peers %+v%s",
				r.ExternalAddr(), p, ok, tor.Peers(), ltLogs(logs))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ltLogs joins the output of libtorrent sessions for a failure message,
// with the holepunch and connection alerts first.
func ltLogs(logs []*enginetest.LT) string {
	var b strings.Builder
	for i, l := range logs {
		var hp []string
		for _, line := range strings.Split(l.Output(), "\n") {
			if strings.Contains(line, "HOLEPUNCH") || strings.Contains(line, "CONNECTION") || strings.Contains(line, "INCOMING") {
				hp = append(hp, line)
			}
		}
		fmt.Fprintf(&b, "\nlibtorrent %d (%s) holepunch and connection lines:\n%s", i, l.Addr, strings.Join(hp, "\n"))
	}
	return b.String()
}

// TestHolepunchFromNATedLibtorrentSeeder: swarmfs behind one cone NAT
// (no port mapping, uTP only) downloads from a libtorrent seeder behind
// another; neither can dial the other. Both connect to a public libtorrent
// relay that has no piece; its PEX names the seeder to us with the
// holepunch flag, our direct dial fails, our rendezvous through the relay
// makes both sides dial at once, and the connection comes up through the
// punched holes: the download completes and verifies, and the peer shows
// as punched over uTP.
func TestHolepunchFromNATedLibtorrentSeeder(t *testing.T) {
	s := newPunchSim(t)
	f := makeFixture(t, "punched", 16<<10, nil, 2<<20)
	relay := s.startRelay(t, f)
	// Without ut_pex the seeder never learns of us and never dials us on
	// its own: a connection can only come from the rendezvous we ask for.
	seeder := s.bob.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: f.dir,
		Peers: []string{relay.Addr}, NoPEX: true, Settings: punchSettings})
	seeder.WaitSeeding(t, time.Minute)
	c := newClientOn(t, s.alice, Config{NoDHT: true, NoLSD: true, NoPortMapping: true, Transports: []Transport{TransportUTP}})
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true, Peers: []netip.AddrPort{addrPort(t, relay.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case <-tor.Complete():
	case <-ctx.Done():
		t.Fatalf("no download through a punched hole: %v; peers %+v%s", tor.Stats(), tor.Peers(), ltLogs([]*enginetest.LT{relay, seeder}))
	}
	checkFiles(t, ctx, tor, f)
	requirePunched(t, ctx, tor, s.rb, func(p PeerInfo) bool { return p.Downloaded > 0 }, relay, seeder)
}

// TestHolepunchToNATedSwarmfsSeeder is the reverse: a libtorrent leecher
// behind a cone NAT downloads from a swarmfs seeder behind another, the
// hole punched through a public libtorrent relay. Here libtorrent asks for
// the rendezvous and swarmfs is the target.
func TestHolepunchToNATedSwarmfsSeeder(t *testing.T) {
	s := newPunchSim(t)
	f := makeFixture(t, "punchseed", 16<<10, nil, 1<<20)
	relay := s.startRelay(t, f)
	// A seed with one connection in three slots dials no PEX peer: the
	// leecher's connection can only come from its rendezvous.
	c := newClientOn(t, s.alice, Config{NoDHT: true, NoLSD: true, NoPortMapping: true, MaxConnsPerTorrent: 3,
		Transports: []Transport{TransportUTP}})
	tor, err := c.AddTorrent(f.mi, AddOptions{DataDir: f.dir, Peers: []netip.AddrPort{addrPort(t, relay.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "the seeder's check of its data", tor)
	leecher := s.bob.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: t.TempDir(),
		Peers: []string{relay.Addr}, Settings: punchSettings})
	if _, _, err := leecher.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent leecher: %v; our peers %+v%s", err, tor.Peers(), ltLogs([]*enginetest.LT{relay, leecher}))
	}
	requirePunched(t, ctx, tor, s.rb, func(p PeerInfo) bool { return p.Uploaded > 0 }, relay, leecher)
}

// TestHolepunchThroughSwarmfsRelay: as TestHolepunchFromNATedLibtorrentSeeder,
// with a public swarmfs client as the relay (uTP only, no reader and no
// prefetch, so it downloads nothing): its PEX names the seeder with the
// holepunch flag, and it answers our rendezvous with connect messages to
// both sides.
func TestHolepunchThroughSwarmfsRelay(t *testing.T) {
	s := newPunchSim(t)
	f := makeFixture(t, "punchrelay", 16<<10, nil, 1<<20)
	rc := newClientOn(t, s.relayHost, Config{NoDHT: true, NoLSD: true, NoPortMapping: true, Transports: []Transport{TransportUTP}})
	rtor, err := rc.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	relayAddr := netip.AddrPortFrom(s.relayHost.Addr(), rc.Addr().Port())
	seeder := s.bob.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: f.dir,
		Peers: []string{relayAddr.String()}, NoPEX: true, Settings: punchSettings})
	seeder.WaitSeeding(t, time.Minute)
	c := newClientOn(t, s.alice, Config{NoDHT: true, NoLSD: true, NoPortMapping: true, Transports: []Transport{TransportUTP}})
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true, Peers: []netip.AddrPort{relayAddr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	select {
	case <-tor.Complete():
	case <-ctx.Done():
		t.Fatalf("no download through a hole punched by a swarmfs relay: %v; peers %+v; relay's peers %+v%s",
			tor.Stats(), tor.Peers(), rtor.Peers(), ltLogs([]*enginetest.LT{seeder}))
	}
	checkFiles(t, ctx, tor, f)
	requirePunched(t, ctx, tor, s.rb, func(p PeerInfo) bool { return p.Downloaded > 0 }, seeder)
	var bridged int
	if err := rtor.do(func() {
		if rtor.ls.punch != nil {
			bridged = rtor.ls.punch.relay.Stats().Bridged
		}
	}); err != nil {
		t.Fatal(err)
	}
	if bridged == 0 {
		t.Fatal("the swarmfs relay bridged no rendezvous")
	}
}

// TestHPPeerAim: a relay aims the other side of a punch at a uTP peer's
// remote address (its UDP socket's NAT mapping), and at a TCP peer's IP
// with its listen port (the remote port maps a TCP socket).
func TestHPPeerAim(t *testing.T) {
	remote := netip.MustParseAddrPort("203.0.113.5:40001")
	listen := netip.MustParseAddrPort("203.0.113.5:6881")
	for _, tc := range []struct {
		tr     Transport
		listen netip.AddrPort
		want   netip.AddrPort
	}{
		{TransportUTP, listen, remote},
		{TransportTCP, listen, listen},
		{TransportTCP, netip.AddrPort{}, remote},
		{TransportTCP, netip.MustParseAddrPort("198.51.100.1:6881"), remote}, // another IP: not trusted
	} {
		p := &peer{addr: remote, listen: tc.listen, hs: handshakeResult{transport: tc.tr}}
		if got := hpPeer(p).Addr; got != tc.want {
			t.Errorf("%v with listen %v: aim %v, want %v", tc.tr, tc.listen, got, tc.want)
		}
	}
}
