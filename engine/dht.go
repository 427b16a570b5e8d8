package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/dht"
)

// dhtNode is the part of the DHT node the engine uses.
type dhtNode interface {
	Announce(ctx context.Context, infoHash [20]byte, port int, impliedPort bool) ([]netip.AddrPort, error)
	GetPeers(ctx context.Context, infoHash [20]byte) <-chan []netip.AddrPort
	AddNode(addr netip.AddrPort)
	Addr() netip.AddrPort
	Close() error
}

// dhtAdapter adapts *dht.Node (whose methods take metainfo.Hash) to dhtNode.
type dhtAdapter struct{ n *dht.Node }

func (a dhtAdapter) Announce(ctx context.Context, ih [20]byte, port int, implied bool) ([]netip.AddrPort, error) {
	return a.n.Announce(ctx, ih, port, implied)
}
func (a dhtAdapter) GetPeers(ctx context.Context, ih [20]byte) <-chan []netip.AddrPort {
	return a.n.GetPeers(ctx, ih)
}
func (a dhtAdapter) AddNode(addr netip.AddrPort) { a.n.AddNode(addr) }
func (a dhtAdapter) Addr() netip.AddrPort        { return a.n.Addr() }
func (a dhtAdapter) Close() error                { return a.n.Close() }

// startDHT starts the client's DHT node.
func startDHT(c *Client) (dhtNode, error) {
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
	return dhtAdapter{n}, nil
}

// dhtTorrent is a torrent's DHT state: a goroutine that announces and finds
// peers, delivering them on peers.
type dhtTorrent struct {
	peers  chan []netip.AddrPort
	cancel context.CancelFunc
	wake   chan struct{}
}

// dhtInterval is how often a torrent re-announces itself on the DHT.
const dhtInterval = 5 * time.Minute

// startDHT starts the torrent's DHT goroutine unless DHT is off or the
// torrent is private.
func (ls *loopState) startDHT() {
	t := ls.t
	d := t.c.dht
	if d == nil || ls.private() || ls.dhtT.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(ls.ctx)
	ls.dhtT = dhtTorrent{peers: make(chan []netip.AddrPort, 4), cancel: cancel, wake: make(chan struct{}, 1)}
	peers, wake := ls.dhtT.peers, ls.dhtT.wake
	port := int(t.c.addr.Port())
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		deliver := func(batch []netip.AddrPort) bool {
			select {
			case peers <- batch:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			// A get_peers lookup streams peers to the torrent as nodes
			// answer, while the announce (its own lookup, then
			// announce_peer) runs beside it: dead nodes in the table slow
			// the announce down by their query timeouts, but not the
			// first peers.
			actx, acancel := context.WithTimeout(ctx, time.Minute)
			streamed := make(chan int, 1)
			go func() {
				n := 0
				for batch := range d.GetPeers(actx, t.infoHash) {
					if len(batch) > 0 && deliver(batch) {
						n += len(batch)
					}
				}
				streamed <- n
			}()
			found, err := d.Announce(actx, t.infoHash, port, false)
			if err != nil {
				t.log.Debug("dht announce", "err", err, "peers", len(found))
			}
			n := <-streamed
			acancel()
			if len(found) > 0 && !deliver(found) {
				return
			}
			wait := dhtInterval
			if len(found) == 0 && n == 0 {
				wait = 30 * time.Second
			}
			select {
			case <-time.After(wait):
			case <-wake:
			case <-ctx.Done():
				return
			}
		}
	}()
}

func (ls *loopState) stopDHT() {
	if ls.dhtT.cancel != nil {
		ls.dhtT.cancel()
		ls.dhtT = dhtTorrent{}
	}
}

// dhtPort handles a peer's BEP 5 port message: its DHT node joins ours.
func (ls *loopState) dhtPort(p *peer, port uint16) {
	if d := ls.t.c.dht; d != nil && port != 0 && !ls.private() {
		d.AddNode(netip.AddrPortFrom(p.addr.Addr(), port))
	}
}
