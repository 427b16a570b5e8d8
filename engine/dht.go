package engine

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/swarmfs/swarmfs/engine/internal/dht"
)

// startDHT starts the client's DHT node.
func startDHT(c *Client) (*dht.Node, error) {
	addr := c.cfg.DHTAddr
	if addr == "" {
		host, _, err := net.SplitHostPort(c.cfg.ListenAddr)
		if err != nil {
			host = ""
		}
		addr = net.JoinHostPort(host, strconv.Itoa(int(c.addr.Port())))
	}
	loop := len(c.cfg.DHTBootstrap) > 0
	for _, b := range c.cfg.DHTBootstrap {
		ap, err := netip.ParseAddrPort(b)
		if err != nil || !ap.Addr().IsLoopback() {
			loop = false
		}
	}
	bootstrap := c.cfg.DHTBootstrap
	n, err := dht.New(dht.Config{
		Addr:          addr,
		Bootstrap:     bootstrap,
		StateFile:     filepath.Join(c.cfg.CacheDir, "dht.state"),
		AllowLoopback: loop,
		AllowPrivate:  loop,
		Logger:        c.log.With("part", "dht"),
	})
	if err != nil {
		return nil, fmt.Errorf("engine: start DHT: %w", err)
	}
	return n, nil
}

// dhtPort handles a peer's BEP 5 port message: its DHT node joins ours.
func (ls *loopState) dhtPort(p *peer, port uint16) {
	if d := ls.t.c.dht; d != nil && port != 0 && !ls.private() {
		d.AddNode(netip.AddrPortFrom(p.addr.Addr(), port))
	}
}
