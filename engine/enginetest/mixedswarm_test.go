package enginetest

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"
)

// TestRouterKeepsPunchPort: a datagram from outside reaches a cone
// router's external port first (as one side of a hole punch does), then
// the host behind it sends from that port to the same peer. A router that
// answered the first one would give the host's flow another external port
// (seen: 7000 left as 64826); NetRouter drops unsolicited packets before
// connection tracking records them, so the port is kept, which is what the
// punch needs.
func TestRouterKeepsPunchPort(t *testing.T) {
	sim := NewNetSim(t)
	pub := sim.PublicHost("pub")
	r := sim.Router("home", ConeNAT)
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
	// Wait until the router has counted the punch dropped.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the router never saw the punch")
		}
		out, err := r.Run(context.Background(), sim.nft, "list", "chain", "ip", "netsim", "input")
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out); m != nil && m[1] != "0" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	punch.Close()
	l, err := pub.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(pub.Addr(), 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hc, err := h.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(h.Addr(), 7000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(pub.Addr(), 9000))); err != nil {
		t.Fatal(err)
	}
	_ = l.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, from, err := l.ReadFrom(make([]byte, 16))
	if err != nil {
		t.Fatalf("the host's datagram did not arrive: %v", err)
	}
	if port := from.(*net.UDPAddr).Port; port != 7000 {
		t.Errorf("the host's flow left from port %d, want 7000", port)
	}
}
