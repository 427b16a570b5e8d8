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

// addCandidates records peer addresses to dial. The set is capped at
// maxKnownPeers, and addresses learned through ut_pex at maxPexKnown of
// them, so that hostile peers cannot crowd out those from trackers and the
// DHT; addresses the user gives (AddPeers, AddOptions.Peers, magnet x.pe)
// always get in, in place of an unconnected address learned otherwise.
func (ls *loopState) addCandidates(addrs []netip.AddrPort, source string) {
	if len(addrs) == 0 {
		return
	}
	self := ls.t.c.addr
	user := source == "user" || source == "options"
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified() {
			continue
		}
		if a == self {
			continue
		}
		if _, bad := ls.banned[a.Addr()]; bad {
			continue
		}
		if _, ok := ls.known[a]; ok {
			continue
		}
		if source == "pex" && ls.pexKnown >= maxPexKnown {
			break
		}
		if len(ls.known) >= maxKnownPeers && !(user && ls.evictCandidate()) {
			break
		}
		c := &candidate{pex: source == "pex"}
		if c.pex {
			ls.pexKnown++
		}
		ls.known[a] = c
		ls.queueDial(a)
	}
	ls.t.log.Debug("peers added", "source", source, "n", len(addrs), "known", len(ls.known), "first", addrs[0])
}

// Caps on the known peer addresses of a torrent.
const (
	maxKnownPeers = 2000
	maxPexKnown   = maxKnownPeers / 2
)

// evictCandidate forgets one unconnected address to make room, preferring
// one learned through ut_pex, then one that failed to connect. It reports
// false when every known address is connected.
func (ls *loopState) evictCandidate() bool {
	var victim netip.AddrPort
	best := -1
	for a, c := range ls.known {
		if c.connected || c.dialing {
			continue
		}
		score := 0
		if c.pex {
			score += 2
		}
		if c.fails > 0 {
			score++
		}
		if score > best {
			victim, best = a, score
			if score == 3 {
				break
			}
		}
	}
	if best < 0 {
		return false
	}
	ls.forgetCandidate(victim)
	return true
}

// forgetCandidate drops a known address. A queued dial of it is skipped.
func (ls *loopState) forgetCandidate(a netip.AddrPort) {
	if c := ls.known[a]; c != nil && c.pex {
		ls.pexKnown--
	}
	delete(ls.known, a)
}

func (ls *loopState) queueDial(a netip.AddrPort) {
	c := ls.known[a]
	if c == nil || c.queued || c.connected {
		return
	}
	c.queued = true
	ls.dialQ = append(ls.dialQ, a)
}

// maybeDial starts outgoing connections while there is room.
func (ls *loopState) maybeDial() {
	t := ls.t
	if ls.paused {
		return
	}
	for len(ls.dialQ) > 0 && ls.halfOpen < maxHalfOpen && len(ls.peers)+ls.halfOpen < t.c.cfg.MaxPeers {
		if ls.info != nil && ls.completed && len(ls.peers) >= t.c.cfg.MaxPeers/2 {
			return // a seed waits for leechers to come
		}
		a := ls.dialQ[0]
		ls.dialQ = ls.dialQ[1:]
		c := ls.known[a]
		if c == nil {
			continue
		}
		c.queued = false
		if c.connected || c.dialing || ls.connectedTo(a) {
			continue // a dial can take long (MSE, then plain): one at a time
		}
		if _, bad := ls.banned[a.Addr()]; bad {
			continue
		}
		if !t.c.acquireConn() {
			ls.dialQ = append([]netip.AddrPort{a}, ls.dialQ...)
			c.queued = true
			return
		}
		c.tried = time.Now()
		c.dialing = true
		ls.halfOpen++
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			conn, hs, err := dialPeer(ls.ctx, t.c.localIP, a, t.infoHash, t.c.peerID, t.c.dht != nil, t.c.cfg.Encryption)
			select {
			case t.events <- dialResult{addr: a, conn: conn, hs: hs, err: err}:
			case <-t.closing:
				if conn != nil {
					conn.Close()
				}
				t.c.releaseConn()
			}
		}()
	}
}

// connectedTo reports whether a connection to addr exists.
func (ls *loopState) connectedTo(a netip.AddrPort) bool {
	for p := range ls.peers {
		if p.addr == a {
			return true
		}
	}
	return false
}

// requeueKnown retries failed addresses with backoff when peers are few.
func (ls *loopState) requeueKnown(now time.Time) {
	if len(ls.dialQ) > 0 || len(ls.peers) >= ls.t.c.cfg.MaxPeers/2 || !ls.wantsPeers() {
		return
	}
	for a, c := range ls.known {
		if c.connected || c.queued || c.fails > 6 {
			continue
		}
		// 1 s after the first failure (a peer still starting up), then
		// 5 s doubling up to about 5 minutes.
		back := time.Second
		if c.fails > 1 {
			back = time.Duration(1<<min(c.fails-2, 6)) * 5 * time.Second
		}
		if now.Sub(c.tried) >= back {
			ls.queueDial(a)
		}
	}
}

func (ls *loopState) onDialResult(r dialResult) {
	ls.halfOpen--
	c := ls.known[r.addr]
	if c != nil {
		c.dialing = false
	}
	if r.err != nil {
		ls.t.c.releaseConn()
		if c != nil {
			c.fails++
			if errors.Is(r.err, errSelf) {
				c.fails = 100
			}
		}
		ls.t.log.Debug("dial failed", "peer", r.addr, "err", r.err)
		return
	}
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
	if _, bad := ls.banned[ap.Addr().Unmap()]; bad {
		return false
	}
	if len(ls.peers) >= t.c.cfg.MaxPeers {
		return false
	}
	for q := range ls.peers {
		if q.hs.peerID == hs.peerID {
			return false // already connected to that client
		}
	}
	ls.nextID++
	p := newPeer(t, conn, hs, outgoing, ls.nextID)
	ls.peers[p] = struct{}{}
	ls.byID[p.id] = p
	if outgoing {
		if c := ls.known[p.addr]; c != nil {
			c.connected = true
			c.fails = 0
		}
	}
	if ls.info != nil {
		p.have = bitfield.New(ls.info.NumPieces())
	}
	p.log.Debug("peer connected", "outgoing", outgoing, "fast", hs.fast, "ext", hs.ext, "client", string(hs.peerID[:8]), "crypto", hs.cryptoName())
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
	if ls.info == nil {
		if p.hs.fast {
			p.send(wire.Message{ID: wire.HaveNone})
		}
		return
	}
	have := ls.store.Bitfield()
	bf := bitfield.FromBools(have)
	n := bf.Count()
	switch {
	case p.hs.fast && n == ls.info.NumPieces():
		p.send(wire.Message{ID: wire.HaveAll})
	case p.hs.fast && n == 0:
		p.send(wire.Message{ID: wire.HaveNone})
	case n > 0:
		p.send(wire.Message{ID: wire.Bitfield, Data: bf.Bytes()})
	}
	if !p.hs.fast || n == 0 {
		return
	}
	// BEP 6 allowed fast set: pieces the peer may request while choked
	// (only those we have, so that the grant means something).
	p.allowedOut = make(map[int]bool)
	for _, i := range wire.AllowedFastSet(p.addr.Addr(), ls.t.infoHash, ls.info.NumPieces(), wire.DefaultAllowedFast) {
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
	delete(ls.peers, p)
	delete(ls.byID, p.id)
	delete(ls.refill, p)
	if ls.pk != nil {
		if reqs := ls.pk.PeerGone(p.id); len(reqs) > 0 {
			ls.refillAll = true
		}
	}
	ls.downBase += p.down.Load()
	ls.upBase += p.up.Load()
	for _, a := range []netip.AddrPort{p.addr, p.listen} {
		if c := ls.known[a]; c != nil && a.IsValid() {
			c.connected = false
			c.tried = time.Now()
		}
	}
	ls.t.c.releaseConn()
	ls.pexDropped(p)
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

// Blame for pieces that fail the hash check, per IP: a peer that sent a
// whole bad piece alone earns strikeSole, one that sent part of it
// strikeShared; each good piece it helped with takes one point off. An IP
// at banPoints is banned.
const (
	strikeSole   = 2
	strikeShared = 1
	banPoints    = 4
)

// blame records a bad piece against the IPs that sent its blocks.
func (ls *loopState) blame(piece int, ips map[netip.Addr]bool) {
	w := strikeShared
	if len(ips) == 1 {
		w = strikeSole
	}
	for ip := range ips {
		ls.strikes[ip] += w
		ls.t.log.Info("peer sent part of a bad piece", "ip", ip, "piece", piece, "points", ls.strikes[ip])
		if ls.strikes[ip] >= banPoints {
			ls.ban(ip, "sent pieces that failed the hash check")
		}
	}
}

// credit takes a point off the IPs that helped with a good piece.
func (ls *loopState) credit(ips map[netip.Addr]bool) {
	for ip := range ips {
		if ls.strikes[ip] > 0 {
			ls.strikes[ip]--
		}
	}
}

// ban drops every connection from ip and never connects to it again.
func (ls *loopState) ban(ip netip.Addr, reason string) {
	if _, ok := ls.banned[ip]; ok {
		return
	}
	ls.banned[ip] = reason
	ls.t.log.Info("banned peer", "ip", ip, "reason", reason)
	for q := range ls.peers {
		if q.addr.Addr() == ip {
			ls.dropPeer(q, "banned: "+reason)
		}
	}
	for a := range ls.known {
		if a.Addr() == ip {
			ls.forgetCandidate(a)
		}
	}
}

// isSeed reports whether p has every piece.
func (ls *loopState) isSeed(p *peer) bool {
	if ls.info == nil {
		return p.haveAll
	}
	return p.haveAll || (p.have.Len() > 0 && p.have.All())
}
