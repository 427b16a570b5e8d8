package cache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// abandonWrites is how many WriteBlock calls, in all the stores of a
// budget, may follow the last block of a half-written piece before its
// staged blocks count as abandoned (4 MiB of 16 KiB blocks, far more than
// a piece still being downloaded waits between two blocks).
const abandonWrites = 256

// Budget is a byte cap shared by any number of stores. It keeps every
// verified piece of those stores in one least-recently-used list and, when
// the verified bytes exceed the cap, evicts the least recently used pieces
// that are not pinned, one by one, until usage is back under the cap.
//
// Verified pieces are charged (Used) and evicted to keep them under the
// cap. Blocks staged by WriteBlock and not yet verified are charged too
// (Staged, BlockSize bytes per block), and when verified and staged bytes
// together exceed the cap, the staged blocks of abandoned pieces (no block
// for 256 WriteBlock calls of all the stores, none in flight, not pinned)
// are discarded and their space punched out. Staged blocks never evict
// verified pieces: the pieces still being written are the margin by which
// disk use may exceed the cap. Pinned pieces are never evicted, so usage
// can exceed the cap by the pinned bytes that do not fit under it;
// otherwise verified bytes exceed it only between the moment a new piece
// becomes present and the eviction its writer runs right after, that is by
// at most one piece per concurrent writer.
//
// A Budget is safe for concurrent use. Lock order: a Store may call into its
// Budget while holding its own lock; the Budget never calls a Store while
// holding its lock.
type Budget struct {
	max int64
	// abandonAfter is how far clock must advance past a half-written
	// piece's last block before its staged blocks may be reclaimed.
	abandonAfter uint64
	staged       atomic.Int64  // bytes of staged blocks of all stores
	clock        atomic.Uint64 // counts WriteBlock calls of all stores

	mu      sync.Mutex
	stores  map[*Store]struct{}
	used    int64
	peak    int64      // highest used seen, for tests and diagnostics
	lru     *list.List // of *budgetEntry; front = most recent
	entries map[budgetKey]*list.Element
}

type budgetKey struct {
	s     *Store
	piece int
}

type budgetEntry struct {
	key  budgetKey
	size int64
	held bool // pinned: never chosen for eviction
}

// NewBudget returns a Budget capping the verified bytes of all stores that
// share it at maxBytes. maxBytes <= 0 means no cap (usage is still counted).
func NewBudget(maxBytes int64) *Budget {
	return &Budget{max: maxBytes, abandonAfter: abandonWrites, lru: list.New(),
		entries: make(map[budgetKey]*list.Element), stores: make(map[*Store]struct{})}
}

// Limit returns the cap given to NewBudget (<= 0 means none).
func (b *Budget) Limit() int64 { return b.max }

// Used returns the bytes of verified pieces currently charged to the budget.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak returns the highest value Used has had.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// add charges a newly present piece as the most recently used one.
func (b *Budget) add(s *Store, piece int, size int64, held bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := budgetKey{s, piece}
	if e, ok := b.entries[k]; ok {
		b.lru.MoveToFront(e)
		return
	}
	b.entries[k] = b.lru.PushFront(&budgetEntry{key: k, size: size, held: held})
	b.used += size
	b.peak = max(b.peak, b.used)
}

// addStore registers s, so that its abandoned staged blocks can be
// reclaimed.
func (b *Budget) addStore(s *Store) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stores[s] = struct{}{}
}

// removeStore uncharges every piece and staged block of s. It runs in
// Close, when nothing else uses s.
func (b *Budget) removeStore(s *Store) {
	b.staged.Add(-s.staged.blocks * BlockSize)
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.stores, s)
	for e := b.lru.Front(); e != nil; {
		next := e.Next()
		be := e.Value.(*budgetEntry)
		if be.key.s == s {
			b.used -= be.size
			b.lru.Remove(e)
			delete(b.entries, be.key)
		}
		e = next
	}
}

// touch marks pieces [first, end) of s as just used.
func (b *Budget) touch(s *Store, first, end int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p := first; p < end; p++ {
		if e, ok := b.entries[budgetKey{s, p}]; ok {
			b.lru.MoveToFront(e)
		}
	}
}

// setHeld records whether a piece is pinned.
func (b *Budget) setHeld(s *Store, piece int, held bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[budgetKey{s, piece}]; ok {
		e.Value.(*budgetEntry).held = held
	}
}

// Staged returns the bytes of blocks that stores hold staged (written,
// not yet verified), counted as BlockSize bytes per block. They count
// toward the cap, see the type's comment.
func (b *Budget) Staged() int64 { return b.staged.Load() }

// overTotal reports whether verified and staged bytes together exceed the
// cap. b may be nil.
func (b *Budget) overTotal() bool {
	if b == nil || b.max <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used+b.staged.Load() > b.max
}

// reclaimAbandoned asks every store to drop the staged blocks of its
// abandoned pieces.
func (b *Budget) reclaimAbandoned() {
	b.mu.Lock()
	stores := make([]*Store, 0, len(b.stores))
	for s := range b.stores {
		stores = append(stores, s)
	}
	b.mu.Unlock()
	now := b.clock.Load()
	for _, s := range stores {
		s.reclaimAbandoned(now, b.abandonAfter)
	}
}

// over reports whether usage exceeds the cap.
func (b *Budget) over() bool {
	if b.max <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used > b.max
}

// pickVictim removes and returns the least recently used unpinned entry when
// usage is over the cap. It returns false when usage is within the cap or
// every charged piece is pinned.
func (b *Budget) pickVictim() (budgetEntry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max <= 0 || b.used <= b.max {
		return budgetEntry{}, false
	}
	for e := b.lru.Back(); e != nil; e = e.Prev() {
		be := e.Value.(*budgetEntry)
		if be.held {
			continue
		}
		b.used -= be.size
		b.lru.Remove(e)
		delete(b.entries, be.key)
		return *be, true
	}
	return budgetEntry{}, false
}

// enforce evicts pieces until usage is within the cap or nothing more can be
// evicted. It must be called with no Store lock held.
func (b *Budget) enforce() {
	if b == nil {
		return
	}
	if b.overTotal() {
		b.reclaimAbandoned()
	}
	// Each failed attempt re-charges the piece as most recent, so bounding
	// the attempts by the list length (plus slack) guarantees termination
	// even when every piece is being read at this moment.
	b.mu.Lock()
	attempts := b.lru.Len() + 1
	b.mu.Unlock()
	for ; attempts > 0; attempts-- {
		v, ok := b.pickVictim()
		if !ok {
			return
		}
		v.key.s.evictPiece(v.key.piece)
	}
}

// forecast returns the pieces eviction would drop, least recently used
// first, to make size more verified bytes fit under the cap, and the bytes
// it could not free because everything left is pinned.
func (b *Budget) forecast(size int64) (victims []budgetKey, short int64) {
	if b == nil || b.max <= 0 {
		return nil, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	need := b.used + size - b.max
	for e := b.lru.Back(); e != nil && need > 0; e = e.Prev() {
		be := e.Value.(*budgetEntry)
		if be.held {
			continue
		}
		victims = append(victims, be.key)
		need -= be.size
	}
	return victims, max(need, 0)
}
