package engine

import (
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
)

// conns holds a torrent's connected peers by pointer and by picker id, the
// outgoing dials in flight, and the peers whose request pipelines need
// topping up. Used from the loop goroutine only.
type conns struct {
	peers    map[*peer]struct{}
	byID     map[picker.PeerID]*peer
	perIP    map[netip.Addr]int // connected peers per IP
	nextID   picker.PeerID
	halfOpen int  // outgoing dials in flight
	starved  bool // a dial found no free connection slot of the client (logged once)

	lastEvict time.Time // the last eviction of a useless peer

	refill    map[*peer]bool // peers whose request pipeline needs topping up
	refillAll bool
}

func newConns() conns {
	return conns{
		peers:  make(map[*peer]struct{}),
		byID:   make(map[picker.PeerID]*peer),
		perIP:  make(map[netip.Addr]int),
		refill: make(map[*peer]bool),
	}
}

// newID returns the picker id of the next peer.
func (c *conns) newID() picker.PeerID {
	c.nextID++
	return c.nextID
}

func (c *conns) add(p *peer) {
	c.peers[p] = struct{}{}
	c.byID[p.id] = p
	c.perIP[p.addr.Addr()]++
}

func (c *conns) remove(p *peer) {
	if _, ok := c.peers[p]; !ok {
		return
	}
	delete(c.peers, p)
	delete(c.byID, p.id)
	delete(c.refill, p)
	if c.perIP[p.addr.Addr()]--; c.perIP[p.addr.Addr()] <= 0 {
		delete(c.perIP, p.addr.Addr())
	}
}

// len returns the number of connected peers.
func (c *conns) len() int { return len(c.peers) }

// get returns the peer with picker id id, or nil.
func (c *conns) get(id picker.PeerID) *peer { return c.byID[id] }

// connectedTo reports whether a connection to addr exists.
func (c *conns) connectedTo(a netip.AddrPort) bool {
	for p := range c.peers {
		if p.addr == a {
			return true
		}
	}
	return false
}

// hasClient reports whether a peer with that peer id is connected.
func (c *conns) hasClient(id [20]byte) bool {
	for p := range c.peers {
		if p.hs.peerID == id {
			return true
		}
	}
	return false
}

// fromIP returns the connected peers at ip.
func (c *conns) fromIP(ip netip.Addr) []*peer {
	var out []*peer
	for p := range c.peers {
		if p.addr.Addr() == ip {
			out = append(out, p)
		}
	}
	return out
}

// wantRefill marks p's request pipeline for topping up.
func (c *conns) wantRefill(p *peer) { c.refill[p] = true }

// clearRefill clears the refill marks.
func (c *conns) clearRefill() {
	clear(c.refill)
	c.refillAll = false
}
