package engine

import (
	"net/netip"
	"slices"
)

// State is what a torrent is doing.
type State uint8

// The states of a torrent.
const (
	StateFetchingMetadata State = iota // a magnet without its info yet
	StatePaused                        // Pause was called
	StateVerifying                     // existing data (AddOptions.Import, DataDir, Content, or a cache to re-check) is being verified
	StateDownloading                   // wanted pieces are missing
	StateSeeding                       // every piece is verified
	StateIdle                          // nothing wanted is missing, not complete
	StateRemoved                       // Remove was called
)

// String returns the state as the command line shows it.
func (s State) String() string {
	switch s {
	case StateFetchingMetadata:
		return "fetching metadata"
	case StatePaused:
		return "paused"
	case StateVerifying:
		return "verifying"
	case StateDownloading:
		return "downloading"
	case StateSeeding:
		return "seeding"
	case StateIdle:
		return "idle"
	case StateRemoved:
		return "removed"
	}
	return "unknown"
}

// ParseState is the inverse of String, for states that went through text
// (JSON from a control socket); ok is false for a string no State prints.
func ParseState(text string) (s State, ok bool) {
	for s := StateFetchingMetadata; s <= StateRemoved; s++ {
		if s.String() == text {
			return s, true
		}
	}
	return 0, false
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	// Addr is the peer's address (for an incoming connection its source
	// port, not where it listens).
	Addr netip.AddrPort
	// Client is the name the peer gives in its extension handshake, else
	// the first 8 bytes of its peer id. It is what the peer says: not
	// sanitized.
	Client string
	// Source says how we learned of the peer: SourceIncoming when it
	// connected to us.
	Source PeerSource
	// Transport carries the connection (TCP or uTP).
	Transport Transport
	// Punched is set when the connection was made through a hole
	// punched with a relay's help (BEP 55); otherwise it is direct.
	Punched bool
	// Encryption is "none" (plain BitTorrent), "mse plaintext" (an
	// obfuscated handshake) or "mse rc4" (the whole stream encrypted).
	Encryption string
	// Outgoing is set when we dialed the peer.
	Outgoing bool
	// AmChoking and AmInterested are our side; PeerChoking and
	// PeerInterested the peer's.
	AmChoking, AmInterested, PeerChoking, PeerInterested bool
	// DownRate and UpRate are recent payload rates in bytes per second;
	// Downloaded and Uploaded the payload bytes of this connection.
	DownRate, UpRate     float64
	Downloaded, Uploaded int64
	// Pieces is the number of pieces the peer has; Seed is set when it has
	// all of them.
	Pieces int
	Seed   bool
}

// snapshot is what the loop publishes for Stats, Peers and the announcer,
// so that they never wait on the loop. It is immutable once published.
type snapshot struct {
	stats  Stats
	left   int64 // bytes not verified, for announces
	peers  []PeerInfo
	banned []netip.Addr
}

// Stats returns a snapshot of the torrent's transfer state. It does not
// wait on the torrent's goroutine: byte counters are current, the rest is
// as of the loop's last step.
func (t *Torrent) Stats() Stats {
	snap := t.snapshot()
	s := snap.stats
	s.Downloaded, s.Uploaded = t.bytes.down.Load(), t.bytes.up.Load()
	select {
	case <-t.closing:
		s.State = StateRemoved
	default:
	}
	return s
}

// Peers returns the connected peers, as of the loop's last step. It does
// not wait on the torrent's goroutine. The slice is the caller's.
func (t *Torrent) Peers() []PeerInfo {
	return slices.Clone(t.snapshot().peers)
}

// Banned returns the IPs banned for this torrent (peers that sent data
// failing the hash check, or lied about the metadata).
func (t *Torrent) Banned() []netip.Addr {
	return slices.Clone(t.snapshot().banned)
}

// snapshot returns the last published snapshot, waiting for the first (the
// loop publishes it as it starts) unless the torrent is removed.
func (t *Torrent) snapshot() *snapshot {
	if s := t.snap.Load(); s != nil {
		return s
	}
	select {
	case <-t.published:
	case <-t.done:
	}
	if s := t.snap.Load(); s != nil {
		return s
	}
	return &snapshot{}
}

// publish builds a snapshot of the loop's state and publishes it.
func (ls *loopState) publish() {
	s := &snapshot{stats: ls.stats(), left: -1}
	if info := ls.info(); info != nil {
		s.left = info.TotalLength - s.stats.BytesHave
	}
	s.peers = make([]PeerInfo, 0, ls.conns.len())
	for p := range ls.conns.peers {
		s.peers = append(s.peers, ls.peerInfo(p))
	}
	slices.SortFunc(s.peers, func(a, b PeerInfo) int { return a.Addr.Compare(b.Addr) })
	s.banned = ls.book.BannedIPs()
	slices.SortFunc(s.banned, netip.Addr.Compare)
	first := ls.t.snap.Swap(s) == nil
	if first {
		close(ls.t.published)
	}
	ls.dirty = false
}

// stats builds the Stats of a snapshot (without the byte counters, which
// Stats reads itself).
func (ls *loopState) stats() Stats {
	s := Stats{
		DownRate: ls.rates.down, UpRate: ls.rates.up,
		Peers: ls.conns.len(), HalfOpen: ls.conns.halfOpen,
		Known: ls.book.Unconnected(),
	}
	s.WebSeedBytes, s.WebSeeds = ls.ws.bytes()
	s.HashFailures, s.EvictedBytes = ls.tally.hashFailed, ls.tally.evictedBytes
	s.Banned = ls.book.BannedCount()
	for p := range ls.conns.peers {
		if ls.isSeed(p) {
			s.Seeds++
		}
	}
	info := ls.info()
	switch {
	case info == nil:
		s.State = StateFetchingMetadata
		if ls.paused {
			s.State = StatePaused
		}
		return s
	case ls.paused:
		s.State = StatePaused
	case ls.importing || (ls.verifySynced != ls.store().VerifyDone() && ls.store().Verifying()):
		s.State = StateVerifying
	case ls.completed:
		s.State = StateSeeding
	case ls.pk.Missing() > 0:
		s.State = StateDownloading
	default:
		s.State = StateIdle
	}
	s.PiecesTotal = info.NumPieces()
	s.PiecesHave, s.BytesHave = ls.store().Present()
	return s
}

// peerInfo describes p for Peers.
func (ls *loopState) peerInfo(p *peer) PeerInfo {
	client := string(p.hs.peerID[:8])
	if p.ext != nil && p.ext.V != "" {
		client = p.ext.V
	}
	pi := PeerInfo{
		Addr: p.addr, Client: client, Source: p.source, Transport: p.hs.transport, Punched: p.hs.punched,
		Encryption: p.hs.cryptoName(), Outgoing: p.outgoing,
		AmChoking: p.amChoking, AmInterested: p.amInterested,
		PeerChoking: p.peerChoking, PeerInterested: p.peerInterested,
		DownRate: p.downRate.value, UpRate: p.upRate.value,
		Downloaded: p.down.Load(), Uploaded: p.up.Load(),
		Seed: ls.isSeed(p),
	}
	switch {
	case p.have.Len() > 0:
		pi.Pieces = p.have.Count()
	case p.haveAll && ls.info() != nil:
		pi.Pieces = ls.info().NumPieces()
	}
	return pi
}

// Reach counts the connected peers by how they were found (Source) and
// what carries each connection (Transport).
type Reach struct {
	Sources    map[PeerSource]int
	Transports map[Transport]int
	// Punched counts the connections made through a punched hole; the
	// others are direct.
	Punched int
}

// Reach returns how the connected peers were found and reached, as of the
// loop's last step. It does not wait on the torrent's goroutine.
func (t *Torrent) Reach() Reach {
	r := Reach{Sources: map[PeerSource]int{}, Transports: map[Transport]int{}}
	for _, p := range t.snapshot().peers {
		r.Sources[p.Source]++
		r.Transports[p.Transport]++
		if p.Punched {
			r.Punched++
		}
	}
	return r
}
