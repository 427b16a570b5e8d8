package engine

import (
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/choker"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// Choking (whom we upload to) and interest (whom we want to download
// from). The decisions are the choker's and the picker's; these methods
// apply them to the peers and send the messages.

// interestLinger is how long we stay interested in a peer after we last
// wanted a piece from it. A peer told we are not interested chokes us
// (libtorrent does at once), and the next reader, a seek or the player
// after a probe, then waits a round trip or more for its unchoke.
const interestLinger = 20 * time.Second

// keepInterest reports whether to stay interested in a peer we want
// nothing from now, that we last wanted something from at wantedAt:
// within interestLinger, unless the torrent is complete.
func keepInterest(amInterested, completed bool, wantedAt, now time.Time) bool {
	return amInterested && !completed && now.Sub(wantedAt) < interestLinger
}

// updateInterest sends Interested or NotInterested when it changes.
func (ls *loopState) updateInterest(p *peer) {
	if ls.pk == nil || p.removed {
		return
	}
	want := ls.pk.Interesting(p.id)
	if now := time.Now(); want {
		p.wantedAt = now
	} else if keepInterest(p.amInterested, ls.completed, p.wantedAt, now) {
		return
	}
	if want == p.amInterested {
		return
	}
	p.amInterested = want
	if want {
		p.send(wire.Message{ID: wire.Interested})
	} else {
		p.send(wire.Message{ID: wire.NotInterested})
	}
}

func (ls *loopState) updateInterestAll() {
	for p := range ls.conns.peers {
		ls.updateInterest(p)
	}
}

// maybeUnchokeNow gives a newly interested peer a free upload slot at once
// rather than at the next rechoke.
func (ls *loopState) maybeUnchokeNow(p *peer) {
	if ls.t.c.cfg.NoUpload || !p.amChoking || ls.info() == nil || ls.pk.HaveCount() == 0 {
		return
	}
	unchoked := 0
	for q := range ls.conns.peers {
		if !q.amChoking {
			unchoked++
		}
	}
	if unchoked < ls.ch.Config().Slots {
		p.amChoking = false
		p.send(wire.Message{ID: wire.Unchoke})
	}
}

// rechoke runs the choker and applies its decision.
func (ls *loopState) rechoke(now time.Time) {
	if ls.info() == nil {
		return
	}
	views := make([]choker.Peer, 0, ls.conns.len())
	for p := range ls.conns.peers {
		views = append(views, choker.Peer{
			ID: int(p.id), Interested: p.peerInterested, Choked: p.amChoking,
			Snubbed:  p.amInterested && len(p.reqSent) > 0 && now.Sub(p.lastPiece) > time.Minute && now.Sub(p.since) > time.Minute,
			DownRate: p.downRate.value, UpRate: p.upRate.value, Connected: p.since,
		})
	}
	unchoke := ls.ch.Rechoke(now, views, ls.completed)
	if ls.t.c.cfg.NoUpload {
		unchoke = nil // Config.NoUpload: everyone stays choked
	}
	keep := make(map[int]bool, len(unchoke))
	for _, id := range unchoke {
		keep[id] = true
	}
	for p := range ls.conns.peers {
		want := !keep[int(p.id)]
		if want == p.amChoking {
			continue
		}
		p.amChoking = want
		if want {
			p.send(wire.Message{ID: wire.Choke})
			for _, r := range p.clearServe() {
				if p.hs.fast {
					p.send(wire.Message{ID: wire.Reject, Index: uint32(r.Piece), Begin: uint32(r.Begin), Length: uint32(r.Length)})
				}
			}
		} else {
			p.send(wire.Message{ID: wire.Unchoke})
		}
	}
}
