package cache

import "fmt"

// Eviction: the Budget picks victims; a Store drops them here and punches
// their holes once a state that no longer claims them is on disk (persist).

// evictPiece is called by the Budget with no lock held. It drops piece p
// unless it is pinned or being read, in which case it is charged again as
// most recently used.
func (s *Store) evictPiece(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || p < 0 || p >= len(s.pieces) {
		return
	}
	st := &s.pieces[p]
	if !st.present {
		return
	}
	if st.life.pins > 0 || st.life.readers > 0 {
		s.budget.add(s, p, s.info.PieceSize(p), st.life.pins > 0)
		return
	}
	s.unpresentLocked(p)
	st.life.pendingPunch = true
	s.punchQueue = append(s.punchQueue, p)
}

// unpresentLocked makes present piece p absent and reports it through
// Evictions and TakeEvicted; the next persist writes a state without it.
func (s *Store) unpresentLocked(p int) {
	st := &s.pieces[p]
	st.present = false
	s.nPresent--
	s.bytesPresent -= s.info.PieceSize(p)
	st.life.evictGen++
	if !st.life.listedEvicted {
		st.life.listedEvicted = true
		s.evicted = append(s.evicted, p)
	}
	select {
	case s.evictCh <- struct{}{}:
	default:
	}
	s.markDirtyLocked()
}

// dropShort runs after a read of pieces [first, end) of the Files layout
// found a file too short for them: it was truncated behind the store's
// back. Pieces whose bytes are no longer all in their files are dropped
// like evicted ones (without a punch), so that they are neither served
// nor claimed again and may be downloaded anew.
func (s *Store) dropShort(first, end int) {
	if s.files == nil {
		return
	}
	var gone []int
	for p := first; p < end; p++ {
		if !s.files.holds(s.info.PieceOffset(p), s.info.PieceSize(p)) {
			gone = append(gone, p)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range gone {
		if s.pieces[p].present {
			s.unpresentLocked(p)
			s.log.Warn("cache: a file was cut short behind the store's back; piece dropped", "dir", s.ioDir, "piece", p)
		}
	}
}

// punch returns piece p's disk space to the filesystem.
func (s *Store) punch(p int) error {
	size := s.info.PieceSize(p)
	if size == 0 {
		return nil
	}
	err := s.data.punch(s.info.PieceOffset(p), size)
	if err != nil {
		return s.diskErr(fmt.Sprintf("punch hole for piece %d", p), p, err)
	}
	return nil
}

// Pin protects piece from eviction until a matching Unpin. Pins are
// counted; a piece may be pinned before it is present. Invalid indexes are
// ignored.
func (s *Store) Pin(piece int) {
	if s.checkPiece(piece) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.pieces[piece]
	st.life.pins++
	if st.life.pins == 1 && st.present && s.budget != nil {
		s.budget.setHeld(s, piece, true)
	}
}

// Unpin releases one Pin. When the budget is over its cap, eviction runs
// before Unpin returns.
func (s *Store) Unpin(piece int) {
	if s.checkPiece(piece) != nil {
		return
	}
	s.mu.Lock()
	st := &s.pieces[piece]
	if st.life.pins > 0 {
		st.life.pins--
		if st.life.pins == 0 && st.present && s.budget != nil {
			s.budget.setHeld(s, piece, false)
		}
	}
	closed := s.closed
	s.mu.Unlock()
	if !closed && s.budget != nil && s.budget.over() {
		s.budget.enforce()
	}
}

// Evictions returns a channel that receives a value (coalesced, capacity
// one) after pieces were evicted; call TakeEvicted to learn which.
func (s *Store) Evictions() <-chan struct{} { return s.evictCh }

// TakeEvicted returns the pieces evicted since the last call, each once, in
// the order of their first eviction; the list never holds more entries than
// the torrent has pieces. A listed piece may have been downloaded again
// since: check Has before announcing that it is gone.
func (s *Store) TakeEvicted() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.evicted
	s.evicted = nil
	for _, p := range ev {
		s.pieces[p].life.listedEvicted = false
	}
	return ev
}

// reclaimAbandoned discards the staged blocks of pieces abandoned
// half-written: no WriteBlock for them while the budget's write clock
// advanced by after, none in flight, not pinned, not being finished. Their
// space is punched out. The budget calls it, without its lock, when
// verified and staged bytes exceed the cap.
func (s *Store) reclaimAbandoned(now, after uint64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var todo []int
	for p := range s.partial {
		st := &s.pieces[p]
		if st.present || !st.blocks.used() {
			delete(s.partial, p)
			continue
		}
		if !st.busy.idle() || st.busy.writers > 0 || st.life.pins > 0 || now-st.life.lastWrite < after {
			continue
		}
		st.busy.punching = true
		s.dropStagedLocked(p)
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		s.mu.Unlock()
		return
	}
	s.ops.Add(1)
	s.mu.Unlock()
	for _, p := range todo {
		if err := s.punch(p); err != nil {
			s.log.Warn("cache: cannot return the space of an abandoned piece", "piece", p, "err", err)
		}
	}
	s.mu.Lock()
	for _, p := range todo {
		s.pieces[p].busy.punching = false
	}
	s.wakeBusyLocked()
	s.mu.Unlock()
	s.ops.Done()
}

// Forecast says what making more bytes present in a store would cost under
// its budget (Store.WouldEvict).
type Forecast struct {
	// Pieces are the store's pieces that eviction would drop, least
	// recently used first.
	Pieces []int
	// Others counts the pieces of other stores sharing the budget that it
	// would drop.
	Others int
	// Short is what could not be freed because every other piece is
	// pinned: a piece stored now would be evicted again at once, unless
	// pinned itself. 0 when the bytes fit.
	Short int64
}

// WouldEvict forecasts what storing size more bytes of verified pieces
// (PieceSize of the next piece) would evict now, without evicting
// anything. Without a budget, or with room under the cap, the forecast is
// empty. The engine uses it to stop prefetching when the next piece would
// evict a piece it still wants, or could not stay (Short > 0). Pieces
// being read when eviction runs are spared and others taken instead, so
// the forecast can be off by the pieces in use at that moment.
func (s *Store) WouldEvict(size int64) Forecast {
	victims, short := s.budget.forecast(size)
	f := Forecast{Short: short}
	for _, v := range victims {
		if v.s == s {
			f.Pieces = append(f.Pieces, v.piece)
		} else {
			f.Others++
		}
	}
	return f
}
