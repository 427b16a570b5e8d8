package engine

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/swarmfs/swarmfs/engine/internal/dht"
)

// startDHT starts the client's DHT: a BEP 32 client with an IPv4 and an
// IPv6 node. Without Config.DHTAddr the nodes read the KRPC datagrams of
// the client's UDP sockets (shared with uTP); with it they open their own
// sockets there (both families on a wildcard host, the IPv6 one optional).
func startDHT(c *Client) (*dht.Client, error) {
	loop := len(c.cfg.DHTBootstrap) > 0
	for _, b := range c.cfg.DHTBootstrap {
		ap, err := netip.ParseAddrPort(b)
		if err != nil || !ap.Addr().IsLoopback() {
			loop = false
		}
	}
	node := func(state string) *dht.Config {
		return &dht.Config{
			Bootstrap:     c.cfg.DHTBootstrap,
			StateFile:     filepath.Join(c.cfg.CacheDir, state),
			AllowLoopback: loop,
			AllowPrivate:  loop,
			Logger:        c.log.With("part", "dht"),
		}
	}
	var cc dht.ClientConfig
	if addr := c.cfg.DHTAddr; addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("engine: DHT address %q: %w", addr, err)
		}
		ip, err := netip.ParseAddr(host)
		if host == "" || (err == nil && ip.IsUnspecified()) {
			cc.IPv4, cc.IPv6, cc.IPv6Optional = node("dht.state"), node("dht6.state"), true
			cc.IPv4.Addr, cc.IPv6.Addr = net.JoinHostPort("0.0.0.0", port), net.JoinHostPort("::", port)
		} else if err == nil && ip.Unmap().Is4() {
			cc.IPv4 = node("dht.state")
			cc.IPv4.Addr = addr
		} else {
			cc.IPv6 = node("dht6.state")
			cc.IPv6.Addr = addr
		}
	} else {
		if u := c.socks.udp4; u != nil {
			cc.IPv4 = node("dht.state")
			cc.IPv4.Conn = u.PacketConn()
		}
		if u := c.socks.udp6; u != nil {
			cc.IPv6 = node("dht6.state")
			cc.IPv6.Conn = u.PacketConn()
		}
	}
	d, err := dht.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("engine: start DHT: %w", err)
	}
	return d, nil
}

// dhtPort handles a peer's BEP 5 port message: its DHT node joins ours.
func (ls *loopState) dhtPort(p *peer, port uint16) {
	if d := ls.t.c.dht; d != nil && port != 0 && !ls.private() {
		d.AddNode(netip.AddrPortFrom(p.addr.Addr(), port))
	}
}
