package holepunch

import (
	"net/netip"
	"time"
)

// Peer is what the relay knows of one connected peer.
type Peer struct {
	// Addr is where the other side must aim its punch: where the peer's
	// NAT lets the packets of its uTP socket out. That is the remote
	// address of a uTP connection; for a TCP connection the torrent loop
	// gives the remote IP with the peer's listen port.
	Addr netip.AddrPort
	// Holepunch reports whether it announced ut_holepunch in its BEP 10
	// handshake.
	Holepunch bool
}

// View is the relay's read-only view of the torrent's connections, given
// by the torrent loop.
type View interface {
	// Peer returns the connected peer reached at addr (its connection's
	// remote address, or its listen address when known).
	Peer(addr netip.AddrPort) (Peer, bool)
	// IsSelf reports whether addr is one of our own addresses.
	IsSelf(addr netip.AddrPort) bool
}

// Send is a message for the torrent loop to send on the connection to To.
type Send struct {
	To  netip.AddrPort
	Msg Msg
}

// RelayConfig configures a Relay. The zero value is valid.
type RelayConfig struct {
	// PerInitiator caps the rendezvous served for one initiator IP per
	// minute; more are dropped unanswered. 0 means 10.
	PerInitiator int
	// PerTarget caps the connect messages sent to one target IP per
	// minute, so that we are no one's tool to pester a peer. 0 means 10.
	PerTarget int
	// Total caps the rendezvous served per minute in all; 0 means 60.
	Total int
	// MaxTracked caps the IPs whose rates are tracked (each of the two
	// maps); 0 means 1024.
	MaxTracked int
}

// RelayStats counts a Relay's decisions.
type RelayStats struct {
	Bridged   int             // rendezvous answered with two connect messages
	Refused   map[ErrCode]int // rendezvous answered with an error, by code
	Throttled int             // rendezvous dropped by a rate limit
}

// Relay answers rendezvous messages for one torrent (BEP 55, the relaying
// peer's part). It is a plain type used by one goroutine.
type Relay struct {
	cfg        RelayConfig
	initiators windows
	targets    windows
	total      window
	stats      RelayStats
}

// NewRelay returns a Relay with cfg's defaults filled in.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.PerInitiator <= 0 {
		cfg.PerInitiator = 10
	}
	if cfg.PerTarget <= 0 {
		cfg.PerTarget = 10
	}
	if cfg.Total <= 0 {
		cfg.Total = 60
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1024
	}
	return &Relay{cfg: cfg, initiators: windows{max: cfg.MaxTracked}, targets: windows{max: cfg.MaxTracked},
		stats: RelayStats{Refused: map[ErrCode]int{}}}
}

// Stats returns a copy of the counters.
func (r *Relay) Stats() RelayStats {
	s := r.stats
	s.Refused = make(map[ErrCode]int, len(r.stats.Refused))
	for k, v := range r.stats.Refused {
		s.Refused[k] = v
	}
	return s
}

// Rendezvous answers a rendezvous message m received at now from the
// connected peer from. It returns the messages to send: a connect to each
// side (to the initiator the target's address as it named it, to the
// target the initiator's connection address), or an error to the initiator naming the target with
//
//   - NoSuchPeer when the target address is unusable, or one side is on a
//     local network and the other is not (they could not reach each other,
//     and a public peer must not learn our LAN's addresses);
//   - NoSelf when the target is us or the initiator itself;
//   - NotConnected when we have no connection to the target;
//   - NoSupport when the target did not announce ut_holepunch;
//
// or nothing when the message is not a rendezvous, the initiator did not
// announce ut_holepunch itself, or a rate limit is reached (silence: a
// flood must not make us send more).
func (r *Relay) Rendezvous(now time.Time, from Peer, m Msg, v View) []Send {
	if m.Type != Rendezvous || !from.Holepunch {
		return nil
	}
	if !allowAll(now, []*window{&r.total, r.initiators.get(from.Addr.Addr().Unmap(), now)}, []int{r.cfg.Total, r.cfg.PerInitiator}) {
		r.stats.Throttled++
		return nil
	}
	target := canon(m.Addr)
	refuse := func(code ErrCode) []Send {
		r.stats.Refused[code]++
		return []Send{{To: from.Addr, Msg: Msg{Type: Error, Addr: m.Addr, Err: code}}}
	}
	if !usable(target) || local(target.Addr()) != local(from.Addr.Addr()) {
		return refuse(NoSuchPeer)
	}
	if v.IsSelf(target) || target == canon(from.Addr) {
		return refuse(NoSelf)
	}
	p, ok := v.Peer(target)
	if !ok {
		return refuse(NotConnected)
	}
	if canon(p.Addr) == canon(from.Addr) {
		return refuse(NoSelf)
	}
	if !p.Holepunch {
		return refuse(NoSupport)
	}
	if !r.targets.get(p.Addr.Addr().Unmap(), now).allow(now, r.cfg.PerTarget) {
		r.stats.Throttled++
		return nil
	}
	r.stats.Bridged++
	return []Send{
		{To: from.Addr, Msg: Msg{Type: Connect, Addr: target}},
		{To: p.Addr, Msg: Msg{Type: Connect, Addr: from.Addr}},
	}
}
