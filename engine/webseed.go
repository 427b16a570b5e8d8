package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/webseed"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Events posted by web seed fetches.
type (
	// wsPiece reports one piece a web seed delivered, after the cache
	// verified and stored it (err nil), or refused it (a *cache.HashError:
	// the seed sent wrong bytes), or failed to (a disk error).
	wsPiece struct {
		run   *wsRun
		piece int
		err   error
	}
	// wsDone reports the end of a run.
	wsDone struct {
		run *wsRun
		err error
	}
)

// wsRun is one FetchRun in flight: pieces [first, end) from one seed,
// next being the first the loop has not heard of yet.
type wsRun struct {
	seed              int
	first, next, end  int
	cancel            context.CancelFunc
	window            bool // fetched for readers, not for a whole download
	stopped           bool // cancelled; its goroutine is ending
	started           time.Time
	delivered, failed int
}

// stop cancels the run; its goroutine ends and posts wsDone.
func (r *wsRun) stop() {
	r.stopped = true
	r.cancel()
}

// Bounds of web seed runs.
const (
	// wsMaxRunBytes caps the bytes of one run (one Range request per
	// file it touches); a run has at least one piece.
	wsMaxRunBytes = 8 << 20
	// wsMinNowWait and wsMaxNowWait bound how long a piece a reader waits
	// on is left to peers that have it before a web seed fetches it too.
	wsMinNowWait = 250 * time.Millisecond
	wsMaxNowWait = 3 * time.Second
	// wsWindowWaits is how many Now waits a readahead piece that no peer
	// started is left to the peers.
	wsWindowWaits = 4
)

// webSeeds is the loop's web seed part: one webseed.Seed per url-list
// entry and AddOptions.WebSeeds URL, the runs in flight and the pieces
// they hold, and when each piece readers want became wanted. To the
// picker a web seed is a peer that has everything and costs more: it gets
// pieces readers wait on when no unchoked peer has them or peers are slow
// (wait), readahead pieces peers neither have nor started in time, and,
// when the whole torrent is wanted (get, --prefetch), pieces peers did not
// start. Its runs are goroutines that write each piece through the cache's
// verifying WritePiece and post wsPiece; a hash failure charges the seed
// (Failed), never a peer. Used from the loop goroutine only.
type webSeeds struct {
	seeds []*webseed.Seed
	conns int               // fetches in flight allowed per seed
	runs  map[*wsRun]bool   // in flight
	busy  map[int]*wsRun    // piece -> the run that will fetch it
	per   []int             // runs in flight per seed
	since map[int]time.Time // window piece -> when a reader first wanted it
	// cursor is where the scan for whole-download pieces resumes.
	cursor int
	kick   bool // fill at the loop's next step
	// failed counts pieces from web seeds that failed their hash check.
	failed int
}

// startWebSeeds makes the seeds of the torrent once its info is known.
// URLs that do not make a seed (bad URLs) are logged and skipped.
func (ls *loopState) startWebSeeds(mi *metainfo.MetaInfo) {
	t := ls.t
	ws := &ls.ws
	ws.runs, ws.busy, ws.since = make(map[*wsRun]bool), make(map[int]*wsRun), make(map[int]time.Time)
	if t.opt.NoWebSeeds {
		return
	}
	var urls []string
	for _, u := range slices.Concat(mi.WebSeeds, t.opt.WebSeeds) {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	// Web seed bytes count against the client's rate limits too.
	cfg := webseed.Config{MaxConns: t.c.cfg.WebSeedConns, WrapConn: t.c.wrapConn, Logger: t.log}
	for _, u := range urls {
		s, err := webseed.New(u, mi.Info, cfg)
		if err != nil {
			t.log.Warn("web seed not used", "url", u, "err", err)
			continue
		}
		ws.seeds = append(ws.seeds, s)
		ws.conns = s.Status().MaxConns
	}
	ws.per = make([]int, len(ws.seeds))
	ws.kick = len(ws.seeds) > 0
	if len(ws.seeds) > 0 {
		t.log.Debug("web seeds", "n", len(ws.seeds))
	}
}

// bytes returns the bytes received from web seeds, and how many seeds
// are still used (not dropped).
func (ws *webSeeds) bytes() (n int64, live int) {
	for _, s := range ws.seeds {
		st := s.Status()
		n += st.Downloaded
		if st.State != webseed.StateDropped {
			live++
		}
	}
	return n, live
}

// nowWait is how long a piece a reader waits on is left to peers that
// have it: about two pieces' time at the peers' rate, bounded.
func nowWait(pieceLen int64, rate float64) time.Duration {
	if rate <= 0 {
		return wsMinNowWait
	}
	d := time.Duration(2 * float64(pieceLen) / rate * float64(time.Second))
	return min(max(d, wsMinNowWait), wsMaxNowWait)
}

// fillWebSeeds starts runs on the seeds with free slots, when asked to
// (ws.kick: a tick, a reader's new window, a run's news).
func (ls *loopState) fillWebSeeds() {
	ws := &ls.ws
	if !ws.kick {
		return
	}
	ws.kick = false
	if len(ws.seeds) == 0 || ls.pk == nil || ls.paused || ls.pk.Done() {
		return
	}
	now := time.Now()
	ls.cancelUnwantedRuns()
	window := ls.windowPieces(now)
	wait := nowWait(ls.info().PieceLength, ls.rates.down)
	for si, s := range ws.seeds {
		for ws.per[si] < ws.conns && s.Free() > 0 {
			first, end, win := ls.pickRun(s, window, wait, now)
			if first < 0 {
				break
			}
			ls.startRun(si, first, end, win, now)
		}
	}
	ls.preemptForNow(window, wait, now)
}

// cancelUnwantedRuns cancels the runs whose next piece nobody wants any
// more (a reader moved on) or that peers delivered: their slots go to
// what is wanted now.
func (ls *loopState) cancelUnwantedRuns() {
	for r := range ls.ws.runs {
		if r.next < r.end && (ls.pk.Have(r.next) || ls.pk.Priority(r.next) == picker.None) {
			r.stop()
		}
	}
}

// preemptForNow cancels one run that fetches pieces nobody waits on when
// a piece a reader waits on should come from a web seed but every slot
// is taken: the run ends at once and the loop refills with the waited-on
// piece first.
func (ls *loopState) preemptForNow(window []int, wait time.Duration, now time.Time) {
	ws := &ls.ws
	for _, i := range window {
		if ls.pk.Priority(i) < picker.Now {
			return // sorted: no Now piece left
		}
		for r := range ws.runs {
			if !r.stopped && r.next < r.end && ls.pk.Priority(r.next) < picker.Now && ls.windowWanted(ws.seeds[r.seed], i, wait, now) {
				r.stop()
				return
			}
		}
	}
}

// windowPieces returns the missing pieces readers want (Now, Readahead,
// HeadTail), highest priority first, then in order, and keeps ws.since
// for exactly those.
func (ls *loopState) windowPieces(now time.Time) []int {
	ws, pk := &ls.ws, ls.pk
	seen := make(map[int]bool)
	var out []int
	for _, rs := range ls.prios.owners {
		for _, r := range rs {
			for i := max(r.First, 0); i < min(r.End, pk.NumPieces()); i++ {
				if seen[i] || pk.Have(i) || pk.Priority(i) < picker.HeadTail {
					continue
				}
				seen[i] = true
				out = append(out, i)
				if _, ok := ws.since[i]; !ok {
					ws.since[i] = now
				}
			}
		}
	}
	for i := range ws.since {
		if !seen[i] {
			delete(ws.since, i)
		}
	}
	slices.SortFunc(out, func(a, b int) int {
		if pa, pb := pk.Priority(a), pk.Priority(b); pa != pb {
			return int(pb) - int(pa)
		}
		return a - b
	})
	return out
}

// peerless reports whether no connected peer that does not choke us has
// piece i.
func (ls *loopState) peerless(i int) bool {
	if ls.pk.Availability(i) == 0 {
		return true
	}
	for p := range ls.conns.peers {
		if !p.peerChoking && ls.pk.PeerHas(p.id, i) {
			return false
		}
	}
	return true
}

// windowWanted reports whether a seed should fetch window piece i now.
func (ls *loopState) windowWanted(s *webseed.Seed, i int, wait time.Duration, now time.Time) bool {
	pk := ls.pk
	prio := pk.Priority(i)
	if pk.Have(i) || prio < picker.HeadTail || ls.ws.busy[i] != nil || !s.Usable(i) {
		return false
	}
	if ls.peerless(i) {
		return true
	}
	waited := now.Sub(ls.ws.since[i])
	if prio == picker.Now {
		return waited >= wait
	}
	return !pk.Started(i) && waited >= wsWindowWaits*wait
}

// bulkWanted reports whether a seed should fetch piece i for a whole
// download: wanted at Normal priority and not started by peers.
func (ls *loopState) bulkWanted(s *webseed.Seed, i int) bool {
	pk := ls.pk
	return !pk.Have(i) && pk.Priority(i) == picker.Normal && ls.ws.busy[i] == nil && !pk.Started(i) && s.Usable(i)
}

// pickRun chooses the next run for seed s: pieces [first, end), first -1
// when there is none. Window pieces come first; whole-download pieces
// only while the whole torrent is wanted (prefetch).
func (ls *loopState) pickRun(s *webseed.Seed, window []int, wait time.Duration, now time.Time) (first, end int, win bool) {
	info := ls.info()
	maxRun := max(int(wsMaxRunBytes/info.PieceLength), 1)
	for _, i := range window {
		if !ls.windowWanted(s, i, wait, now) {
			continue
		}
		end := i + 1
		for end < info.NumPieces() && end-i < maxRun && ls.windowWanted(s, end, wait, now) {
			end++
		}
		return i, end, true
	}
	if !ls.prefetch {
		return -1, -1, false
	}
	ws, n := &ls.ws, info.NumPieces()
	for k := 0; k < n; k++ {
		i := (ws.cursor + k) % n
		if !ls.bulkWanted(s, i) {
			continue
		}
		end := i + 1
		for end < n && end-i < maxRun && ls.bulkWanted(s, end) {
			end++
		}
		ws.cursor = end % n
		return i, end, false
	}
	return -1, -1, false
}

// startRun starts a goroutine fetching pieces [first, end) from seed si.
func (ls *loopState) startRun(si, first, end int, window bool, now time.Time) {
	t, ws := ls.t, &ls.ws
	ctx, cancel := context.WithCancel(ls.ctx)
	r := &wsRun{seed: si, first: first, next: first, end: end, cancel: cancel, window: window, started: now}
	ws.runs[r] = true
	ws.per[si]++
	for i := first; i < end; i++ {
		ws.busy[i] = r
	}
	s, st, info := ws.seeds[si], ls.store(), ls.info()
	t.goWorker(func() {
		defer cancel()
		buf := make([]byte, info.PieceSize(first))
		if end-first > 1 {
			buf = make([]byte, info.PieceLength)
		}
		err := s.FetchRun(ctx, first, end, buf, func(piece int, data []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			// The cache hashes the piece and stores it only when it
			// matches: readers never see a web seed's unverified bytes.
			werr := st.WritePiece(piece, data)
			if !t.post(wsPiece{run: r, piece: piece, err: werr}) {
				return errClosing
			}
			return werr // a wrong or lost piece ends the run
		})
		t.post(wsDone{run: r, err: err})
	})
}

// errClosing ends a web seed run whose torrent is closing.
var errClosing = errors.New("engine: torrent closing")

// onWSPiece applies a piece a web seed delivered.
func (ls *loopState) onWSPiece(ev wsPiece) {
	ws, r, i := &ls.ws, ev.run, ev.piece
	if ws.busy[i] == r {
		delete(ws.busy, i)
	}
	r.next = i + 1
	ws.kick = true
	s := ws.seeds[r.seed]
	var he *cache.HashError
	switch {
	case ev.err == nil:
		r.delivered++
		if ls.pk.Have(i) {
			return // peers were first
		}
		if !ls.store().Has(i) {
			// Evicted before this news arrived (as in applyDisk): the
			// picker must not count it as had.
			ls.pk.PieceComplete(i) // ends a download peers started
			ls.pk.SetHave(i, false)
			ls.conns.refillAll = true
			return
		}
		ls.pk.PieceComplete(i)
		ls.cancelUnwanted() // peers' requests for it
		ls.announceHave(i)
		ls.checkComplete()
		ls.dirty = true
	case errors.As(ev.err, &he):
		r.failed++
		ws.failed++
		ls.tally.hashFailed++
		s.Failed(i) // the seed's fault; no peer is blamed
		ls.t.log.Info("piece from a web seed failed the hash check", "piece", i, "url", s.URL(), "seed", s.Status().String())
	default:
		ls.t.log.Warn("storing piece from a web seed", "piece", i, "err", ev.err) // the disk failed, not the seed
	}
}

// onWSDone forgets a run that ended and frees the pieces it did not
// deliver.
func (ls *loopState) onWSDone(ev wsDone) {
	ws, r := &ls.ws, ev.run
	if !ws.runs[r] {
		return
	}
	delete(ws.runs, r)
	ws.per[r.seed]--
	for i := r.next; i < r.end; i++ {
		if ws.busy[i] == r {
			delete(ws.busy, i)
		}
	}
	ws.kick = true
	s := ws.seeds[r.seed]
	var he *cache.HashError
	ls.t.log.Debug("web seed run ended", "url", s.URL(), "first", r.first, "end", r.end, "window", r.window,
		"delivered", r.delivered, "failed", r.failed, "stopped", r.stopped, "took", time.Since(r.started), "err", ev.err)
	switch err := ev.err; {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, errClosing), errors.As(err, &he):
	case errors.Is(err, webseed.ErrBackoff), errors.Is(err, webseed.ErrDropped), errors.Is(err, webseed.ErrFileMissing):
		ls.t.log.Debug("web seed run not done", "url", s.URL(), "pieces", r.end-r.first, "err", err)
	default:
		ls.t.log.Info("web seed fetch failed", "url", s.URL(), "first", r.first, "end", r.end, "err", err, "seed", s.Status().String())
	}
}

// webSeedHave cancels the run whose next piece peers just delivered: the
// rest of the run goes back to the picker.
func (ls *loopState) webSeedHave(i int) {
	if r := ls.ws.busy[i]; r != nil && r.next == i {
		r.stop()
	}
}

// webSeedTick runs once a second: it cancels the runs of a paused torrent
// and those whose next piece peers delivered, and has the seeds filled
// again (a seed's backoff may have ended, a piece's wait for peers run
// out).
func (ls *loopState) webSeedTick() {
	ws := &ls.ws
	for r := range ws.runs {
		if ls.paused || (r.next < r.end && ls.pk.Have(r.next)) {
			r.stop()
		}
	}
	ws.kick = true
}

// webSeedsWhy describes the web seeds for a reader's error: "" when
// there are none, else "; web seed URL: STATE" for each.
func (ls *loopState) webSeedsWhy() string {
	var b strings.Builder
	for _, s := range ls.ws.seeds {
		st := s.Status()
		fmt.Fprintf(&b, "; web seed %s: %s, %d fetches in flight", st.URL, st.String(), st.InFlight)
	}
	return b.String()
}

// closeWebSeeds closes the seeds (their fetches ended with the loop's
// context).
func (ls *loopState) closeWebSeeds() {
	for _, s := range ls.ws.seeds {
		s.Close()
	}
}
