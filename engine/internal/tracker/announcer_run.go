package tracker

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Run announces until ctx ends, then sends "stopped" to every tracker that
// was told "started" (all within StopTimeout) and returns nil. The first
// announce ("started") goes out at once. Run may be called again after it
// returned (a resumed torrent starts again with "started"); calling it while
// another Run is active returns an error at once.
func (a *Announcer) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer a.running.Store(false)

	r := runState{
		started:  make(map[string]bool),
		trackIDs: make(map[string]string),
		minGap:   a.cfg.MinInterval,
	}
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		a.setNext(next)
		select {
		case <-ctx.Done():
			a.setNext(time.Time{})
			a.stop(ctx, &r)
			return nil
		case <-a.need:
			next = r.early(next)
		case <-a.completed:
			// "completed" is an event, not a re-announce: like libtorrent
			// we send it at once instead of waiting out the tracker's min
			// interval (opentracker asks for 15 minutes), so the swarm
			// learns of the new seeder. Completed fires only once.
			if a.complete.Load() == completePending {
				next = time.Now()
			}
		case <-timer.C:
			if now := time.Now(); now.Before(next) {
				timer.Reset(next.Sub(now))
				continue
			}
			next = a.round(ctx, &r)
		}
		timer.Reset(max(time.Until(next), 0))
	}
}

// runState is the part of an Announcer's state that lives only as long as
// one Run and belongs to its goroutine.
type runState struct {
	started  map[string]bool   // URLs that accepted "started"
	trackIDs map[string]string // "tracker id" per URL
	last     time.Time         // start of the last round
	minGap   time.Duration     // current floor between announces
	failures int               // consecutive failed rounds
}

// early returns the time of an announce asked for now (NeedPeers,
// Completed): as soon as the min gap since the last round allows, and never
// later than the already planned next.
func (r *runState) early(next time.Time) time.Time {
	at := time.Now()
	if !r.last.IsZero() {
		if earliest := r.last.Add(r.minGap); earliest.After(at) {
			at = earliest
		}
	}
	if at.Before(next) {
		return at
	}
	return next
}

// round tries the trackers in BEP 12 order until one answers, and returns
// when the next round is due.
func (a *Announcer) round(ctx context.Context, r *runState) time.Time {
	r.last = time.Now()
	select {
	case <-a.need: // this round serves it
	default:
	}
	var lastErr error
	for _, u := range a.tiers.URLs() {
		if ctx.Err() != nil {
			return time.Now()
		}
		req := a.request(r, u)
		resp, err := a.c.Announce(ctx, u, req)
		if err != nil {
			if ctx.Err() != nil {
				return time.Now()
			}
			a.log.Debug("announce failed", "url", u, "event", req.Event.String(), "err", err)
			lastErr = err
			a.mu.Lock()
			a.status.Failures++
			a.mu.Unlock()
			continue
		}
		a.tiers.Succeeded(u)
		r.started[u] = true
		if resp.TrackerID != "" {
			r.trackIDs[u] = resp.TrackerID
		}
		if req.Event == EventCompleted || (req.Event == EventStarted && req.Left == 0) {
			// A "started" with nothing left already tells the tracker
			// we seed; "completed" is for a download that finished.
			a.complete.CompareAndSwap(completePending, completeSent)
		}
		r.failures = 0
		r.minGap = max(a.cfg.MinInterval, resp.MinInterval)
		interval := resp.Interval
		if interval <= 0 {
			interval = a.cfg.DefaultInterval
		}
		interval = max(interval, r.minGap)
		now := time.Now()
		a.mu.Lock()
		a.status.URL = u
		a.status.LastAnnounce = now
		a.status.Seeders = resp.Seeders
		a.status.Leechers = resp.Leechers
		a.status.Peers = len(resp.Peers)
		a.status.Warning = resp.Warning
		a.status.LastError = nil
		a.status.Announces++
		a.mu.Unlock()
		a.log.Debug("announced", "url", u, "event", req.Event.String(), "peers", len(resp.Peers),
			"interval", interval, "warning", resp.Warning)
		a.deliver(resp.Peers)
		return now.Add(interval)
	}
	if lastErr == nil {
		// No trackers at all: nothing to do until the context ends.
		return time.Now().Add(MaxInterval)
	}
	a.mu.Lock()
	a.status.LastError = lastErr
	a.mu.Unlock()
	wait := a.cfg.RetryInterval << min(r.failures, 16)
	wait = max(min(wait, a.cfg.DefaultInterval), a.cfg.MinInterval)
	r.failures++
	return time.Now().Add(wait)
}

// request builds the announce for url, choosing its event.
func (a *Announcer) request(r *runState, url string) AnnounceRequest {
	up, down, left := a.stats()
	req := AnnounceRequest{
		InfoHash:   a.cfg.InfoHash,
		PeerID:     a.cfg.PeerID,
		Port:       a.cfg.Port,
		Uploaded:   up,
		Downloaded: down,
		Left:       left,
		NumWant:    a.cfg.NumWant,
		Key:        a.cfg.Key,
		TrackerID:  r.trackIDs[url],
		Family:     a.cfg.Family,
		IPv4:       a.cfg.IPv4,
		IPv6:       a.cfg.IPv6,
	}
	switch {
	case !r.started[url]:
		req.Event = EventStarted
	case a.complete.Load() == completePending:
		req.Event = EventCompleted
	}
	return req
}

// stop sends "stopped" to every tracker that accepted "started", in
// parallel, all bounded by StopTimeout.
func (a *Announcer) stop(ctx context.Context, r *runState) {
	if len(r.started) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.StopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for u := range r.started {
		req := a.request(r, u)
		req.Event = EventStopped
		req.NumWant = 0
		wg.Go(func() {
			if _, err := a.c.Announce(sctx, u, req); err != nil {
				a.log.Debug("stopped announce failed", "url", u, "err", err)
			}
		})
	}
	wg.Wait()
}

// deliver hands peers to the reader of Peers without blocking: when a batch
// is still pending, the two are merged.
func (a *Announcer) deliver(peers []netip.AddrPort) {
	if len(peers) == 0 {
		return
	}
	select {
	case a.peers <- peers:
		return
	default:
	}
	select {
	case old := <-a.peers:
		peers = mergePeers(peers, old, a.cfg.MaxPendingPeers)
	default:
	}
	select {
	case a.peers <- peers:
	default:
		// Unreachable while Run is the only sender: the buffer was just
		// emptied. Dropping is the safe fallback.
	}
}

// mergePeers returns the peers of a then b, without duplicates, at most max.
func mergePeers(a, b []netip.AddrPort, max int) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, min(len(a)+len(b), max))
	seen := make(map[netip.AddrPort]bool, cap(out))
	for _, p := range slices.Concat(a, b) {
		if len(out) >= max {
			break
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func (a *Announcer) setNext(t time.Time) {
	a.mu.Lock()
	a.status.NextAnnounce = t
	a.mu.Unlock()
}
