package pex

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

const (
	// Interval is the least time between two messages we send to a peer
	// (libtorrent disconnects peers that send more often than once a
	// minute).
	Interval = 60 * time.Second
	// FloodWindow and FloodBurst define flooding: a message that arrives
	// when FloodBurst messages from the same peer were already received
	// within FloodWindow is refused. A burst is allowed because messages
	// sent a minute apart can arrive back to back after a stall (libtorrent
	// uses the same rule).
	FloodWindow = 60 * time.Second
	FloodBurst  = 6
	// MaxKnownPerPeer caps the addresses one peer may feed us over the
	// life of a connection; further ones are ignored.
	MaxKnownPerPeer = 1000
)

// ErrTooFrequent is returned by Receive for a message that breaks the
// FloodWindow/FloodBurst rule.
var ErrTooFrequent = errors.New("pex: messages too frequent")

// Swarm is the set of peers we may advertise, with their flags.
type Swarm struct {
	peers map[netip.AddrPort]wire.PexFlags
}

// Add records a connected peer (or updates its flags). Only add peers that
// others can connect to: ones we reached with an outgoing connection (set
// wire.PexReachable) or whose listen port we learned (pass that port).
func (s *Swarm) Add(addr netip.AddrPort, flags wire.PexFlags) {
	if s.peers == nil {
		s.peers = map[netip.AddrPort]wire.PexFlags{}
	}
	s.peers[canon(addr)] = flags
}

// Remove forgets a peer that disconnected.
func (s *Swarm) Remove(addr netip.AddrPort) { delete(s.peers, canon(addr)) }

// Len returns the number of peers.
func (s *Swarm) Len() int { return len(s.peers) }

// canon unmaps IPv4-mapped IPv6 addresses so one peer has one key.
func canon(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Sender tracks what one remote peer has been told.
type Sender struct {
	self netip.AddrPort
	told map[netip.AddrPort]bool
	last time.Time
	sent bool
}

// NewSender returns the sender for the remote peer at self, whose own
// address is never sent to it.
func NewSender(self netip.AddrPort) *Sender {
	return &Sender{self: canon(self), told: map[netip.AddrPort]bool{}}
}

// Next returns the message to send now, if any: none before Interval has
// passed since the last one, and none when nothing changed. Added peers are
// those in swarm this peer was not told of yet, dropped those it was told
// of that left swarm; at most wire.MaxPexSend of each, in address order,
// the rest kept for later messages. The first message lists the current
// swarm.
func (s *Sender) Next(now time.Time, swarm *Swarm) (wire.PexMsg, bool) {
	var m wire.PexMsg
	if s.sent && now.Sub(s.last) < Interval {
		return m, false
	}
	for addr, flags := range swarm.peers {
		if addr != s.self && !s.told[addr] {
			m.Added = append(m.Added, wire.PexPeer{Addr: addr, Flags: flags})
		}
	}
	for addr := range s.told {
		if _, ok := swarm.peers[addr]; !ok {
			m.Dropped = append(m.Dropped, addr)
		}
	}
	if len(m.Added) == 0 && len(m.Dropped) == 0 {
		return m, false
	}
	slices.SortFunc(m.Added, func(a, b wire.PexPeer) int { return a.Addr.Compare(b.Addr) })
	slices.SortFunc(m.Dropped, func(a, b netip.AddrPort) int { return a.Compare(b) })
	m.Added = m.Added[:min(len(m.Added), wire.MaxPexSend)]
	m.Dropped = m.Dropped[:min(len(m.Dropped), wire.MaxPexSend)]
	for _, p := range m.Added {
		s.told[p.Addr] = true
	}
	for _, a := range m.Dropped {
		delete(s.told, a)
	}
	s.last, s.sent = now, true
	return m, true
}

// Receiver checks and filters the ut_pex messages of one remote peer.
type Receiver struct {
	from   netip.Addr
	known  map[netip.AddrPort]bool
	recent []time.Time // receive times of the last FloodBurst messages, oldest first
}

// NewReceiver returns the receiver for messages from the peer at from.
func NewReceiver(from netip.Addr) *Receiver {
	return &Receiver{from: from.Unmap(), known: map[netip.AddrPort]bool{}}
}

// Receive parses a ut_pex payload received at now and returns the peers
// worth connecting to: new to this receiver, not private or loopback
// addresses unless the sender is also one, never IPv6 link-local
// addresses (useless without a zone), IPv4 ("added") and IPv6 ("added6")
// alike, each with its flags (wire.PexHolepunch marks peers that the
// sender can relay a BEP 55 rendezvous to); at most
// MaxKnownPerPeer over the receiver's life. dropped lists the addresses the
// sender no longer sees (they can be forgotten for this sender). A message
// that breaks the FloodWindow/FloodBurst rule gives ErrTooFrequent and
// nothing else.
func (r *Receiver) Receive(now time.Time, payload []byte) (added []wire.PexPeer, dropped []netip.AddrPort, err error) {
	if len(r.recent) == FloodBurst && now.Sub(r.recent[0]) < FloodWindow {
		return nil, nil, fmt.Errorf("%w: %d within %s", ErrTooFrequent, FloodBurst+1, now.Sub(r.recent[0]).Round(time.Second))
	}
	if len(r.recent) == FloodBurst {
		r.recent = append(r.recent[:0], r.recent[1:]...)
	}
	r.recent = append(r.recent, now)
	m, err := wire.ParsePex(payload)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range m.Dropped {
		a = canon(a)
		if r.known[a] {
			delete(r.known, a)
			dropped = append(dropped, a)
		}
	}
	for _, p := range m.Added {
		p.Addr = canon(p.Addr)
		a := p.Addr.Addr()
		if r.known[p.Addr] || len(r.known) >= MaxKnownPerPeer {
			continue
		}
		if local(a) && !local(r.from) {
			continue
		}
		if a.Is6() && a.IsLinkLocalUnicast() {
			continue // fe80::/10 means nothing without the sender's zone
		}
		r.known[p.Addr] = true
		added = append(added, p)
	}
	return added, dropped, nil
}

func local(a netip.Addr) bool {
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast()
}
