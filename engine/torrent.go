package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Torrent is one torrent of a Client. Its exported methods are safe for
// concurrent use; those that change the torrent send commands to the
// torrent's goroutine, which owns all mutable state (peers, picker,
// choker, statistics); those that only look (Stats, Peers, Info, Bitfield)
// read what the goroutine published and never wait on it.
type Torrent struct {
	c        *Client
	infoHash metainfo.Hash
	log      *slog.Logger
	opt      AddOptions
	trackers [][]string

	cmds    chan func()    // closures run by the loop
	events  chan any       // from peers, dialers and workers
	prio    *prioBox       // reader priority updates
	fault   *faultBox      // the disk fault that keeps pieces from being stored
	closing chan struct{}  // closed by Remove: the loop ends
	done    chan struct{}  // closed when the loop and its goroutines ended
	wg      sync.WaitGroup // goroutines that post to events

	infoReady chan struct{} // closed when metadata is known
	complete  chan struct{} // closed when every piece is verified
	imported  chan struct{} // closed when AddOptions.Import has been verified
	importEnd sync.Once

	nameMu   sync.Mutex // guards name
	name     string
	loaded   atomic.Pointer[loadedInfo] // set once, when the metadata is known
	removeMu sync.Once

	ls *loopState // owned by the loop goroutine

	snap      atomic.Pointer[snapshot] // published by the loop
	published chan struct{}            // closed when the first snapshot is
	bytes     byteCounters
	nextOwner atomic.Int64

	pfMu   sync.Mutex     // guards pf
	pf     prefetchRanges // Prefetch's requests
	probes chan struct{}  // container probe slots (maxProbes): bounds their memory
}

// loadedInfo is a torrent's metainfo and the cache store opened for it.
type loadedInfo struct {
	mi    *metainfo.MetaInfo
	store *cache.Store
}

// Stats is a snapshot of a torrent's transfer state.
type Stats struct {
	// Downloaded and Uploaded count payload bytes since the torrent was added.
	Downloaded, Uploaded int64
	// DownRate and UpRate are recent payload rates in bytes per second.
	DownRate, UpRate float64
	// Peers is the number of connected peers, Seeds those that have everything.
	Peers, Seeds int
	// PiecesHave of PiecesTotal pieces are verified in the cache.
	PiecesHave, PiecesTotal int
	// BytesHave is the size of the verified pieces.
	BytesHave int64
	// State is what the torrent is doing; its String is "fetching
	// metadata", "paused", "verifying" (existing data of
	// AddOptions.Import), "downloading", "seeding", "idle" (nothing wanted
	// is missing, not complete) or "removed".
	State State
	// HalfOpen is the number of outgoing connection attempts in flight and
	// Known the number of peer addresses known but not connected.
	HalfOpen, Known int
	// WebSeedBytes counts payload bytes received from web seeds (BEP 19),
	// which Downloaded (peers only) does not include; WebSeeds is the
	// number of web seeds still used (not dropped).
	WebSeedBytes int64
	WebSeeds     int
	// HashFailures counts pieces that failed their hash check, from peers
	// or web seeds; Banned is the number of IPs banned for lying.
	HashFailures int64
	Banned       int
	// EvictedBytes counts verified bytes the cache gave up: evicted under
	// its cap, or dropped when their file changed on disk.
	EvictedBytes int64
}

func newTorrent(c *Client, ih metainfo.Hash, name string, mi *metainfo.MetaInfo, trackers [][]string, opt AddOptions) (*Torrent, error) {
	t := &Torrent{
		c:         c,
		infoHash:  ih,
		name:      name,
		log:       c.log.With("torrent", ih.String()[:8]),
		opt:       opt,
		trackers:  trackers,
		cmds:      make(chan func()),
		events:    make(chan any, 256),
		prio:      newPrioBox(),
		fault:     newFaultBox(),
		probes:    make(chan struct{}, maxProbes),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		infoReady: make(chan struct{}),
		complete:  make(chan struct{}),
		imported:  make(chan struct{}),
		published: make(chan struct{}),
	}
	if opt.Import == "" {
		t.endImport()
	}
	t.ls = newLoopState(t)
	if mi != nil {
		if err := t.setInfo(mi); err != nil {
			return nil, err
		}
		close(t.infoReady)
	}
	return t, nil
}

// setInfo opens the cache store for mi and publishes the metadata; the
// caller closes infoReady. It runs before the loop starts or on the loop
// goroutine.
func (t *Torrent) setInfo(mi *metainfo.MetaInfo) error {
	st, err := cache.Open(t.c.cfg.CacheDir, t.infoHash, mi.Info, cache.Config{
		Budget: t.c.budget, Logger: t.log, Layout: t.opt.layout(),
	})
	if err != nil {
		return fmt.Errorf("engine: open cache: %w", err)
	}
	t.nameMu.Lock()
	t.name = mi.Info.Name
	t.nameMu.Unlock()
	t.loaded.Store(&loadedInfo{mi: mi, store: st})
	return nil
}

func (t *Torrent) start() {
	t.c.wg.Add(1)
	go func() {
		defer t.c.wg.Done()
		t.run()
	}()
}

// InfoHash returns the torrent's v1 info hash.
func (t *Torrent) InfoHash() metainfo.Hash { return t.infoHash }

// Name returns the torrent's name: the info's name, else the magnet's dn,
// else the hex info hash.
func (t *Torrent) Name() string {
	t.nameMu.Lock()
	defer t.nameMu.Unlock()
	return t.name
}

// Info returns the validated info dictionary, or nil until it is known.
func (t *Torrent) Info() *metainfo.Info {
	if l := t.loaded.Load(); l != nil {
		return l.mi.Info
	}
	return nil
}

// MetaInfo returns the torrent's metainfo, or nil until it is known.
func (t *Torrent) MetaInfo() *metainfo.MetaInfo {
	if l := t.loaded.Load(); l != nil {
		return l.mi
	}
	return nil
}

func (t *Torrent) storeOrNil() *cache.Store {
	if l := t.loaded.Load(); l != nil {
		return l.store
	}
	return nil
}

// FileComplete reports whether every piece of file index i of the info is
// verified in the cache (false until the metadata is known). It asks the
// cache, not the torrent loop, so it returns promptly.
func (t *Torrent) FileComplete(i int) bool {
	info, st := t.Info(), t.storeOrNil()
	if info == nil || st == nil || i < 0 || i >= len(info.Files) {
		return false
	}
	first, end := info.FileSpan(info.Files[i])
	for p := first; p < end; p++ {
		if !st.Has(p) {
			return false
		}
	}
	return true
}

// InfoReady is closed once the metadata is known.
func (t *Torrent) InfoReady() <-chan struct{} { return t.infoReady }

// Complete is closed once every piece is verified in the cache.
func (t *Torrent) Complete() <-chan struct{} { return t.complete }

// ImportDone is closed once the existing data named by AddOptions.Import has
// been verified into the cache (at once when there is none), whether or not
// it held every piece: the torrent seeds what it verified and downloads the
// rest. Stats.State is "verifying" until then.
func (t *Torrent) ImportDone() <-chan struct{} { return t.imported }

func (t *Torrent) endImport() { t.importEnd.Do(func() { close(t.imported) }) }

// VerifyProgress reports the store's background re-verification of data
// already on disk (AddOptions.DataDir, Content, or a cache to re-check),
// for a progress line: the zero value until the metadata is known and the
// store is open.
func (t *Torrent) VerifyProgress() cache.VerifyProgress {
	if st := t.storeOrNil(); st != nil {
		return st.VerifyProgress()
	}
	return cache.VerifyProgress{}
}

// Done is closed once the torrent is removed and all its goroutines ended.
func (t *Torrent) Done() <-chan struct{} { return t.done }

// do runs f on the torrent's goroutine and waits for it. It returns
// ErrClosed when the torrent is removed first.
func (t *Torrent) do(f func()) error {
	return t.doCtx(context.Background(), f)
}

func (t *Torrent) doCtx(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case t.cmds <- func() { f(); close(ran) }:
	case <-t.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-t.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bitfield returns which pieces are verified in the cache (nil until the
// metadata is known).
func (t *Torrent) Bitfield() []bool {
	st := t.storeOrNil()
	if st == nil {
		return nil
	}
	return st.Bitfield()
}

// AddPeers adds peer addresses to dial.
func (t *Torrent) AddPeers(addrs ...netip.AddrPort) {
	addrs = append([]netip.AddrPort(nil), addrs...)
	_ = t.do(func() { t.ls.addPeers(addrs, SourceUser) })
}

// SetPrefetch turns background download of the whole torrent on or off.
func (t *Torrent) SetPrefetch(on bool) {
	_ = t.do(func() { t.ls.setPrefetch(on) })
}

// Pause disconnects all peers and stops announcing; cached data stays
// readable.
func (t *Torrent) Pause() { _ = t.do(func() { t.ls.setPaused(true) }) }

// Resume undoes Pause.
func (t *Torrent) Resume() { _ = t.do(func() { t.ls.setPaused(false) }) }

// Remove stops the torrent, disconnects its peers, closes its cache store
// (the data stays on disk) and drops it from the client. It waits for the
// torrent's goroutines to end.
func (t *Torrent) Remove() error {
	t.removeMu.Do(func() { close(t.closing) })
	<-t.done // the loop always ends once closing is closed
	t.c.forget(t)
	return nil
}

// acceptsIncoming reports whether the torrent takes incoming connections.
func (t *Torrent) acceptsIncoming() bool {
	select {
	case <-t.closing:
		return false
	default:
		return true
	}
}

// handOver gives an established connection (handshake done) to the loop.
// It reports false when the torrent did not take it; the caller then closes
// conn and releases its connection slot.
func (t *Torrent) handOver(conn net.Conn, hs handshakeResult, outgoing bool) bool {
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	took := make(chan bool, 1)
	ev := newConnEvent{conn: conn, hs: hs, outgoing: outgoing, took: took}
	select {
	case t.events <- ev:
	case <-t.closing:
		return false
	case <-timer.C:
		return false
	}
	select {
	case ok := <-took:
		return ok
	case <-t.done:
		// The loop ended; it closed or never saw the connection. Either way
		// the slot must be released once, by whoever owns it: the loop
		// reports through took before ending if it took the connection.
		select {
		case ok := <-took:
			return ok
		default:
			return false
		}
	}
}
