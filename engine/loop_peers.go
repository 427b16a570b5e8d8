package engine

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/engine/internal/wire/bitfield"
)

// Events about connections.
type (
	newConnEvent struct {
		conn     net.Conn
		hs       handshakeResult
		outgoing bool
		took     chan bool // cap 1
	}
	dialResult struct {
		addr netip.AddrPort
		conn net.Conn
		hs   handshakeResult
		err  error
	}
)

// addPeers records peer addresses to dial (see addrBook.Add).
func (ls *loopState) addPeers(addrs []netip.AddrPort, source PeerSource) {
	if len(addrs) == 0 {
		return
	}
	n := ls.book.Add(addrs, source)
	ls.dirty = ls.dirty || n > 0
	ls.t.log.Debug("peers added", "source", source, "n", len(addrs), "new", n, "known", ls.book.Len(), "first", addrs[0])
}

// maybeDial starts outgoing connections while there is room.
func (ls *loopState) maybeDial() {
	t := ls.t
	if ls.paused {
		return
	}
	if ls.conns.halfOpen == 0 && ls.conns.len() >= t.c.cfg.MaxConnsPerTorrent && ls.book.Queued() && !ls.completed {
		// Every slot is taken and addresses wait: a useless peer
		// makes room.
		ls.evictForDials(time.Now())
	}
	for ls.conns.halfOpen < maxHalfOpen && ls.conns.len()+ls.conns.halfOpen < t.c.cfg.MaxConnsPerTorrent {
		if ls.info() != nil && ls.completed && ls.conns.len() >= t.c.cfg.MaxConnsPerTorrent/2 {
			return // a seed waits for leechers to come
		}
		a, ok := ls.book.NextDial()
		if !ok {
			return
		}
		if ls.conns.connectedTo(a) {
			continue
		}
		if !t.c.acquireConn() {
			// Retried at the next step of the loop (at the latest the
			// next tick); said once until a dial gets a slot again.
			ls.book.Unpop(a)
			if !ls.conns.starved {
				ls.conns.starved = true
				t.log.Info("no free connection slot for a dial; retrying", "max_conns", t.c.cfg.MaxConns)
			}
			return
		}
		ls.conns.starved = false
		ls.book.Dialing(a, time.Now())
		prefer := ls.book.Transport(a)
		ls.conns.halfOpen++
		ls.dirty = true
		t.goWorker(func() {
			conn, hs, err := dialPeer(ls.ctx, t.c.dial, a, prefer, t.infoHash, t.c.peerID, t.c.dht != nil, t.c.cfg.Encryption)
			if !t.post(dialResult{addr: a, conn: conn, hs: hs, err: err}) {
				if conn != nil {
					conn.Close()
				}
				t.c.releaseConn()
			}
		})
	}
}

func (ls *loopState) onDialResult(r dialResult) {
	ls.conns.halfOpen--
	ls.dirty = true
	if r.err != nil {
		ls.t.c.releaseConn()
		ls.book.Failed(r.addr, r.err)
		ls.hpDialFailed(r.addr)
		ls.t.log.Debug("dial failed", "peer", r.addr, "err", r.err)
		return
	}
	ls.book.DialDone(r.addr, r.hs.transport)
	if !ls.acceptConn(r.conn, r.hs, true) {
		r.conn.Close()
		ls.t.c.releaseConn()
	}
}

func (ls *loopState) onNewConn(ev newConnEvent) {
	ok := ls.acceptConn(ev.conn, ev.hs, ev.outgoing)
	ev.took <- ok
}

// acceptConn turns an established connection into a peer. When it reports
// false the caller closes conn and releases its slot.
func (ls *loopState) acceptConn(conn net.Conn, hs handshakeResult, outgoing bool) bool {
	t := ls.t
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil || ls.paused {
		return false
	}
	if ls.book.Banned(ap.Addr()) {
		return false
	}
	if ls.conns.hasClient(hs.peerID) {
		return false // already connected to that client
	}
	if !ls.roomFor(ap.Addr().Unmap(), time.Now()) {
		return false
	}
	if !hs.punched && ls.hpPunched(ap) {
		hs.punched = true // through the holes of a punch (see hpPunched)
	}
	p := newPeer(t, conn, hs, outgoing, ls.conns.newID())
	ls.conns.add(p)
	ls.dirty = true
	p.source = SourceIncoming
	if outgoing {
		p.source = ls.book.Source(p.addr)
		ls.book.Connected(p.addr)
	}
	if info := ls.info(); info != nil {
		p.have = bitfield.New(info.NumPieces())
	}
	if ls.pk != nil && ls.book.OnParole(p.addr.Addr()) {
		ls.pk.SetParole(p.id, true)
	}
	ls.hpConnected(p)
	p.log.Debug("peer connected", "outgoing", outgoing, "transport", hs.transport, "punched", hs.punched, "fast", hs.fast, "ext", hs.ext, "client", string(hs.peerID[:8]), "crypto", hs.cryptoName())
	if hs.ext {
		p.send(ls.ourExtHandshake(p))
	}
	ls.sendHaves(p)
	if d := t.c.dht; d != nil && hs.dht && !ls.private() {
		// BEP 5: tell DHT-capable peers where our node listens.
		p.send(wire.Message{ID: wire.Port, Port: d.Addr().Port()})
	}
	p.start()
	return true
}

// sendHaves sends our piece set to a new peer.
func (ls *loopState) sendHaves(p *peer) {
	info := ls.info()
	if info == nil {
		if p.hs.fast {
			p.send(wire.Message{ID: wire.HaveNone})
		}
		return
	}
	have := ls.store().Bitfield()
	bf := bitfield.FromBools(have)
	n := bf.Count()
	switch {
	case p.hs.fast && n == info.NumPieces():
		p.send(wire.Message{ID: wire.HaveAll})
	case p.hs.fast && n == 0:
		p.send(wire.Message{ID: wire.HaveNone})
	case n > 0:
		p.send(wire.Message{ID: wire.Bitfield, Data: bf.Bytes()})
	}
	if !p.hs.fast || n == 0 || ls.t.c.cfg.NoUpload {
		return
	}
	// BEP 6 allowed fast set: pieces the peer may request while choked
	// (only those we have, so that the grant means something).
	p.allowedOut = make(map[int]bool)
	for _, i := range wire.AllowedFastSet(p.addr.Addr(), ls.t.infoHash, info.NumPieces(), wire.DefaultAllowedFast) {
		if int(i) < len(have) && have[i] {
			p.allowedOut[int(i)] = true
			p.send(wire.Message{ID: wire.AllowedFast, Index: i})
		}
	}
}

// removePeer disconnects p and forgets its state. It is idempotent.
func (ls *loopState) removePeer(p *peer, reason string) {
	if p.removed {
		return
	}
	p.removed = true
	p.close(errors.New(reason))
	ls.conns.remove(p)
	ls.dirty = true
	if ls.pk != nil {
		if reqs := ls.pk.PeerGone(p.id); len(reqs) > 0 {
			ls.conns.refillAll = true
		}
	}
	now := time.Now()
	ls.book.Gone(p.addr, now)
	ls.book.Gone(p.listen, now)
	ls.t.c.releaseConn()
	ls.pexDropped(p)
	ls.hpGone(p)
	ls.metaPeerGone(p)
	p.log.Debug("peer removed", "reason", reason)
}

// dropPeer removes a peer that broke the protocol, logging why.
func (ls *loopState) dropPeer(p *peer, reason string) {
	if p.removed {
		return
	}
	p.log.Info("dropping peer", "reason", reason)
	ls.removePeer(p, reason)
}

// blame records a bad piece against the IPs that sent its blocks, banning
// those with too many points.
func (ls *loopState) blame(piece int, ips []netip.Addr) {
	for _, s := range ls.book.Blame(ips, "sent pieces that failed the hash check") {
		ls.t.log.Info("peer sent part of a bad piece", "ip", s.ip, "piece", piece, "points", s.points)
		if s.banned {
			ls.dropBanned(s.ip, "sent pieces that failed the hash check")
		}
	}
}

// setParole puts ip on parole or takes it off, telling the picker about
// its connected peers.
func (ls *loopState) setParole(ip netip.Addr, on bool) {
	changed := false
	if on {
		changed = ls.book.Parole(ip)
	} else {
		changed = ls.book.EndParole(ip)
	}
	if !changed || ls.pk == nil {
		return
	}
	for _, p := range ls.conns.fromIP(ip) {
		ls.pk.SetParole(p.id, on)
	}
}

// ban drops every connection from ip and never connects to it again.
func (ls *loopState) ban(ip netip.Addr, reason string) {
	if ls.book.Ban(ip, reason) {
		ls.dropBanned(ip, reason)
	}
}

// dropBanned drops the connections of an IP the book just banned.
func (ls *loopState) dropBanned(ip netip.Addr, reason string) {
	ls.t.log.Info("banned peer", "ip", ip, "reason", reason)
	ls.dirty = true
	for _, q := range ls.conns.fromIP(ip) {
		ls.dropPeer(q, "banned: "+reason)
	}
}

// isSeed reports whether p has every piece.
func (ls *loopState) isSeed(p *peer) bool {
	if ls.info() == nil {
		return p.haveAll
	}
	return p.haveAll || (p.have.Len() > 0 && p.have.All())
}
