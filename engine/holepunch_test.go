package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/holepunch"
)

// TestHolepunchRendezvousThroughRelay: swarmfs behind one NAT router and
// a libtorrent seeder behind another (no port mapping, holepunch on) both
// connect to a public libtorrent peer, the relay. We learn the seeder's
// address from the relay's PEX (flagged as reachable through it), fail to
// dial it, and send the relay a rendezvous: the seeder's outcome leaves
// "unknown" and a rendezvous is counted as sent. (The punched connection
// itself does not come up with libtorrent as the target in this
// simulation yet: the punch dials that follow connect messages get no
// answer from the seeder.)
func TestHolepunchRendezvousThroughRelay(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	sim := enginetest.NewNetSim(t)
	relayHost := sim.PublicHost("relay")
	ra, rb := sim.Router("homea", enginetest.ConeNAT), sim.Router("homeb", enginetest.ConeNAT)
	alice, bob := ra.Host("alice"), rb.Host("bob")
	f := makeFixture(t, "punched", 16<<10, nil, 2<<20)
	// Seeds keep their connections to seeds, so that the relay stays
	// connected to the seeder once it has everything too.
	utpToo := map[string]any{"enable_incoming_utp": true, "enable_outgoing_utp": true, "close_redundant_connections": false}
	relay := relayHost.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: t.TempDir(), Settings: utpToo})
	seeder := bob.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: f.dir, Peers: []string{relay.Addr}, Settings: utpToo})
	seeder.WaitSeeding(t, time.Minute)
	c := newClientOn(t, alice, Config{NoDHT: true, NoLSD: true, NoPortMapping: true, Transports: []Transport{TransportUTP}})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{addrPort(t, relay.Addr)}})
	if err != nil {
		t.Fatal(err)
	}
	seederAt := addrPort(t, seeder.Addr)
	want := netip.AddrPortFrom(rb.ExternalAddr(), seederAt.Port())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		var outcome holepunch.Outcome
		var sent int
		if err := tor.do(func() {
			if tor.ls.punch != nil {
				outcome, _ = tor.ls.punch.initiator.Outcome(want)
				sent = tor.ls.punch.initiator.Stats().Sent
			}
		}); err != nil {
			t.Fatal(err)
		}
		if outcome != holepunch.Unknown && sent > 0 {
			t.Logf("rendezvous for %v through the relay: %v", want, outcome)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no rendezvous for %v; outcome %v; peers %+v\nrelay:\n%s\nseeder:\n%s",
				want, outcome, tor.Peers(), relay.Output(), seeder.Output())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
