package engine

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/lsd"
)

// lsdFeed runs the client's local service discovery (BEP 14): it keeps
// the LSD's torrent set equal to the client's torrents (private ones
// left out once their metadata says so) and hands the peers found on the
// local network to their torrents as SourceLSD addresses. One goroutine
// (run) owns the LSD calls; changed only signals it, so it may be called
// with Client.mu held. A nil *lsdFeed (LSD off) ignores every call.
type lsdFeed struct {
	c    *Client
	l    *lsd.LSD
	kick chan struct{} // cap 1: the torrent set changed
	stop chan struct{}
}

// lsdDeliverTimeout bounds the wait for a busy torrent loop to take the
// peers of one announce.
const lsdDeliverTimeout = 5 * time.Second

// startLSD starts LSD on the client's port. A host without a usable
// multicast interface gets no LSD (logged), not an error.
func (c *Client) startLSD() {
	l, err := lsd.New(lsd.Config{Port: c.addr.Port(), Logger: c.log.With("part", "lsd")})
	if err != nil {
		c.log.Info("local service discovery off", "err", err)
		return
	}
	f := &lsdFeed{c: c, l: l, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.lsd = f
	c.wg.Add(1)
	go f.run()
}

// changed tells the feed that the torrent set changed; t, when not nil,
// is a torrent just added: if its metadata is not known yet, the set is
// sent again once it is (it may turn out private).
func (f *lsdFeed) changed(t *Torrent) {
	if f == nil {
		return
	}
	f.signal()
	if t == nil || t.Info() != nil {
		return
	}
	f.c.wg.Add(1)
	go func() {
		defer f.c.wg.Done()
		select {
		case <-t.InfoReady():
			f.signal()
		case <-t.closing:
		case <-f.stop:
		}
	}()
}

func (f *lsdFeed) signal() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// close stops the feed and the LSD; Client.wg waits for its goroutines.
func (f *lsdFeed) close() {
	close(f.stop)
}

// lsdTorrents returns the LSD set of ts: every torrent not known to be
// private.
func lsdTorrents(ts []*Torrent) []lsd.Torrent {
	out := make([]lsd.Torrent, 0, len(ts))
	for _, t := range ts {
		info := t.Info()
		if info != nil && info.Private {
			continue
		}
		out = append(out, lsd.Torrent{InfoHash: t.infoHash})
	}
	return out
}

func (f *lsdFeed) run() {
	defer f.c.wg.Done()
	defer f.l.Close()
	peers := f.l.Peers()
	for {
		select {
		case <-f.kick:
			if err := f.l.SetTorrents(lsdTorrents(f.c.Torrents())); err != nil && !errors.Is(err, lsd.ErrClosed) {
				f.c.log.Warn("lsd: set torrents", "err", err)
			}
		case p, ok := <-peers:
			if !ok {
				return
			}
			t, found := f.c.Torrent(p.InfoHash)
			if !found {
				continue
			}
			addrs := []netip.AddrPort{p.Addr}
			ctx, cancel := context.WithTimeout(context.Background(), lsdDeliverTimeout)
			_ = t.doCtx(ctx, func() {
				if !t.ls.private() {
					t.ls.addPeers(addrs, SourceLSD)
				}
			})
			cancel()
		case <-f.stop:
			return
		}
	}
}
