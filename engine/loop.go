package engine

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/choker"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/tracker"
	"github.com/swarmfs/swarmfs/metainfo"
)

// loopState is the mutable state of one torrent, owned by its goroutine
// (Torrent.run). Nothing else may touch it.
type loopState struct {
	t     *Torrent
	info  *metainfo.Info // nil until metadata is known
	store *cache.Store
	pk    *picker.Picker
	ch    *choker.Choker
	rng   *rand.Rand

	peers  map[*peer]struct{}
	byID   map[picker.PeerID]*peer
	nextID picker.PeerID

	known    map[netip.AddrPort]*candidate
	pexKnown int // known addresses learned through ut_pex
	dialQ    []netip.AddrPort
	halfOpen int
	strikes  map[netip.Addr]int
	banned   map[netip.Addr]string

	writes map[int]int // piece -> block writes in flight
	// writers holds the goroutine writing each piece's blocks, in arrival
	// order, so the cache can hash them as they come (see writeBlock).
	writers map[int]*pieceWriter
	writing int          // block writes in flight in all
	ready   map[int]bool // pieces with every block received, awaiting writes
	hashing map[int]bool // pieces being verified
	owners  map[int][]picker.Range
	ownSeq  map[int]uint64

	failedWrites map[int]bool                // pieces with a failed block write
	contrib      map[int]map[netip.Addr]bool // piece -> IPs that sent its blocks

	refill    map[*peer]bool // peers whose request pipeline needs topping up
	refillAll bool

	prefetch, paused bool
	verifySynced     bool // the cache's background re-verification was taken into account
	completed        bool
	importing        bool

	downBase, upBase int64 // bytes of peers that are gone
	downRate, upRate float64
	lastTick         time.Time

	ann       *tracker.Announcer
	annCancel context.CancelFunc
	annPeers  <-chan []netip.AddrPort

	ctx    context.Context // cancelled when the loop ends
	cancel context.CancelFunc

	meta *metaFetch // BEP 9 state while the info is unknown
	pex  pexState
	dhtT dhtTorrent
}

// candidate is a known peer address.
type candidate struct {
	connected bool
	tried     time.Time
	fails     int
	queued    bool
	dialing   bool // a dial is in flight; do not dial it again
	pex       bool // learned through ut_pex
}

// prioOwner is a reader's priority update for the loop.
type prioOwner struct {
	owner  int
	ranges []picker.Range
	seq    uint64 // ranges older than the owner's last applied seq are dropped
	clear  bool
}

// Limits of the loop.
const (
	maxHalfOpen    = 8
	requestTimeout = 30 * time.Second
	// nowTimeout is how long a peer that sends nothing may hold requests
	// for pieces a reader is waiting on.
	nowTimeout  = 5 * time.Second
	minPipeline = 4
	maxPipeline = 256
	// maxWriting bounds the received blocks waiting for the disk (16 MiB):
	// beyond it no new request is sent, so a slow disk slows the download
	// instead of filling memory.
	maxWriting = 1024
)

func newLoopState(t *Torrent) *loopState {
	ctx, cancel := context.WithCancel(context.Background())
	return &loopState{
		t:        t,
		rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		peers:    make(map[*peer]struct{}),
		byID:     make(map[picker.PeerID]*peer),
		known:    make(map[netip.AddrPort]*candidate),
		strikes:  make(map[netip.Addr]int),
		banned:   make(map[netip.Addr]string),
		writes:   make(map[int]int),
		writers:  make(map[int]*pieceWriter),
		ready:    make(map[int]bool),
		hashing:  make(map[int]bool),
		owners:   make(map[int][]picker.Range),
		ownSeq:   make(map[int]uint64),
		contrib:  make(map[int]map[netip.Addr]bool),
		refill:   make(map[*peer]bool),
		prefetch: t.opt.Prefetch,
		ctx:      ctx,
		cancel:   cancel,
	}
}

// run is the torrent's goroutine.
func (t *Torrent) run() {
	ls := t.ls
	defer close(t.done)
	defer ls.cancel()
	ls.ch = choker.New(choker.Config{Slots: t.c.cfg.UploadSlots}, ls.rng)
	if mi := t.MetaInfo(); mi != nil {
		ls.infoKnown(mi)
	} else {
		ls.meta = newMetaFetch()
	}
	ls.publishStats() // the first announce needs the real "left"
	ls.startTrackers()
	ls.startDHT()
	ls.addCandidates(t.opt.Peers, "options")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ls.lastTick = time.Now()
	ls.maybeDial()
	for {
		var evicted, verified <-chan struct{}
		if ls.store != nil {
			evicted = ls.store.Evictions()
			if !ls.verifySynced {
				verified = ls.store.VerifyDone()
			}
		}
		select {
		case f := <-t.cmds:
			f()
		case ev := <-t.events:
			ls.handle(ev)
			// Drain what is already queued before refilling pipelines.
			for i := 0; i < 64; i++ {
				select {
				case ev := <-t.events:
					ls.handle(ev)
					continue
				default:
				}
				break
			}
		case u := <-t.prio:
			ls.applyPrio(u)
		case <-evicted:
			ls.onEvicted()
		case <-verified:
			ls.verifySynced = true
			ls.syncWithStore()
		case addrs := <-ls.annPeers:
			ls.addCandidates(addrs, "tracker")
		case addrs := <-ls.dhtT.peers:
			ls.addCandidates(addrs, "dht")
		case now := <-tick.C:
			ls.tick(now)
		case <-t.closing:
			ls.shutdown()
			return
		}
		ls.fillRequests()
		ls.maybeDial()
	}
}

// infoKnown sets the torrent up once the metadata is known: picker, store
// and import.
func (ls *loopState) infoKnown(mi *metainfo.MetaInfo) {
	t := ls.t
	ls.info = mi.Info
	ls.store = t.storeOrNil()
	info := ls.info
	ls.pk = picker.New(info.NumPieces(), info.PieceLength, info.TotalLength, 0)
	ls.pk.Seed(ls.rng.Uint64())
	for i, have := range ls.store.Bitfield() {
		if have {
			ls.pk.SetHave(i, true)
		}
	}
	ls.setPrefetch(ls.prefetch)
	for o, rs := range ls.owners {
		ls.pk.SetRanges(o, rs)
	}
	ls.checkComplete()
	if t.opt.Import != "" && !ls.completed {
		ls.startImport(t.opt.Import)
	} else {
		t.endImport()
	}
}

func (ls *loopState) setPrefetch(on bool) {
	ls.prefetch = on
	if ls.pk == nil {
		return
	}
	if on {
		ls.pk.SetDefault(picker.Normal)
	} else {
		ls.pk.SetDefault(picker.None)
		ls.cancelUnwanted()
	}
	ls.updateInterestAll()
	ls.refillAll = true
}

func (ls *loopState) setPaused(on bool) {
	if ls.paused == on {
		return
	}
	ls.paused = on
	if on {
		for p := range ls.peers {
			ls.removePeer(p, "paused")
		}
		ls.stopTrackers()
	} else {
		ls.startTrackers()
		for a, c := range ls.known {
			c.fails = 0
			ls.queueDial(a)
		}
	}
}

// applyPrio applies a reader's new ranges to the picker.
func (ls *loopState) applyPrio(u prioOwner) {
	if !u.clear && u.seq < ls.ownSeq[u.owner] {
		return
	}
	if u.clear {
		delete(ls.ownSeq, u.owner)
		delete(ls.owners, u.owner)
		if ls.pk != nil {
			ls.pk.ClearOwner(u.owner)
		}
	} else {
		ls.ownSeq[u.owner] = u.seq
		ls.owners[u.owner] = u.ranges
		if ls.pk != nil {
			ls.pk.SetRanges(u.owner, u.ranges)
		}
	}
	if ls.pk == nil {
		return
	}
	ls.cancelUnwanted()
	ls.updateInterestAll()
	ls.refillAll = true
}

// checkComplete closes Complete once every piece is verified.
func (ls *loopState) checkComplete() {
	if ls.completed || ls.pk == nil || ls.pk.HaveCount() < ls.info.NumPieces() {
		return
	}
	ls.completed = true
	close(ls.t.complete)
	if ls.ann != nil {
		ls.ann.Completed()
	}
	ls.t.log.Info("torrent complete", "pieces", ls.info.NumPieces())
	// A seed is not interested in anyone.
	ls.updateInterestAll()
}

// tick runs once a second: rates, request timeouts, choking, dialing.
func (ls *loopState) tick(now time.Time) {
	dt := now.Sub(ls.lastTick).Seconds()
	ls.lastTick = now
	if dt <= 0 {
		dt = 1
	}
	var down, up float64
	for p := range ls.peers {
		d, u := p.down.Load(), p.up.Load()
		p.downRate = ewma(p.downRate, float64(d-p.lastDown)/dt)
		p.upRate = ewma(p.upRate, float64(u-p.lastUp)/dt)
		p.lastDown, p.lastUp = d, u
		down += p.downRate
		up += p.upRate
		ls.checkTimeouts(p, now)
	}
	ls.downRate, ls.upRate = down, up
	if ls.ch.Due(now) {
		ls.rechoke(now)
	}
	ls.publishStats()
	ls.requeueKnown(now)
	if ls.ann != nil && len(ls.peers) < 5 && ls.wantsPeers() {
		ls.ann.NeedPeers()
	}
	ls.pexTick(now)
	ls.metaTick(now)
	ls.refillAll = true
}

func ewma(old, sample float64) float64 {
	if old == 0 {
		return sample
	}
	return 0.6*old + 0.4*sample
}

// wantsPeers reports whether more peers would help.
func (ls *loopState) wantsPeers() bool {
	if ls.paused {
		return false
	}
	if ls.pk == nil {
		return true
	}
	return !ls.pk.Done() || !ls.completed
}

// publishStats stores the byte counters the announcer reads.
func (ls *loopState) publishStats() {
	s := ls.stats()
	ls.t.statUp.Store(s.Uploaded)
	ls.t.statDown.Store(s.Downloaded)
	left := int64(-1)
	if ls.info != nil {
		left = ls.info.TotalLength - s.BytesHave
	}
	ls.t.statLeft.Store(left)
	ls.t.mu.Lock()
	ls.t.last = s
	ls.t.mu.Unlock()
}

// stats builds a Stats snapshot.
func (ls *loopState) stats() Stats {
	s := Stats{
		Downloaded: ls.downBase, Uploaded: ls.upBase,
		DownRate: ls.downRate, UpRate: ls.upRate,
		Peers: len(ls.peers), HalfOpen: ls.halfOpen,
	}
	for p := range ls.peers {
		s.Downloaded += p.down.Load()
		s.Uploaded += p.up.Load()
		if ls.isSeed(p) {
			s.Seeds++
		}
	}
	for _, c := range ls.known {
		if !c.connected {
			s.Known++
		}
	}
	switch {
	case ls.info == nil:
		s.State = "fetching metadata"
		if ls.paused {
			s.State = "paused"
		}
		return s
	case ls.paused:
		s.State = "paused"
	case ls.importing:
		s.State = "verifying"
	case ls.completed:
		s.State = "seeding"
	case ls.pk.Missing() > 0:
		s.State = "downloading"
	default:
		s.State = "idle"
	}
	s.PiecesTotal = ls.info.NumPieces()
	s.PiecesHave, s.BytesHave = ls.store.Present()
	return s
}

// onEvicted forgets pieces the cache evicted: they may be fetched again and
// are never served.
func (ls *loopState) onEvicted() {
	for _, i := range ls.store.TakeEvicted() {
		if ls.pk != nil && i >= 0 && i < ls.info.NumPieces() {
			ls.pk.SetHave(i, false)
		}
	}
	ls.updateInterestAll()
	ls.refillAll = true
}

// syncWithStore makes the picker agree with the cache after the cache
// re-verified its data in the background (pieces found good or bad).
func (ls *loopState) syncWithStore() {
	for i, have := range ls.store.Bitfield() {
		switch {
		case have && !ls.pk.Have(i):
			ls.pk.SetHave(i, true)
			ls.announceHave(i)
		case !have && ls.pk.Have(i):
			ls.pk.SetHave(i, false)
		}
	}
	ls.cancelUnwanted()
	ls.updateInterestAll()
	ls.checkComplete()
	ls.refillAll = true
}

// shutdown ends everything the loop started and waits for it.
func (ls *loopState) shutdown() {
	t := ls.t
	ls.publishStats()
	for p := range ls.peers {
		ls.removePeer(p, "torrent removed")
	}
	ls.stopTrackers()
	ls.stopDHT()
	ls.cancel()
	// Goroutines that post events select on t.closing, which is closed.
	t.wg.Wait()
	// A select may have picked the send over t.closing: undo what the
	// events still queued hold.
	for {
		select {
		case ev := <-t.events:
			switch ev := ev.(type) {
			case dialResult:
				if ev.conn != nil {
					ev.conn.Close()
				}
				t.c.releaseConn()
			case newConnEvent:
				ev.took <- false
			}
			continue
		default:
		}
		break
	}
	if ls.store != nil {
		if err := ls.store.Close(); err != nil {
			t.log.Warn("closing cache store", "err", err)
		}
	}
}
