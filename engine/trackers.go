package engine

import (
	"context"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/tracker"
)

// startTrackers starts the torrent's announcer when it has trackers.
func (ls *loopState) startTrackers() {
	t := ls.t
	if len(t.trackers) == 0 || ls.ann != nil || ls.paused {
		return
	}
	ann := tracker.NewAnnouncer(t.c.trackers, t.trackers, tracker.AnnouncerConfig{
		InfoHash:    t.infoHash,
		PeerID:      t.c.peerID,
		Port:        t.c.addr.Port(),
		StopTimeout: 2 * time.Second,
		Logger:      t.log,
	}, func() (up, down, left int64) {
		left = t.statLeft.Load()
		if left < 0 {
			// Unknown size (magnet without metadata): BEP 3 wants a
			// number; a large one marks us as a leecher.
			left = 1 << 40
		}
		return t.statUp.Load(), t.statDown.Load(), left
	})
	// A torrent complete before the announcer started reports Left = 0
	// rather than a "completed" event.
	ctx, cancel := context.WithCancel(ls.ctx)
	ls.ann, ls.annCancel, ls.annPeers = ann, cancel, ann.Peers()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := ann.Run(ctx)
		if err != nil && ctx.Err() == nil {
			t.log.Warn("announcer stopped", "err", err)
		}
	}()
}

// stopTrackers stops the announcer; it sends "stopped" in the background
// (bounded by the announcer's StopTimeout).
func (ls *loopState) stopTrackers() {
	if ls.ann == nil {
		return
	}
	ls.annCancel()
	ls.ann, ls.annCancel, ls.annPeers = nil, nil, nil
}
