package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// BlockSize is the granularity at which WriteBlock tracks staged data: every
// block starts at a multiple of BlockSize inside its piece and is a multiple
// of BlockSize long, except a block that ends at the end of its piece.
const BlockSize = 16 << 10

const (
	dataName  = "data"
	stateName = "state"

	defaultSyncInterval = 500 * time.Millisecond
	defaultSyncPieces   = 64
	defaultWriteBuffers = 16
)

// Config configures a Store. The zero value is valid.
type Config struct {
	// Budget caps the verified bytes kept by all stores sharing it.
	// nil means no cap and no eviction.
	Budget *Budget
	// Logger receives warnings about persist and I/O failures and
	// verification progress. nil means silent.
	Logger *slog.Logger
	// SyncInterval is the longest time a newly verified piece waits before
	// the present set is persisted. 0 means 500 ms.
	SyncInterval time.Duration
	// SyncPieces persists the present set early once this many pieces
	// changed since the last persist. 0 means 64.
	SyncPieces int
	// WriteBuffers is how many pieces at a time may gather the blocks
	// WriteBlock receives in order in a 256 KiB memory buffer, written to
	// the data file in one call when full instead of one call per block.
	// A store holds at most WriteBuffers × 256 KiB this way. A piece keeps
	// its buffer until it is finished or discarded, or until another piece
	// wants one while none is free and the piece is idle: the store has
	// received 2 × WriteBuffers blocks in order since the piece's last one.
	// The buffer of the idle piece fed least recently then passes to the
	// other piece, which first writes the buffered bytes to the data file,
	// where they stay staged. So pieces left half-written (a reader seeked
	// away) do not stop new pieces from being buffered, while a piece that
	// keeps receiving blocks keeps its buffer. 0 means 16; a negative value
	// turns buffering off.
	WriteBuffers int
	// Layout is where the torrent's bytes are kept: DataFile (nil means
	// DataFile) or Files under a directory of the user's.
	Layout Layout
	// VerifyWorkers is how many pieces background re-verification hashes
	// at once, each with a 1 MiB read buffer. 0 means GOMAXPROCS.
	VerifyWorkers int

	verifyHook func(piece int) // tests: runs before background verification hashes piece
}

// Store is the verified piece store of one torrent. All methods are safe for
// concurrent use by many goroutines.
type Store struct {
	info         *metainfo.Info
	infoHash     metainfo.Hash
	dir          string  // the store's directory in the cache root
	ioDir        string  // where the data lives: dir, or the Files layout's directory
	statePath    string  // the state file
	data         storage // the torrent's bytes
	files        *fileStore
	layout       Layout
	budget       *Budget
	log          *slog.Logger
	syncInterval time.Duration
	syncPieces   int
	maxWbufs     int             // Config.WriteBuffers; 0 when off
	chunk        int             // size of write buffers and WritePiece writes: writeChunk, less in tests
	reclaimHook  func(piece int) // tests: runs before a reclaimed buffer of piece is written out
	verifyHook   func(piece int) // tests: runs before background verification hashes piece
	workers      int             // Config.VerifyWorkers
	settle       time.Duration   // how long a file found changed is left alone before re-verification
	progress     verifyProgress

	closeCh    chan struct{} // closed by Close
	dirtyCh    chan struct{} // cap 1: something to persist
	fullCh     chan struct{} // cap 1: persist now, SyncPieces reached
	evictCh    chan struct{} // cap 1: pieces were evicted
	verifyDone chan struct{} // closed when background verification ends; replaced (mu) by a new round
	bg         sync.WaitGroup
	ops        sync.WaitGroup // file I/O in flight; Add only under mu while open
	closeOnce  sync.Once
	closeErr   error

	// persisting serializes state writes; it is never held together with
	// mu across disk I/O.
	persisting sync.Mutex

	mu           sync.Mutex
	closed       bool
	pieces       []pieceState
	nPresent     int
	bytesPresent int64
	waiters      map[int]chan struct{}
	busyCh       chan struct{}
	busyWaiting  bool
	evicted      []int
	punchQueue   []int
	dirtyN       int
	verifying    bool      // verification workers are running
	verifyQueue  []int     // pieces waiting for them
	verifyRounds int       // verification rounds started
	verifyAt     time.Time // verification waits until then (a changed file settles)
	persisted    int       // present pieces in the last state written
	wbufHeld     []int     // pieces holding a write buffer, at most maxWbufs
	feeds        uint64    // blocks received in order, the clock of pieceState.fedAt
	staged       stagedAcct
	partial      map[int]struct{} // pieces that may have staged blocks
}

// DefaultDir returns the default cache directory: $XDG_CACHE_HOME/swarmfs,
// else ~/.cache/swarmfs, else a directory under os.TempDir.
func DefaultDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "swarmfs")
	}
	return filepath.Join(os.TempDir(), "swarmfs-cache")
}

// Remove deletes the store of infoHash under root. The store must not be
// open. Removing a store that does not exist is not an error.
func Remove(root string, infoHash metainfo.Hash) error {
	if err := os.RemoveAll(filepath.Join(root, infoHash.String())); err != nil {
		return fmt.Errorf("cache: remove store %s: %w", infoHash, err)
	}
	return nil
}

func checkInfo(info *metainfo.Info) error {
	if info == nil {
		return errors.New("cache: nil info")
	}
	if info.PieceLength <= 0 || info.TotalLength < 0 {
		return fmt.Errorf("cache: bad geometry: piece length %d, total %d", info.PieceLength, info.TotalLength)
	}
	want := (info.TotalLength + info.PieceLength - 1) / info.PieceLength
	if int64(len(info.Pieces)) != want {
		return fmt.Errorf("cache: bad geometry: %d pieces of %d bytes for %d bytes", len(info.Pieces), info.PieceLength, info.TotalLength)
	}
	return nil
}

// Open creates or reopens the store of one torrent in root/<40-hex
// infoHash>/, with its bytes where cfg.Layout says. A state file that
// matches info and the data is trusted at once, without re-hashing.
// Otherwise no piece is trusted (DataFile: state missing or corrupt, data
// file truncated or modified since the last clean Close) or only the pieces
// of the files changed behind the store's back are not (Files), and those
// pieces are re-verified in the background: see Verifying and
// VerifyProgress. Open fails with ErrLocked when the store is already open.
func Open(root string, infoHash metainfo.Hash, info *metainfo.Info, cfg Config) (*Store, error) {
	if err := checkInfo(info); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, infoHash.String())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: open store: %w", err)
	}
	s := &Store{
		info:         info,
		infoHash:     infoHash,
		dir:          dir,
		ioDir:        dir,
		statePath:    filepath.Join(dir, stateName),
		budget:       cfg.Budget,
		log:          cfg.Logger,
		syncInterval: cfg.SyncInterval,
		syncPieces:   cfg.SyncPieces,
		chunk:        writeChunk,
		workers:      cfg.VerifyWorkers,
		verifyHook:   cfg.verifyHook,
		settle:       pathCheckEvery,
		closeCh:      make(chan struct{}),
		dirtyCh:      make(chan struct{}, 1),
		fullCh:       make(chan struct{}, 1),
		evictCh:      make(chan struct{}, 1),
		verifyDone:   make(chan struct{}),
		pieces:       make([]pieceState, info.NumPieces()),
		waiters:      make(map[int]chan struct{}),
		partial:      make(map[int]struct{}),
		busyCh:       make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.syncInterval <= 0 {
		s.syncInterval = defaultSyncInterval
	}
	if s.syncPieces <= 0 {
		s.syncPieces = defaultSyncPieces
	}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case cfg.WriteBuffers == 0:
		s.maxWbufs = defaultWriteBuffers
	case cfg.WriteBuffers > 0:
		s.maxWbufs = cfg.WriteBuffers
	}
	files, isFiles := cfg.Layout.(Files)
	if isFiles {
		s.budget = nil // the user's files are never evicted
	}
	s.staged = stagedAcct{budget: s.budget}
	var err error
	switch cfg.Layout.(type) {
	case nil, DataFile:
		s.layout = DataFile{}
		err = s.openDataFile()
	case Files:
		err = s.openFiles(files)
	default:
		err = fmt.Errorf("cache: unknown layout %T", cfg.Layout)
	}
	if err != nil {
		return nil, err
	}
	s.budget.addStore(s)
	s.bg.Add(1)
	go s.persistLoop()
	s.budget.enforce()
	return s, nil
}

// lockFile opens path and takes an exclusive flock on it.
func lockFile(path string, flag int, dir string) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: open store: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("cache: lock %s: %w", path, err)
	}
	return f, nil
}

// openDataFile opens the DataFile layout's sparse file and loads its state.
func (s *Store) openDataFile() error {
	dataPath := filepath.Join(s.dir, dataName)
	_, statErr := os.Stat(dataPath)
	existed := statErr == nil
	f, err := lockFile(dataPath, os.O_RDWR|os.O_CREATE, s.dir)
	if err != nil {
		return err
	}
	df := &dataFile{f: f, fd: int(f.Fd())}
	s.data = df
	removeTemps(s.statePath)
	if err := s.load(df, existed); err != nil {
		df.close()
		return err
	}
	return nil
}

// load decides what to trust and, when needed, starts re-verification.
func (s *Store) load(df *dataFile, existed bool) error {
	var fst unix.Stat_t
	if err := unix.Fstat(df.fd, &fst); err != nil {
		return fmt.Errorf("cache: stat data file: %w", err)
	}
	st, stErr := readState(s.statePath)
	trusted := false
	reason := ""
	switch {
	case stErr != nil:
		reason = stErr.Error()
	case st.files || !st.matches(s.infoHash, s.info):
		reason = "state does not match the torrent"
	case fst.Size != s.info.TotalLength || st.dataSize != fst.Size:
		reason = fmt.Sprintf("data file size %d, want %d", fst.Size, s.info.TotalLength)
	case st.clean && (st.mtime != fst.Mtim.Nano() || st.ctime != fst.Ctim.Nano()):
		reason = "data file modified since the store was closed"
	default:
		trusted = true
	}
	if fst.Size != s.info.TotalLength {
		if err := df.f.Truncate(s.info.TotalLength); err != nil {
			return fmt.Errorf("cache: size data file: %w", err)
		}
	}
	if trusted {
		for p, ok := range st.present {
			if ok {
				s.markPresentLocked(p)
				s.pieces[p].life.claimed = true
				s.pieces[p].life.synced = true
			}
		}
		s.dirtyN = 0
		select {
		case <-s.dirtyCh:
		default:
		}
		select {
		case <-s.fullCh:
		default:
		}
		s.persisted = s.nPresent
		var verify []int
		if st.verify { // a verification was cut short: finish it
			for p, ok := range st.present {
				if !ok {
					verify = append(verify, p)
				}
			}
		}
		if st.clean {
			// From now on the data file may change: a clean state would
			// make the next Open after a crash distrust everything.
			// Failing that (disk full) is safe: the worst case is a
			// re-verification after a crash.
			st.clean = false
			if err := writeState(s.statePath, st); err != nil {
				s.log.Warn("cache: cannot mark state in use", "dir", s.dir, "err", err)
			}
		}
		if len(verify) > 0 {
			s.log.Info("cache: resuming verification", "dir", s.dir, "pieces", len(verify))
			s.startVerify(verify) // it punches what fails
			return nil
		}
		// Blocks staged before the store was last closed or killed were
		// never verified: return their space.
		s.punchAbsent()
		close(s.verifyDone)
		return nil
	}
	// Nothing is trusted. Replace the old state first so that a crash
	// during re-verification cannot bring its claims back.
	verify := existed && s.info.TotalLength > 0
	if err := writeState(s.statePath, s.stateFor(make([]bool, len(s.pieces)), verify, false, nil)); err != nil {
		return err
	}
	if !verify {
		close(s.verifyDone)
		return nil
	}
	s.log.Info("cache: re-verifying store", "dir", s.dir, "reason", reason)
	s.startVerify(allPieces(len(s.pieces)))
	return nil
}

// Info returns the torrent geometry the store was opened with.
func (s *Store) Info() *metainfo.Info { return s.info }

// Dir returns the store's directory in the cache root (where its state
// lives).
func (s *Store) Dir() string { return s.dir }

// Layout returns the store's layout: DataFile{}, or Files with Dir or
// Content made absolute. Only a DataFile store is charged to a Budget.
func (s *Store) Layout() Layout { return s.layout }

// DataDir returns where the torrent's bytes are: the store's directory for
// the DataFile layout, the absolute data directory for Files.
func (s *Store) DataDir() string { return s.ioDir }

// Close persists the present set, marks the state clean, and releases the
// store. Blocked Wait calls return ErrClosed. Close is idempotent; later
// calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.closeCh)
		s.mu.Unlock()
		s.bg.Wait()
		s.ops.Wait()
		err := s.persistClean()
		if s.budget != nil {
			s.budget.removeStore(s)
		}
		if cerr := s.data.close(); err == nil && cerr != nil {
			err = fmt.Errorf("cache: close data: %w", cerr)
		}
		s.closeErr = err
	})
	return s.closeErr
}

// beginLocked registers an I/O operation; Close waits for it to end.
func (s *Store) beginLocked() error {
	if s.closed {
		return ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// waitBusyLocked releases mu until a piece's finishing, punching or writer
// state changes or the store closes, and returns with mu held. Such waits
// last at most one piece's disk I/O.
func (s *Store) waitBusyLocked() {
	ch := s.busyCh
	s.busyWaiting = true
	s.mu.Unlock()
	select {
	case <-ch:
	case <-s.closeCh:
	}
	s.mu.Lock()
}

func (s *Store) wakeBusyLocked() {
	if s.busyWaiting {
		close(s.busyCh)
		s.busyCh = make(chan struct{})
		s.busyWaiting = false
	}
}

func (s *Store) markDirtyLocked() {
	s.dirtyN++
	select {
	case s.dirtyCh <- struct{}{}:
	default:
	}
	if s.dirtyN >= s.syncPieces {
		select {
		case s.fullCh <- struct{}{}:
		default:
		}
	}
}

// markPresentLocked records a verified piece and wakes its waiters.
func (s *Store) markPresentLocked(p int) {
	st := &s.pieces[p]
	size := s.info.PieceSize(p)
	st.present = true
	st.life.synced = false
	s.dropStagedLocked(p)
	st.life.pendingPunch = false
	s.nPresent++
	s.bytesPresent += size
	if ch, ok := s.waiters[p]; ok {
		close(ch)
		delete(s.waiters, p)
	}
	s.markDirtyLocked()
	if s.budget != nil {
		s.budget.add(s, p, size, st.life.pins > 0)
	}
}

// dropStagedLocked forgets the staged blocks, hash and write buffer of
// piece.
func (s *Store) dropStagedLocked(piece int) {
	st := &s.pieces[piece]
	st.blocks.reset()
	st.hash.reset()
	s.dropWbufLocked(piece)
	delete(s.partial, piece)
}

// punchAbsent punches holes under every run of pieces that are not
// present. It runs in Open, before anything else uses the store.
func (s *Store) punchAbsent() {
	for p := 0; p < len(s.pieces); {
		if s.pieces[p].present {
			p++
			continue
		}
		q := p
		for q < len(s.pieces) && !s.pieces[q].present {
			q++
		}
		off := s.info.PieceOffset(p)
		end := s.info.TotalLength
		if q < len(s.pieces) {
			end = s.info.PieceOffset(q)
		}
		if end > off {
			if err := s.data.punch(off, end-off); err != nil {
				s.log.Warn("cache: cannot return the space of unverified data", "dir", s.dir, "err", err)
				return
			}
		}
		p = q
	}
}
