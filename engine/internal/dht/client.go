package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/swarmfs/swarmfs/metainfo"
)

// ClientConfig configures a Client: one Config per family. At least one
// must be set.
type ClientConfig struct {
	// IPv4 configures the IPv4 node; its Network is set to "udp4". Nil
	// means no IPv4 node.
	IPv4 *Config
	// IPv6 configures the IPv6 node; its Network is set to "udp6". Nil
	// means no IPv6 node. A zero NodeID means the IPv4 node's id (BEP 32
	// recommends one id for both).
	IPv6 *Config
	// IPv6Optional lets NewClient go on without the IPv6 node when its
	// socket cannot be opened (a host without IPv6); the failure is logged
	// to the IPv6 Config's Logger and Node6 returns nil.
	IPv6Optional bool
}

// Client runs the IPv4 and the IPv6 DHT of BEP 32 side by side: two
// Nodes, each with its own socket and routing table, sharing one node id.
// Each answers a BEP 32 "want" for the other family from the other's
// table, and while one's table is small the other asks its own queries'
// answerers for nodes of that family and hands them over, so either DHT
// can be joined through the other. Lookups and announces run on both and
// their peers are merged. Its methods are safe for concurrent use.
type Client struct {
	n4, n6  *Node
	closing chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// NewClient starts the configured nodes and links them.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.IPv4 == nil && cfg.IPv6 == nil {
		return nil, errors.New("dht: client without an IPv4 or an IPv6 node")
	}
	c := &Client{closing: make(chan struct{})}
	if cfg.IPv4 != nil {
		c4 := *cfg.IPv4
		c4.Network = "udp4"
		n, err := New(c4)
		if err != nil {
			return nil, fmt.Errorf("dht: IPv4 node: %w", err)
		}
		c.n4 = n
	}
	if cfg.IPv6 != nil {
		c6 := *cfg.IPv6
		c6.Network = "udp6"
		if c6.NodeID.IsZero() && c.n4 != nil {
			c6.NodeID = c.n4.ID()
		}
		n, err := New(c6)
		switch {
		case err == nil:
			c.n6 = n
		case cfg.IPv6Optional && c.n4 != nil:
			c6.withDefaults().Logger.Info("dht: running without IPv6", "err", err)
		default:
			if c.n4 != nil {
				c.n4.Close()
			}
			return nil, fmt.Errorf("dht: IPv6 node: %w", err)
		}
	}
	if c.n4 != nil && c.n6 != nil {
		c.n4.sibling.Store(c.n6)
		c.n6.sibling.Store(c.n4)
	}
	return c, nil
}

// Node4 returns the IPv4 node, nil when there is none.
func (c *Client) Node4() *Node { return c.n4 }

// Node6 returns the IPv6 node, nil when there is none.
func (c *Client) Node6() *Node { return c.n6 }

func (c *Client) nodes() []*Node {
	var ns []*Node
	for _, n := range []*Node{c.n4, c.n6} {
		if n != nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// nodeFor returns the node of a's family, nil when there is none.
func (c *Client) nodeFor(a netip.Addr) *Node {
	if familyOf(a) == fam4 {
		return c.n4
	}
	return c.n6
}

// Addr returns the IPv4 node's address, or the IPv6 node's when there is
// no IPv4 node.
func (c *Client) Addr() netip.AddrPort { return c.nodes()[0].Addr() }

// Addrs returns the address of each node, IPv4 first.
func (c *Client) Addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range c.nodes() {
		out = append(out, n.Addr())
	}
	return out
}

// AddNode hands addr to the node of its family (BEP 32: a PORT message
// from a peer connected over IPv6 names an IPv6 DHT node).
func (c *Client) AddNode(addr netip.AddrPort) {
	if n := c.nodeFor(addr.Addr()); n != nil {
		n.AddNode(addr)
	}
}

// Bootstrap bootstraps every node at once and returns nil when at least
// one succeeded, else their errors joined.
func (c *Client) Bootstrap(ctx context.Context) error {
	return c.each(func(n *Node) error { return n.Bootstrap(ctx) })
}

// each runs f on every node concurrently; nil when any succeeded.
func (c *Client) each(f func(*Node) error) error {
	ns := c.nodes()
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// GetPeers runs a get_peers lookup on every node and merges their peers
// into one channel of deduplicated batches (IPv4 and IPv6 peers, as the
// nodes find them), closed when all lookups have ended. The caller must
// drain it or cancel ctx.
func (c *Client) GetPeers(ctx context.Context, infoHash metainfo.Hash) <-chan []netip.AddrPort {
	out := make(chan []netip.AddrPort, 16)
	ins := make([]<-chan []netip.AddrPort, 0, 2)
	for _, n := range c.nodes() {
		ins = append(ins, n.GetPeers(ctx, infoHash))
	}
	for len(ins) < 2 {
		ins = append(ins, nil)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(out)
		var seen peerDedup
		a, b := ins[0], ins[1]
		for a != nil || b != nil {
			var batch []netip.AddrPort
			var ok bool
			select {
			case batch, ok = <-a:
				if !ok {
					a = nil
				}
			case batch, ok = <-b:
				if !ok {
					b = nil
				}
			}
			// Keep reading after ctx ends or the client closes: the
			// nodes close their channels once their lookups stop.
			if fresh := seen.fresh(batch); len(fresh) > 0 {
				select {
				case out <- fresh:
				case <-ctx.Done():
				case <-c.closing:
				}
			}
		}
	}()
	return out
}

// peerDedup remembers up to maxSeen peers; beyond that, peers pass
// unfiltered.
type peerDedup map[netip.AddrPort]bool

func (d *peerDedup) fresh(batch []netip.AddrPort) []netip.AddrPort {
	if *d == nil {
		*d = map[netip.AddrPort]bool{}
	}
	var out []netip.AddrPort
	for _, p := range batch {
		if (*d)[p] {
			continue
		}
		if len(*d) < maxSeen {
			(*d)[p] = true
		}
		out = append(out, p)
	}
	return out
}

// Announce announces infoHash on every node at once (see Node.Announce)
// and returns the peers their lookups found, deduplicated, with nil error
// when at least one node's announce was accepted, else the errors joined.
func (c *Client) Announce(ctx context.Context, infoHash metainfo.Hash, port int, impliedPort bool) ([]netip.AddrPort, error) {
	var (
		mu    sync.Mutex
		peers []netip.AddrPort
		seen  peerDedup
	)
	err := c.each(func(n *Node) error {
		found, err := n.Announce(ctx, infoHash, port, impliedPort)
		mu.Lock()
		peers = append(peers, seen.fresh(found)...)
		mu.Unlock()
		return err
	})
	return peers, err
}

// Close closes both nodes (saving their state files) and waits for the
// client's goroutines. It returns the nodes' errors joined.
func (c *Client) Close() error {
	var errs []error
	c.once.Do(func() {
		close(c.closing)
		for _, n := range c.nodes() {
			errs = append(errs, n.Close())
		}
		c.wg.Wait()
	})
	return errors.Join(errs...)
}
