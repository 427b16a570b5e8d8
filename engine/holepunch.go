package engine

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/holepunch"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// extHolepunchID is the id we give ut_holepunch in our BEP 10 handshake.
const extHolepunchID = 4

// punchAttemptTimeout bounds one attempt of a punched dial (the uTP SYN
// is resent within it; both sides dial at once).
const punchAttemptTimeout = 5 * time.Second

// holepunchState is a torrent's BEP 55 state: the three policies of the
// holepunch package, used from the loop goroutine only. It is nil for a
// private torrent's loop until needed and never used then.
type holepunchState struct {
	relay     *holepunch.Relay
	initiator *holepunch.Initiator
	target    *holepunch.Target
}

// hp returns the torrent's holepunch state, made on first use.
func (ls *loopState) hp() *holepunchState {
	if ls.punch == nil {
		var trs []holepunch.Transport
		if ls.t.c.dial.utp4 != nil || ls.t.c.dial.utp6 != nil {
			trs = append(trs, holepunch.UTP)
		}
		if ls.t.c.dial.tcp {
			trs = append(trs, holepunch.TCP)
		}
		ls.punch = &holepunchState{
			relay:     holepunch.NewRelay(holepunch.RelayConfig{}),
			initiator: holepunch.NewInitiator(holepunch.InitiatorConfig{}),
			target:    holepunch.NewTarget(holepunch.TargetConfig{Transports: trs}),
		}
	}
	return ls.punch
}

// supportsHolepunch reports whether p announced ut_holepunch.
func supportsHolepunch(p *peer) bool {
	if p.ext == nil {
		return false
	}
	_, ok := p.ext.ID(holepunch.ExtName)
	return ok
}

// hpView is the holepunch policies' view of the torrent's connections.
type hpView struct{ ls *loopState }

// Peer finds the connected peer at addr (its remote or listen address).
func (v hpView) Peer(addr netip.AddrPort) (holepunch.Peer, bool) {
	for p := range v.ls.conns.peers {
		if p.addr == addr || p.listen == addr {
			return hpPeer(p), true
		}
	}
	return holepunch.Peer{}, false
}

// hpPeer describes p to the relay policy. Punches are uTP dials from the
// peer's UDP socket, which listens on its listen port: over a uTP
// connection the remote address is where its NAT maps that socket, so the
// other side aims there; over TCP the remote port is the NAT's mapping of
// a TCP socket, which no uTP packet would pass, and the remote IP with the
// listen port is the better aim (a port-preserving NAT keeps it).
func hpPeer(p *peer) holepunch.Peer {
	aim := p.addr
	if p.hs.transport == TransportTCP && p.listen.IsValid() && p.listen.Addr() == p.addr.Addr() {
		aim = p.listen
	}
	return holepunch.Peer{Addr: aim, Holepunch: supportsHolepunch(p)}
}

// IsSelf reports whether addr is one of our addresses.
func (v hpView) IsSelf(addr netip.AddrPort) bool {
	c := v.ls.t.c
	if addr == c.addr || addr == v.ls.book.self {
		return true
	}
	ext := c.externalIPv4()
	return ext.IsValid() && addr == netip.AddrPortFrom(ext, c.announcePort())
}

// Connected reports whether a connection to addr exists.
func (v hpView) Connected(addr netip.AddrPort) bool {
	_, ok := v.Peer(addr)
	return ok
}

// Banned reports whether addr's IP is banned.
func (v hpView) Banned(addr netip.AddrPort) bool { return v.ls.book.Banned(addr.Addr()) }

// hpSend sends holepunch messages to the connected peers they are for.
func (ls *loopState) hpSend(sends ...holepunch.Send) {
	for _, s := range sends {
		for p := range ls.conns.peers {
			if p.addr == s.To || p.listen == s.To {
				ls.sendExt(p, holepunch.ExtName, s.Msg.Append(nil))
				break
			}
		}
	}
}

// onHolepunch handles a ut_holepunch message from p.
func (ls *loopState) onHolepunch(p *peer, payload []byte) {
	if ls.private() {
		return
	}
	m, err := holepunch.Parse(payload)
	if err != nil {
		ls.dropPeer(p, fmt.Sprintf("bad ut_holepunch: %v", err))
		return
	}
	now := time.Now()
	h := ls.hp()
	switch m.Type {
	case holepunch.Rendezvous:
		ls.hpSend(h.relay.Rendezvous(now, hpPeer(p), m, hpView{ls})...)
	case holepunch.Connect:
		h.initiator.OnConnect(now, p.addr, m)
		if d, ok := h.target.Connect(now, p.addr, m, hpView{ls}); ok {
			ls.punchDial(d)
		}
	case holepunch.Error:
		p.log.Debug("holepunch error", "target", m.Addr, "code", m.Err)
		if s, ok := h.initiator.OnError(now, p.addr, m); ok {
			ls.hpSend(s)
		}
	}
}

// punchDial runs the dial of a connect message outside the dial queue:
// Attempts tries, Every apart, until one connects or a connection with
// the peer exists (its own dial may cross ours and come in first); the
// connection is handed to the loop as an outgoing, punched one. When the
// dial ends the target policy hears of it (Done), so that the answer to a
// later rendezvous is acted on again.
func (ls *loopState) punchDial(d holepunch.Dial) {
	t := ls.t
	if !t.c.acquireConn() {
		ls.punch.target.Done(time.Now(), d.Addr)
		return
	}
	t.log.Debug("punching", "peer", d.Addr)
	t.goWorker(func() {
		took := false
		defer func() {
			if !took {
				t.c.releaseConn()
			}
			_ = t.do(func() { ls.punch.target.Done(time.Now(), d.Addr) })
		}()
		for i := 0; i < d.Attempts; i++ {
			if i > 0 {
				select {
				case <-time.After(d.Every):
				case <-ls.ctx.Done():
					return
				}
			}
			connected := false
			if t.do(func() { connected = hpView{ls}.Connected(d.Addr) }) != nil || connected {
				return
			}
			ctx, cancel := context.WithTimeout(ls.ctx, punchAttemptTimeout)
			conn, hs, err := dialPeer(ctx, t.c.dial, d.Addr, TransportUnknown, t.infoHash, t.c.peerID, t.c.dht != nil, t.c.cfg.Encryption)
			cancel()
			if err != nil {
				t.log.Debug("punch attempt failed", "peer", d.Addr, "attempt", i+1, "err", err)
				continue
			}
			hs.punched = true
			// took is set only if the loop ran the function (and then
			// owns conn), whatever do returns.
			_ = t.do(func() {
				ls.book.Add([]netip.AddrPort{d.Addr}, SourceHolepunch)
				ls.book.Dialing(d.Addr, time.Now())
				ls.book.DialDone(d.Addr, hs.transport)
				took = ls.acceptConn(conn, hs, true)
			})
			if !took {
				conn.Close()
			}
			return
		}
	})
}

// hpPunched reports whether a connection with addr passes through holes
// a punch opened: we dial addr for a connect message or did so lately
// (the peer's own dial may cross ours and come in first, or the peer may
// reconnect through the holes), or we asked a relay for a rendezvous with
// it and wait for the answer. Such a connection counts as punched.
func (ls *loopState) hpPunched(addr netip.AddrPort) bool {
	if ls.punch == nil {
		return false
	}
	if ls.punch.target.Punched(time.Now(), addr) {
		return true
	}
	o, _ := ls.punch.initiator.Outcome(addr)
	return o == holepunch.Pending
}

// hpLearned feeds the initiator with PEX entries flagged as reachable
// through a rendezvous by the sender (which must support ut_holepunch).
func (ls *loopState) hpLearned(from *peer, added []wire.PexPeer) {
	if !supportsHolepunch(from) {
		return
	}
	now := time.Now()
	for _, a := range added {
		if a.Flags&wire.PexHolepunch != 0 {
			ls.hp().initiator.Learned(now, a.Addr, from.addr)
		}
	}
}

// hpDialFailed asks a relay for a rendezvous with addr, which we could not
// dial, when the initiator says one is due.
func (ls *loopState) hpDialFailed(addr netip.AddrPort) {
	if ls.punch == nil || ls.private() {
		return
	}
	if s, ok := ls.punch.initiator.DialFailed(time.Now(), addr); ok {
		ls.t.log.Debug("asking for a rendezvous", "peer", addr, "relay", s.To)
		ls.hpSend(s)
	}
}

// hpConnected and hpGone tell the initiator about connections.
func (ls *loopState) hpConnected(p *peer) {
	if ls.punch != nil {
		ls.punch.initiator.Connected(time.Now(), p.addr)
	}
}

func (ls *loopState) hpGone(p *peer) {
	if ls.punch != nil {
		ls.punch.initiator.RelayGone(p.addr)
	}
}

// hpTick ends unanswered rendezvous.
func (ls *loopState) hpTick(now time.Time) {
	if ls.punch != nil {
		ls.punch.initiator.Tick(now)
	}
}
