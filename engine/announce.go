package engine

import (
	"context"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/tracker"
)

// announce is a torrent's presence in the swarm's directories: its tracker
// announcers and its DHT goroutine, each delivering peer addresses on a
// channel the loop selects on. Used from the loop goroutine only.
type announce struct {
	trk       announcers // nil when stopped or without trackers
	trkCancel context.CancelFunc
	trkPeers  <-chan []netip.AddrPort // nil when stopped

	dhtPeers  chan []netip.AddrPort // nil when stopped
	dhtCancel context.CancelFunc
}

// dhtInterval is how often a torrent re-announces itself on the DHT.
const dhtInterval = 5 * time.Minute

// announcers are a torrent's tracker announcers, one per IP family the
// client listens on (BEP 7: each of our addresses is a source the tracker
// sees).
type announcers []*tracker.Announcer

// Completed sends the "completed" event through every announcer.
func (as announcers) Completed() {
	for _, a := range as {
		a.Completed()
	}
}

// NeedPeers asks every announcer for peers soon.
func (as announcers) NeedPeers() {
	for _, a := range as {
		a.NeedPeers()
	}
}

// families returns the tracker families the client announces over: the
// family of the address it is bound to, else IPv4 and IPv6 when it has
// sockets of both families.
func (c *Client) families() []tracker.Family {
	if ip := c.localIP; ip.IsValid() {
		if ip.Unmap().Is4() {
			return []tracker.Family{tracker.FamilyIPv4}
		}
		return []tracker.Family{tracker.FamilyIPv6}
	}
	if c.socks.udp6 == nil && c.socks.udp4 != nil {
		return []tracker.Family{tracker.FamilyIPv4}
	}
	return []tracker.Family{tracker.FamilyIPv4, tracker.FamilyIPv6}
}

// startTrackers starts the torrent's announcers when it has trackers, and
// one goroutine per announcer that forwards its peers to the loop's
// channel.
func (ls *loopState) startTrackers() {
	t := ls.t
	if len(t.trackers) == 0 || ls.ann.trk != nil || ls.paused {
		return
	}
	ctx, cancel := context.WithCancel(ls.ctx)
	peers := make(chan []netip.AddrPort, 4)
	var anns announcers
	for _, fam := range t.c.families() {
		ann := tracker.NewAnnouncer(t.c.trackers, t.trackers, tracker.AnnouncerConfig{
			InfoHash:    t.infoHash,
			PeerID:      t.c.peerID,
			Port:        t.c.announcePort(),
			IPv4:        t.c.externalIPv4(),
			Family:      fam,
			StopTimeout: 2 * time.Second,
			Logger:      t.log.With("family", fam),
		}, t.announceCounters)
		anns = append(anns, ann)
		// A torrent complete before the announcer started reports Left
		// = 0 rather than a "completed" event.
		t.wg.Add(2)
		go func() {
			defer t.wg.Done()
			err := ann.Run(ctx)
			if err != nil && ctx.Err() == nil {
				t.log.Warn("announcer stopped", "family", fam, "err", err)
			}
		}()
		go func() {
			defer t.wg.Done()
			for {
				select {
				case batch := <-ann.Peers():
					select {
					case peers <- batch:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	ls.ann.trk, ls.ann.trkCancel, ls.ann.trkPeers = anns, cancel, peers
}

// announceCounters returns what announces report: payload bytes up and
// down, and the bytes left (from the published snapshot).
func (t *Torrent) announceCounters() (up, down, left int64) {
	left = 1 << 40
	if s := t.snap.Load(); s != nil && s.stats.PiecesTotal > 0 {
		left = s.left
	}
	// Unknown size (magnet without metadata): BEP 3 wants a number; a
	// large one marks us as a leecher.
	return t.bytes.up.Load(), t.bytes.down.Load(), left
}

// stopTrackers stops the announcer; it sends "stopped" in the background
// (bounded by the announcer's StopTimeout).
func (ls *loopState) stopTrackers() {
	if ls.ann.trk == nil {
		return
	}
	ls.ann.trkCancel()
	ls.ann.trk, ls.ann.trkCancel, ls.ann.trkPeers = nil, nil, nil
}

// discoverable reports whether the torrent may be made known to anyone but
// its trackers: announced on the DHT, exchanged over PEX, announced by
// local service discovery. BEP 27: a private torrent never is, whatever
// the client's configuration or flags. This is the one rule for every
// such channel: the DHT (startDHT, dhtPort, the BEP 5 port message), PEX
// (ext.go checks private, its other name) and LSD, which is not wired into
// the engine yet: whoever wires internal/lsd must announce a torrent and
// take peers from it only while discoverable() is true, and stop when the
// metadata of a magnet turns out private (see magnet.go).
func (ls *loopState) discoverable() bool { return !ls.private() }

// startDHT starts the torrent's DHT goroutine unless DHT is off or the
// torrent is private (not discoverable). It announces the torrent and streams the peers it
// finds to the loop, every dhtInterval (30 s while it finds none).
func (ls *loopState) startDHT() {
	t := ls.t
	d := t.c.dht
	if d == nil || !ls.discoverable() || ls.ann.dhtCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(ls.ctx)
	peers := make(chan []netip.AddrPort, 4)
	ls.ann.dhtPeers, ls.ann.dhtCancel = peers, cancel
	port := int(t.c.announcePort())
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		deliver := func(batch []netip.AddrPort) bool {
			select {
			case peers <- batch:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			// A get_peers lookup streams peers to the torrent as nodes
			// answer, while the announce (its own lookup, then
			// announce_peer) runs beside it: dead nodes in the table slow
			// the announce down by their query timeouts, but not the
			// first peers.
			actx, acancel := context.WithTimeout(ctx, time.Minute)
			streamed := make(chan int, 1)
			go func() {
				n := 0
				for batch := range d.GetPeers(actx, t.infoHash) {
					if len(batch) > 0 && deliver(batch) {
						n += len(batch)
					}
				}
				streamed <- n
			}()
			found, err := d.Announce(actx, t.infoHash, port, false)
			if err != nil {
				t.log.Debug("dht announce", "err", err, "peers", len(found))
			}
			n := <-streamed
			acancel()
			if len(found) > 0 && !deliver(found) {
				return
			}
			wait := dhtInterval
			if len(found) == 0 && n == 0 {
				wait = 30 * time.Second
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
	}()
}

func (ls *loopState) stopDHT() {
	if ls.ann.dhtCancel != nil {
		ls.ann.dhtCancel()
		ls.ann.dhtPeers, ls.ann.dhtCancel = nil, nil
	}
}
