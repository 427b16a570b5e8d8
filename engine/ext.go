package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/holepunch"
	"github.com/swarmfs/swarmfs/engine/internal/metadata"
	"github.com/swarmfs/swarmfs/engine/internal/pex"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// clientVersion is the "v" of our extension handshake.
const clientVersion = "swarmfs 0.1"

// ourReqq is the request queue length we advertise and accept.
const ourReqq = maxServeQueue

// ourExtHandshake builds the BEP 10 handshake we send to p.
func (ls *loopState) ourExtHandshake(p *peer) wire.Message {
	h := wire.ExtHandshake{
		M:      map[string]int{wire.ExtMetadata: int(wire.ExtMetadataID)},
		V:      clientVersion,
		P:      int(ls.t.c.addr.Port()),
		Reqq:   ourReqq,
		YourIP: p.addr.Addr(),
	}
	if !ls.private() {
		h.M[wire.ExtPex] = int(wire.ExtPexID)
		h.M[holepunch.ExtName] = extHolepunchID
	}
	if mi := ls.t.MetaInfo(); mi != nil {
		h.MetadataSize = len(mi.InfoBytes)
	}
	b, err := h.Marshal()
	if err != nil {
		// Marshal of our own well-formed dictionary cannot fail; send an
		// empty "m" rather than nothing.
		b = []byte("d1:mdee")
	}
	return wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Data: b}
}

// private reports whether the torrent is private (BEP 27): no DHT, no PEX.
func (ls *loopState) private() bool {
	info := ls.info()
	return info != nil && info.Private
}

// onExtended handles a BEP 10 message.
func (ls *loopState) onExtended(p *peer, m wire.Message) {
	if !p.hs.ext {
		ls.dropPeer(p, "extended message without the extension protocol bit")
		return
	}
	switch m.ExtID {
	case wire.ExtHandshakeID:
		// Decoded by the peer's reader (peerExtHandshake); a raw one
		// cannot get here.
	case wire.ExtMetadataID:
		ls.onMetadataMsg(p, m.Data)
	case wire.ExtPexID:
		ls.onPex(p, m.Data)
	case extHolepunchID:
		ls.onHolepunch(p, m.Data)
	default:
		// BEP 10: ignore extended messages we did not advertise.
	}
}

// onExtHandshake applies a peer's BEP 10 handshake, decoded by its reader.
func (ls *loopState) onExtHandshake(p *peer, h wire.ExtHandshake) {
	first := p.ext == nil
	p.ext = &h
	if p.metaClaim == 0 && h.MetadataSize > 0 {
		// Only the first size a peer claims counts: a peer that repeats
		// its handshake with new sizes cannot make us assemble each.
		p.metaClaim = h.MetadataSize
	}
	if !first {
		// BEP 10 allows repeated handshakes to update the extension
		// ids; the listen address and the PEX state stay those of the
		// first, so that a peer cannot add entries by repeating it.
		ls.metaPeerReady(p)
		return
	}
	if h.P > 0 && h.P < 65536 {
		listen := netip.AddrPortFrom(p.addr.Addr(), uint16(h.P))
		if !p.outgoing {
			ls.book.Listening(listen)
			p.listen = listen
		}
	}
	if p.outgoing {
		p.listen = p.addr
	}
	ls.pexConnected(p)
	ls.metaPeerReady(p)
	ls.dirty = true
}

// sendExt sends an extension message if p supports ext.
func (ls *loopState) sendExt(p *peer, ext string, payload []byte) bool {
	if p.ext == nil {
		return false
	}
	id, ok := p.ext.ID(ext)
	if !ok {
		return false
	}
	p.send(wire.Message{ID: wire.Extended, ExtID: id, Data: payload})
	return true
}

// onMetadataMsg serves our info dictionary and collects a peer's.
func (ls *loopState) onMetadataMsg(p *peer, payload []byte) {
	msg, err := wire.ParseMetadataMsg(payload)
	if err != nil {
		ls.dropPeer(p, err.Error())
		return
	}
	switch msg.Type {
	case wire.MetadataRequest:
		mi := ls.t.MetaInfo()
		var data []byte
		if mi != nil {
			data, err = metadata.Piece(mi.InfoBytes, msg.Piece)
		}
		if mi == nil || err != nil {
			ls.sendExt(p, wire.ExtMetadata, wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataReject, Piece: msg.Piece}))
			return
		}
		ls.sendExt(p, wire.ExtMetadata, wire.AppendMetadataMsg(nil, wire.MetadataMsg{
			Type: wire.MetadataData, Piece: msg.Piece, TotalSize: len(mi.InfoBytes), Data: data}))
	case wire.MetadataData:
		ls.metaData(p, msg)
	case wire.MetadataReject:
		ls.metaReject(p, msg.Piece)
	}
}

// Peer exchange (BEP 11).

// pexState is the torrent's ut_pex state.
type pexState struct {
	swarm     pex.Swarm
	senders   map[*peer]*pex.Sender
	receivers map[*peer]*pex.Receiver
}

// pexConnected adds a peer to the advertised swarm and starts exchanging
// with it when it supports ut_pex.
func (ls *loopState) pexConnected(p *peer) {
	if ls.private() {
		return
	}
	if p.listen.IsValid() {
		var f wire.PexFlags
		if p.outgoing {
			f |= wire.PexReachable
		}
		if ls.isSeed(p) {
			f |= wire.PexSeed
		}
		if supportsHolepunch(p) {
			f |= wire.PexHolepunch
		}
		ls.pex.swarm.Add(p.listen, f)
	}
	if _, ok := p.ext.ID(wire.ExtPex); !ok {
		return
	}
	if ls.pex.senders == nil {
		ls.pex.senders = make(map[*peer]*pex.Sender)
		ls.pex.receivers = make(map[*peer]*pex.Receiver)
	}
	self := p.listen
	if !self.IsValid() {
		self = p.addr
	}
	ls.pex.senders[p] = pex.NewSender(self)
	ls.pex.receivers[p] = pex.NewReceiver(p.addr.Addr())
}

func (ls *loopState) pexDropped(p *peer) {
	if p.listen.IsValid() {
		ls.pex.swarm.Remove(p.listen)
	}
	delete(ls.pex.senders, p)
	delete(ls.pex.receivers, p)
}

// pexTick sends due ut_pex messages.
func (ls *loopState) pexTick(now time.Time) {
	if ls.private() {
		return
	}
	ls.hpTick(now)
	for p, s := range ls.pex.senders {
		if now.Sub(p.since) < 5*time.Second {
			continue // let the peer settle before the first message
		}
		if msg, ok := s.Next(now, &ls.pex.swarm); ok {
			ls.sendExt(p, wire.ExtPex, wire.AppendPex(nil, msg))
		}
	}
}

func (ls *loopState) onPex(p *peer, payload []byte) {
	r := ls.pex.receivers[p]
	if r == nil || ls.private() {
		return
	}
	added, _, err := r.Receive(time.Now(), payload)
	if err != nil {
		if errors.Is(err, pex.ErrTooFrequent) {
			p.log.Debug("ignoring ut_pex", "err", err)
			return
		}
		ls.dropPeer(p, fmt.Sprintf("bad ut_pex: %v", err))
		return
	}
	ls.hpLearned(p, added)
	addrs := make([]netip.AddrPort, 0, len(added))
	for _, a := range added {
		addrs = append(addrs, a.Addr)
	}
	if len(addrs) > 0 {
		ls.addPeers(addrs, SourcePex)
	}
}
