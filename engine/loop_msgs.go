package engine

import (
	"fmt"
	"slices"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/engine/internal/wire/bitfield"
)

// handle dispatches one event posted to the loop.
func (ls *loopState) handle(ev any) {
	switch ev := ev.(type) {
	case peerMsg:
		if !ev.p.removed {
			ls.onMessage(ev.p, ev.m)
		}
	case peerGone:
		if !ev.p.removed {
			reason := "connection closed"
			if ev.err != nil {
				reason = ev.err.Error()
			}
			ls.removePeer(ev.p, reason)
		}
	case peerExtHandshake:
		if !ev.p.removed {
			ls.onExtHandshake(ev.p, ev.h)
		}
	case peerBroke:
		ls.dropPeer(ev.p, ev.reason)
	case peerServeFailed:
		if !ev.p.removed && ev.p.hs.fast {
			r := ev.r
			ev.p.send(wire.Message{ID: wire.Reject, Index: uint32(r.Piece), Begin: uint32(r.Begin), Length: uint32(r.Length)})
		}
	case newConnEvent:
		ls.onNewConn(ev)
	case dialResult:
		ls.onDialResult(ev)
	case blockWritten:
		ls.onBlockWritten(ev)
	case pieceHashed:
		ls.applyDisk(ls.disk.Hashed(ev))
	case importResult:
		ls.onImport(ev)
	case wsPiece:
		ls.onWSPiece(ev)
	case wsDone:
		ls.onWSDone(ev)
	case metaWritten:
		if ev.err != nil {
			// The file only makes adding the magnet again instant.
			ls.t.log.Warn("saving fetched metadata", "err", ev.err)
		}
	}
}

// onMessage handles one message from a peer.
func (ls *loopState) onMessage(p *peer, m wire.Message) {
	info := ls.info()
	if info == nil {
		switch m.ID {
		case wire.Have, wire.Bitfield, wire.Request, wire.Piece, wire.Cancel,
			wire.Suggest, wire.Reject, wire.AllowedFast:
			// Without the info we cannot validate these. Keep the
			// bitfield; ignore the rest (we never request before info).
			if m.ID == wire.Bitfield {
				p.rawBitfield = m.Data
				p.seenHave = true
			}
			if m.ID == wire.Have {
				p.seenHave = true
				p.rawHaves = append(p.rawHaves, int(m.Index))
				if len(p.rawHaves) > 100000 {
					ls.dropPeer(p, "too many have messages before metadata")
				}
			}
			return
		case wire.HaveAll, wire.HaveNone:
			if !p.hs.fast {
				ls.dropPeer(p, m.ID.String()+" without the fast extension")
				return
			}
			p.seenHave = true
			p.haveAll = m.ID == wire.HaveAll
			return
		}
	}
	switch m.ID {
	case wire.Choke:
		p.peerChoking = true
		if !p.hs.fast && ls.pk != nil {
			ls.pk.Choked(p.id)
		}
	case wire.Unchoke:
		p.peerChoking = false
		ls.conns.wantRefill(p)
	case wire.Interested:
		p.peerInterested = true
		ls.maybeUnchokeNow(p)
	case wire.NotInterested:
		p.peerInterested = false
	case wire.Have:
		i := int(m.Index)
		if i >= info.NumPieces() {
			ls.dropPeer(p, fmt.Sprintf("have for piece %d of %d", i, info.NumPieces()))
			return
		}
		p.seenHave = true
		if !p.have.Get(i) {
			p.have.Set(i)
			ls.pk.PeerHave(p.id, i)
			ls.updateInterest(p)
			ls.conns.wantRefill(p)
		}
	case wire.Bitfield:
		if err := ls.applyBitfield(p, m.Data); err != nil {
			ls.dropPeer(p, err.Error())
		}
	case wire.HaveAll, wire.HaveNone:
		if !p.hs.fast {
			ls.dropPeer(p, m.ID.String()+" without the fast extension")
			return
		}
		ls.applyHaveAllNone(p, m.ID == wire.HaveAll)
	case wire.Request:
		ls.onRequest(p, m)
	case wire.Cancel:
		p.cancelServe(picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)})
	case wire.Piece:
		ls.onPiece(p, m)
	case wire.Reject:
		if !p.hs.fast {
			ls.dropPeer(p, "reject without the fast extension")
			return
		}
		r := picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
		ok, live := p.answered(r)
		if !ok {
			ls.dropPeer(p, fmt.Sprintf("reject of a block we did not request (piece %d begin %d)", r.Piece, r.Begin))
			return
		}
		if live {
			ls.pk.Rejected(p.id, r)
			ls.conns.refillAll = true
		}
	case wire.AllowedFast, wire.Suggest:
		// Suggestions are validated, then ignored: the picker's order
		// (reader windows, rarest first) beats them. Allowed-fast pieces
		// may be requested while the peer chokes us.
		if !p.hs.fast {
			ls.dropPeer(p, m.ID.String()+" without the fast extension")
			return
		}
		i := int(m.Index)
		if i >= info.NumPieces() {
			ls.dropPeer(p, fmt.Sprintf("%s for piece %d of %d", m.ID, i, info.NumPieces()))
			return
		}
		if m.ID == wire.AllowedFast && len(p.allowedIn) < maxAllowedIn && !slices.Contains(p.allowedIn, i) {
			p.allowedIn = append(p.allowedIn, i)
			if p.peerChoking {
				ls.conns.wantRefill(p)
			}
		}
	case wire.Port:
		ls.dhtPort(p, m.Port)
	case wire.Extended:
		ls.onExtended(p, m)
	}
}

// applyBitfield validates and records a peer's bitfield.
func (ls *loopState) applyBitfield(p *peer, data []byte) error {
	info := ls.info()
	bf, err := bitfield.Parse(data, info.NumPieces())
	if err != nil {
		return fmt.Errorf("bad bitfield: %v", err)
	}
	p.have = bf
	p.seenHave = true
	p.haveAll = bf.All()
	ls.pk.PeerBitfield(p.id, bf.Bools())
	ls.updateInterest(p)
	ls.conns.wantRefill(p)
	return nil
}

func (ls *loopState) applyHaveAllNone(p *peer, all bool) {
	info := ls.info()
	p.seenHave = true
	if all {
		p.have = bitfield.Full(info.NumPieces())
		p.haveAll = true
		ls.pk.PeerHaveAll(p.id)
	} else {
		p.have = bitfield.New(info.NumPieces())
		ls.pk.PeerHaveNone(p.id)
	}
	ls.updateInterest(p)
	ls.conns.wantRefill(p)
}

// replayHaves applies what a peer told us before the metadata was known.
func (ls *loopState) replayHaves(p *peer) {
	info := ls.info()
	p.have = bitfield.New(info.NumPieces())
	switch {
	case p.haveAll:
		ls.pk.PeerHaveAll(p.id)
		p.have = bitfield.Full(info.NumPieces())
	case p.rawBitfield != nil:
		if err := ls.applyBitfield(p, p.rawBitfield); err != nil {
			ls.dropPeer(p, err.Error())
			return
		}
	}
	for _, i := range p.rawHaves {
		if i < 0 || i >= info.NumPieces() {
			ls.dropPeer(p, fmt.Sprintf("have for piece %d of %d", i, info.NumPieces()))
			return
		}
		p.have.Set(i)
		ls.pk.PeerHave(p.id, i)
	}
	p.rawBitfield, p.rawHaves = nil, nil
	ls.updateInterest(p)
	ls.conns.wantRefill(p)
}

// onRequest queues a peer's block request for the writer, or rejects it.
func (ls *loopState) onRequest(p *peer, m wire.Message) {
	info := ls.info()
	r := picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	if r.Piece >= info.NumPieces() {
		ls.dropPeer(p, fmt.Sprintf("request for piece %d of %d", r.Piece, info.NumPieces()))
		return
	}
	size := int(info.PieceSize(r.Piece))
	if r.Length <= 0 || r.Length > wire.MaxBlockSize || r.Begin < 0 || r.Begin+r.Length > size {
		ls.dropPeer(p, fmt.Sprintf("request outside piece %d: begin %d length %d", r.Piece, r.Begin, r.Length))
		return
	}
	reject := func() {
		if p.hs.fast {
			p.send(wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
		}
	}
	if (p.amChoking && !p.allowedOut[r.Piece]) || !ls.pk.Have(r.Piece) || !ls.store().Has(r.Piece) {
		reject()
		return
	}
	if !p.queueServe(r) {
		reject()
	}
}
