package engine

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/choker"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/metainfo"
)

// loopState is the mutable state of one torrent, owned by its goroutine
// (Torrent.run). Nothing else may touch it. Each concern is a part with a
// type and a file of its own: the connected peers (conns), the address
// book (addrBook), the disk pipeline (diskPipe), reader priorities
// (prios), rates, trackers and DHT (announce), metadata fetching
// (metaFetch), PEX (pexState) and web seeds (webSeeds). The metainfo and the cache store are
// the Torrent's (info, store).
type loopState struct {
	t  *Torrent
	pk *picker.Picker // nil until the metadata is known
	ch *choker.Choker

	conns conns
	book  *addrBook
	disk  *diskPipe // nil until the metadata is known
	prios prios
	rates rates
	tally tally
	ann   announce
	meta  *metaFetch // BEP 9 state while the info is unknown
	pex   pexState
	ws    webSeeds
	punch *holepunchState // BEP 55; nil until needed
	fault diskFault
	gate  prefetchGate
	late  lateTimer // the next late block of a waiting read (pipeline.go)

	prefetch, paused bool
	verifySynced     <-chan struct{} // the cache's VerifyDone whose closing was taken into account
	completed        bool
	importing        bool
	dirty            bool // publish a snapshot after this step

	ctx    context.Context // cancelled when the loop ends
	cancel context.CancelFunc
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
)

func newLoopState(t *Torrent) *loopState {
	ctx, cancel := context.WithCancel(context.Background())
	return &loopState{
		t:        t,
		conns:    newConns(),
		book:     newAddrBook(t.c.addr),
		prios:    newPrios(),
		prefetch: t.opt.Prefetch,
		ctx:      ctx,
		cancel:   cancel,
	}
}

// info returns the info dictionary, nil until it is known.
func (ls *loopState) info() *metainfo.Info { return ls.t.Info() }

// store returns the cache store, nil until the metadata is known.
func (ls *loopState) store() *cache.Store { return ls.t.storeOrNil() }

// run is the torrent's goroutine.
func (t *Torrent) run() {
	ls := t.ls
	defer close(t.done)
	defer ls.cancel()
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	ls.ch = choker.New(choker.Config{Slots: t.c.cfg.UploadSlots}, rng)
	if mi := t.MetaInfo(); mi != nil {
		ls.infoKnown(mi)
	} else {
		ls.meta = newMetaFetch()
	}
	ls.publish() // the first announce needs the real "left"
	ls.startTrackers()
	ls.startDHT()
	ls.addPeers(t.opt.Peers, SourceOptions)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer ls.late.stop()
	ls.rates.lastTick = time.Now()
	ls.maybeDial()
	for {
		var evicted, verified <-chan struct{}
		if st := ls.store(); st != nil {
			evicted = st.Evictions()
			// A Files store starts another round (another channel)
			// when a file changed behind its back.
			if d := st.VerifyDone(); d != ls.verifySynced {
				verified = d
			}
		}
		select {
		case f := <-t.cmds:
			f()
			ls.dirty = true
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
		case <-t.prio.wake:
			for _, u := range t.prio.take() {
				ls.applyPrio(u)
			}
		case <-evicted:
			ls.onEvicted()
		case <-verified:
			ls.verifySynced = verified
			ls.dirty = true // the state leaves "verifying"
			ls.syncWithStore()
		case addrs := <-ls.ann.trkPeers:
			ls.addPeers(addrs, SourceTracker)
		case addrs := <-ls.ann.dhtPeers:
			ls.addPeers(addrs, SourceDHT)
		case now := <-tick.C:
			ls.tick(now)
		case <-ls.late.C():
			ls.late.fired()
			ls.conns.refillAll = true
		case <-t.closing:
			ls.shutdown()
			return
		}
		ls.fillRequests()
		ls.fillWebSeeds()
		ls.updateReadClasses()
		ls.maybeDial()
		if ls.dirty {
			ls.publish()
		}
	}
}

// infoKnown sets the torrent up once the metadata is known: picker, disk
// pipeline and import.
func (ls *loopState) infoKnown(mi *metainfo.MetaInfo) {
	t := ls.t
	info, st := mi.Info, ls.store()
	ls.pk = picker.New(info.NumPieces(), info.PieceLength, info.TotalLength, 0)
	ls.pk.Seed(rand.Uint64())
	for i, have := range st.Bitfield() {
		if have {
			ls.pk.SetHave(i, true)
		}
	}
	ls.disk = newDiskPipe(st, diskWorkers{goFunc: t.goWorker, post: t.post})
	ls.startWebSeeds(mi)
	ls.setPrefetch(ls.prefetch)
	ls.prios.Replay(ls.pk)
	ls.checkComplete()
	if t.opt.Import != "" && !ls.completed {
		ls.startImport(t.opt.Import)
	} else {
		t.endImport()
	}
	ls.dirty = true
}

// goWorker runs f in a goroutine that Remove waits for.
func (t *Torrent) goWorker(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// post delivers a worker's event to the loop; it reports false when the
// torrent is closing.
func (t *Torrent) post(ev any) bool {
	select {
	case t.events <- ev:
		return true
	case <-t.closing:
		return false
	}
}

func (ls *loopState) setPrefetch(on bool) {
	ls.prefetch = on
	if ls.pk == nil {
		return
	}
	if on {
		ls.gate.held = false
		ls.pk.SetDefault(picker.Normal)
		ls.gatePrefetch()
	} else {
		ls.pk.SetDefault(picker.None)
		ls.cancelUnwanted()
	}
	ls.updateInterestAll()
	ls.conns.refillAll = true
	ls.ws.kick = true
}

func (ls *loopState) setPaused(on bool) {
	if ls.paused == on {
		return
	}
	ls.paused = on
	if on {
		for p := range ls.conns.peers {
			ls.removePeer(p, "paused")
		}
		ls.stopTrackers()
	} else {
		ls.startTrackers()
		ls.book.RetryAll()
	}
}

// applyPrio applies a reader's new ranges to the picker.
func (ls *loopState) applyPrio(u prioOwner) {
	if !ls.prios.Apply(u) || ls.pk == nil {
		return
	}
	ls.gate.noteRead(u.ranges, ls.info().NumPieces())
	u.applyTo(ls.pk)
	ls.cancelUnwanted()
	ls.updateInterestAll()
	ls.conns.refillAll = true
	ls.ws.kick = true
}

// checkComplete closes Complete once every piece is verified.
func (ls *loopState) checkComplete() {
	if ls.completed || ls.pk == nil || ls.pk.HaveCount() < ls.info().NumPieces() {
		return
	}
	ls.completed = true
	ls.publish() // Stats says "seeding" once Complete is closed
	close(ls.t.complete)
	if ls.ann.trk != nil {
		ls.ann.trk.Completed()
	}
	wsBytes, _ := ls.ws.bytes()
	ls.t.log.Info("torrent complete", "pieces", ls.info().NumPieces(), "web_seed_bytes", wsBytes)
	// A seed is not interested in anyone.
	ls.updateInterestAll()
}

// tick runs once a second: rates, request timeouts, choking, dialing.
func (ls *loopState) tick(now time.Time) {
	dt := ls.rates.interval(now)
	var down, up float64
	for p := range ls.conns.peers {
		p.noteUseful(now)
		down += p.downRate.update(p.down.Load(), dt)
		up += p.upRate.update(p.up.Load(), dt)
		ls.checkTimeouts(p, now)
	}
	ls.rates.down, ls.rates.up = down, up
	if ls.ch.Due(now) {
		ls.rechoke(now)
	}
	ls.dirty = true
	if ls.wantsPeers() && !ls.book.Queued() && ls.conns.len() < ls.t.c.cfg.MaxConnsPerTorrent/2 {
		ls.book.RequeueDue(now)
	}
	if ls.ann.trk != nil && ls.conns.len() < 5 && ls.wantsPeers() {
		ls.ann.trk.NeedPeers()
	}
	ls.pexTick(now)
	ls.metaTick(now)
	ls.webSeedTick()
	ls.updateInterestAll() // interest kept after the last want ends (interestLinger)
	ls.conns.refillAll = true
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

// onEvicted forgets pieces the cache evicted: they are never served, and
// fetched again only for a reader that reads them (or reads ahead). Pieces
// a data directory's store dropped (a file changed behind its back) are
// not spent: no cap applies there, so prefetch may fetch them again.
func (ls *loopState) onEvicted() {
	_, inPlace := ls.store().Layout().(cache.Files)
	for _, i := range ls.store().TakeEvicted() {
		if ls.pk != nil && i >= 0 && i < ls.info().NumPieces() {
			ls.pk.SetHave(i, false)
			// Only a reader's window wants it again: prefetch and
			// head/tail priorities would evict another piece for it.
			ls.pk.SetSpent(i, !inPlace)
			ls.tally.evictedBytes += ls.info().PieceSize(i)
		}
	}
	ls.updateInterestAll()
	ls.conns.refillAll = true
	ls.dirty = true
}

// syncWithStore makes the picker agree with the cache after the cache
// re-verified its data in the background (pieces found good or bad).
func (ls *loopState) syncWithStore() {
	for i, have := range ls.store().Bitfield() {
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
	ls.conns.refillAll = true
	ls.dirty = true
}

// shutdown ends everything the loop started and waits for it.
func (ls *loopState) shutdown() {
	t := ls.t
	ls.publish()
	for p := range ls.conns.peers {
		ls.removePeer(p, "torrent removed")
	}
	ls.stopTrackers()
	ls.stopDHT()
	ls.cancel()
	// Goroutines that post events select on t.closing, which is closed.
	t.wg.Wait()
	ls.closeWebSeeds()
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
	if st := ls.store(); st != nil {
		if err := st.Close(); err != nil {
			t.log.Warn("closing cache store", "err", err)
		}
	}
}
