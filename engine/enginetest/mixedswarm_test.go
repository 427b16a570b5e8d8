package enginetest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestDropUnsolicitedKeepsPunchPort: a datagram from outside reaches a cone
// router's external port first (as one side of a hole punch does), then
// the host behind it sends from that port to the same peer. A router that
// answered the first one gave the host's flow another external port; one
// that drops unsolicited packets (DropUnsolicited) keeps the port, which
// is what the punch needs.
func TestDropUnsolicitedKeepsPunchPort(t *testing.T) {
	for _, drop := range []bool{false, true} {
		sim := NewNetSim(t)
		pub := sim.PublicHost("pub")
		r := sim.Router("home", ConeNAT)
		if drop {
			if err := r.DropUnsolicited(); err != nil {
				t.Fatal(err)
			}
		}
		h := r.Host("h")
		ext := netip.AddrPortFrom(r.ExternalAddr(), 7000)
		var punch *net.UDPConn
		if err := pub.Do(func() (err error) {
			punch, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.IP(pub.Addr().AsSlice()), Port: 9000}, net.UDPAddrFromAddrPort(ext))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := punch.Write([]byte("punch")); err != nil {
			t.Fatal(err)
		}
		// Wait until the router has seen the punch: it answered (the
		// connected socket reads ECONNREFUSED) or counted it dropped.
		deadline := time.Now().Add(20 * time.Second)
		for seen := false; !seen; {
			if time.Now().After(deadline) {
				t.Fatalf("drop=%v: the router never saw the punch", drop)
			}
			if drop {
				out, err := r.Run(context.Background(), sim.nft, "list", "chain", "ip", "netsim", "input")
				if err != nil {
					t.Fatal(err)
				}
				m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
				seen = m != nil && m[1] != "0"
				time.Sleep(20 * time.Millisecond)
				continue
			}
			_ = punch.SetReadDeadline(time.Now().Add(time.Second))
			_, err := punch.Read(make([]byte, 16))
			seen = errors.Is(err, syscall.ECONNREFUSED)
		}
		punch.Close()
		l, err := pub.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(pub.Addr(), 9000).String())
		if err != nil {
			t.Fatal(err)
		}
		hc, err := h.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(h.Addr(), 7000).String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(pub.Addr(), 9000))); err != nil {
			t.Fatal(err)
		}
		_ = l.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, from, err := l.ReadFrom(make([]byte, 16))
		if err != nil {
			t.Fatalf("drop=%v: the host's datagram did not arrive: %v", drop, err)
		}
		l.Close()
		hc.Close()
		port := from.(*net.UDPAddr).Port
		t.Logf("drop=%v: the host's port 7000 left as %s", drop, strconv.Itoa(port))
		if drop && port != 7000 {
			t.Errorf("with DropUnsolicited the host's flow left from port %d, want 7000", port)
		}
		if !drop && port == 7000 {
			t.Errorf("without DropUnsolicited the port was kept: the test no longer shows why the drop is needed")
		}
	}
}
