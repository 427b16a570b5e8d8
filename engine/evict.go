package engine

import (
	"net/netip"
	"time"
)

// Slots that cannot be squatted: a torrent's peer slots (Config.MaxConnsPerTorrent)
// are limited per IP, and a peer that has been of no use for a while makes
// room for a better candidate (an address waiting to be dialed, or a peer
// connecting to us).
const (
	// maxPeersPerIP is the most connections to one IP address per torrent.
	maxPeersPerIP = 4
	// evictAfter is how long a peer must have been useless before it may
	// be evicted: connected this long, no payload either way for this
	// long, and nothing we want from it (or it chokes us).
	evictAfter = 10 * time.Second
	// evictEvery spaces evictions made for addresses waiting to be
	// dialed, which may well be dead.
	evictEvery = time.Second
)

// useless reports whether p may be evicted for a better candidate.
func (ls *loopState) useless(p *peer, now time.Time) bool {
	if now.Sub(p.usefulAt) < evictAfter {
		return false // connected or moved payload recently
	}
	return !p.amInterested || p.peerChoking
}

// noteUseful records at a tick whether p moved payload since the last.
func (p *peer) noteUseful(now time.Time) {
	if p.down.Load() != p.downRate.last || p.up.Load() != p.upRate.last {
		p.usefulAt = now
	}
}

// evictUseless drops the peer that has been useless longest, to make room
// for a better candidate. It reports whether it dropped one.
func (ls *loopState) evictUseless(now time.Time, why string) bool {
	var victim *peer
	for p := range ls.conns.peers {
		if ls.useless(p, now) && (victim == nil || p.usefulAt.Before(victim.usefulAt)) {
			victim = p
		}
	}
	if victim == nil {
		return false
	}
	ls.conns.lastEvict = now
	ls.dropPeer(victim, "evicted: useless for "+victim.idleFor(now)+", "+why)
	return true
}

func (p *peer) idleFor(now time.Time) string { return now.Sub(p.usefulAt).Round(time.Second).String() }

// roomFor reports whether a new connection from ip may become a peer,
// evicting a useless one when the torrent is full.
func (ls *loopState) roomFor(ip netip.Addr, now time.Time) bool {
	if ls.conns.perIP[ip] >= maxPeersPerIP {
		return false
	}
	if ls.conns.len() < ls.t.c.cfg.MaxConnsPerTorrent {
		return true
	}
	return ls.evictUseless(now, "a new connection")
}

// evictForDials makes room for an address waiting to be dialed when every
// slot is taken, at most once per evictEvery.
func (ls *loopState) evictForDials(now time.Time) {
	if now.Sub(ls.conns.lastEvict) < evictEvery {
		return
	}
	ls.evictUseless(now, "an address to dial")
}
