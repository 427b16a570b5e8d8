package engine

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/portmap"
)

// pmpShift is what the test's NAT-PMP responder adds to an internal port
// to make the external one, so that a test can tell them apart.
const pmpShift = 1000

// startPMPResponder answers NAT-PMP (RFC 6886) on the router's LAN address:
// the external address, and mappings of port P to external port
// P+pmpShift, each installed as a real DNAT rule on the router (PCP gets
// "unsupported version", as a NAT-PMP-only router answers). It returns the
// mappings made, as "tcp 6881".
func startPMPResponder(t *testing.T, r *enginetest.NetRouter) func() []string {
	t.Helper()
	pc, err := r.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(r.Addr(), 5351).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	var mapped []string
	go func() {
		buf := make([]byte, 1100)
		ext := r.ExternalAddr().As4()
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			var out []byte
			switch {
			case n >= 2 && b[0] == 0 && b[1] == 0: // external address
				out = make([]byte, 12)
				out[1] = 128
				copy(out[8:], ext[:])
			case n >= 12 && b[0] == 0 && (b[1] == 1 || b[1] == 2): // map UDP, TCP
				proto := map[byte]string{1: "udp", 2: "tcp"}[b[1]]
				internal, lifetime := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint32(b[8:])
				extPort := internal + pmpShift
				if lifetime > 0 {
					to := netip.AddrPortFrom(from.(*net.UDPAddr).AddrPort().Addr().Unmap(), internal)
					if err := r.DNAT(proto, extPort, to); err != nil {
						t.Log(err)
						continue
					}
					mu.Lock()
					mapped = append(mapped, proto+" "+to.String())
					mu.Unlock()
				}
				out = make([]byte, 16)
				out[1] = 128 + b[1]
				binary.BigEndian.PutUint16(out[8:], internal)
				binary.BigEndian.PutUint16(out[10:], extPort)
				binary.BigEndian.PutUint32(out[12:], lifetime)
			case n >= 2 && b[0] == 2: // PCP
				out = []byte{0, 128 + b[1]&0x7f, 0, 1, 0, 0, 0, 0}
			default:
				continue
			}
			_, _ = pc.WriteTo(out, from)
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), mapped...)
	}
}

// TestPortMappedSeedReached: swarmfs seeds behind a NAT router, gets its
// TCP and UDP port mapped by the router's NAT-PMP responder, announces the
// router's external address and the mapped port, and a public libtorrent
// leecher given that address downloads from it through the kernel's NAT.
func TestPortMappedSeedReached(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	sim := enginetest.NewNetSim(t)
	r := sim.Router("home", enginetest.ConeNAT)
	alice := r.Host("alice")
	pub := sim.PublicHost("leech")
	mappings := startPMPResponder(t, r)
	f := makeFixture(t, "mapped", 16<<10, nil, 400000)
	c := newClientOn(t, alice, Config{NoDHT: true, NoLSD: true, portmap: &portmap.Config{
		Gateway: r.Addr(), Timeout: 3 * time.Second, NoUPnP: true,
		Dial: alice.DialContext, ListenPacket: alice.ListenPacket,
	}})
	tor := seedFixture(t, c, f)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	want := c.Addr().Port() + pmpShift
	for c.announcePort() != want || c.externalIPv4() != r.ExternalAddr() {
		select {
		case <-time.After(50 * time.Millisecond): // the client's watcher reads Changed
		case <-ctx.Done():
			t.Fatalf("announcing port %d and address %v, want %d and %v; mapper %+v", c.announcePort(), c.externalIPv4(), want, r.ExternalAddr(), c.mapper.Status())
		}
	}
	if got := mappings(); len(got) != 2 {
		t.Fatalf("mappings %q, want TCP and UDP", got)
	}
	ext := netip.AddrPortFrom(r.ExternalAddr(), want)
	leech := pub.StartLibtorrent(t, enginetest.LTOptions{Torrent: f.torrent, SavePath: t.TempDir(), Peers: []string{ext.String()}, ExitWhenDone: true})
	if _, _, err := leech.WaitDone(ctx); err != nil {
		t.Fatalf("public leecher through %v: %v; our stats %+v\n%s", ext, err, tor.Stats(), leech.Output())
	}
}
