package engine

import (
	"context"
	"net/netip"

	"github.com/swarmfs/swarmfs/engine/internal/portmap"
)

// startPortMap asks the home router to forward the client's port (TCP and
// UDP) with one Mapper (PCP, NAT-PMP, UPnP IGD), and starts the goroutine
// that re-announces the torrents when the external address or port
// changes.
func (c *Client) startPortMap() {
	pc := portmap.Config{}
	if c.cfg.portmap != nil {
		pc = *c.cfg.portmap
	}
	pc.Logger = c.log.With("part", "portmap")
	port := c.addr.Port()
	var ports []portmap.Port
	if c.socks.tcp != nil {
		ports = append(ports, portmap.Port{Proto: portmap.TCP, Internal: port})
	}
	if c.socks.udp4 != nil {
		ports = append(ports, portmap.Port{Proto: portmap.UDP, Internal: port})
	}
	c.mapper = portmap.Start(context.Background(), pc, ports...)
	c.wg.Add(1)
	go c.watchPortMap()
}

// announcePort is the port announced to trackers and the DHT: the
// external port the router maps to our TCP port (or UDP port, without
// TCP), else our own.
func (c *Client) announcePort() uint16 {
	if c.mapper != nil {
		st := c.mapper.Status()
		proto := portmap.TCP
		if c.socks.tcp == nil {
			proto = portmap.UDP
		}
		if p := st.ExternalPort(portmap.Port{Proto: proto, Internal: c.addr.Port()}); p != 0 {
			return p
		}
	}
	return c.addr.Port()
}

// externalIPv4 is the router's external IPv4 address once a mapping
// told it, else the zero Addr. Trackers get it as BEP 7's "ipv4=".
func (c *Client) externalIPv4() netip.Addr {
	if c.mapper != nil {
		st := c.mapper.Status()
		if a := st.External.Unmap(); a.Is4() && len(st.Mappings) > 0 {
			return a
		}
	}
	return netip.Addr{}
}

// watchPortMap restarts the torrents' tracker announcers when the
// announced port or external address changes, so that trackers learn
// where the router forwards. The DHT announces read announcePort each
// round.
func (c *Client) watchPortMap() {
	defer c.wg.Done()
	port, ip := c.announcePort(), c.externalIPv4()
	for {
		select {
		case <-c.mapper.Changed():
		case <-c.closed:
			return
		}
		p, a := c.announcePort(), c.externalIPv4()
		if p == port && a == ip {
			continue
		}
		port, ip = p, a
		c.log.Info("announcing the mapped address", "port", p, "external", a)
		for _, t := range c.Torrents() {
			ctx, cancel := context.WithTimeout(context.Background(), lsdDeliverTimeout)
			_ = t.doCtx(ctx, func() {
				if t.ls.ann.trk != nil {
					t.ls.stopTrackers()
					t.ls.startTrackers()
				}
			})
			cancel()
		}
	}
}
