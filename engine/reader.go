package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/readahead"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Reader reads one file of a torrent, fetching what it reads first and a
// readahead window after it. Open one per open file and keep it for the
// file's whole life so the window keeps growing on sequential reads. Its
// methods are safe for concurrent use.
type Reader struct {
	t     *Torrent
	info  *metainfo.Info
	store *cache.Store
	file  metainfo.File
	owner int
	// fileIndex is the file's index in info.Files.
	fileIndex int

	mu      sync.Mutex // guards the fields below
	pol     *readahead.Policy
	active  map[int][2]int // in-flight reads: id -> piece span [first, end)
	nextID  int
	sent    []picker.Range
	seq     uint64 // sequence of the last ranges built
	closed  bool
	headEnd int // pieces [headEnd-1, headEnd) and [tail, tail+1) are HeadTail
	tail    int
	pf      readerPrefetch // container probe and next-file warm-up
}

// ErrReaderClosed is returned by ReadAt after Close.
var ErrReaderClosed = errors.New("engine: reader closed")

// NewReader opens a reader on file index file of Info().Files. The file's
// first and last pieces get the HeadTail priority at once; a goroutine
// that Close ends then walks the file's container structure (MP4, MKV,
// AVI) and asks for the headers and indexes where the container says they
// are, which replace the guess of the last piece.
func (t *Torrent) NewReader(file int) (*Reader, error) {
	info := t.Info()
	if info == nil {
		return nil, ErrNoInfo
	}
	if file < 0 || file >= len(info.Files) {
		return nil, fmt.Errorf("engine: no file %d (torrent has %d)", file, len(info.Files))
	}
	select {
	case <-t.closing:
		return nil, ErrClosed
	default:
	}
	f := info.Files[file]
	r := &Reader{
		t: t, info: info, store: t.storeOrNil(), file: f, fileIndex: file,
		owner:  int(t.nextOwner.Add(1)),
		pol:    readahead.New(readahead.Config{Min: min(readahead.DefaultMin, t.c.cfg.MaxReadahead), Max: t.c.cfg.MaxReadahead}),
		active: make(map[int][2]int),
	}
	if f.Length > 0 {
		first, end := info.FileSpan(f)
		r.headEnd = first + 1
		r.tail = end - 1
		r.mu.Lock()
		ranges := r.rangesLocked()
		r.sent = ranges
		r.seq++
		r.mu.Unlock()
		if err := r.push(context.Background(), ranges, 1); err != nil {
			return nil, err
		}
		r.startProbe()
	}
	t.log.Debug("reader opened", "file", f.DisplayPath(), "owner", r.owner)
	return r, nil
}

// File returns the file the reader reads.
func (r *Reader) File() metainfo.File { return r.file }

// Size returns the file's length.
func (r *Reader) Size() int64 { return r.file.Length }

// ReadAt reads len(p) bytes at offset off of the file. It blocks until the
// pieces holding them are verified in the cache or ctx ends; then the error
// wraps ctx.Err() and says why the data is missing. At the end of the file
// it returns fewer bytes and io.EOF.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	for try := 1; ; try++ {
		k, err := r.readAt(ctx, p, off)
		// A piece dropped between the wait and the read (a file of a
		// data directory changed behind the cache's back) is awaited
		// again: it comes back re-verified or downloaded.
		if try < readRetries && errors.Is(err, cache.ErrNotPresent) && ctx.Err() == nil {
			continue
		}
		return k, err
	}
}

// readRetries bounds the reads of ReadAt and ReadSpan that find a piece
// gone after waiting for it.
const readRetries = 3

func (r *Reader) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	toff, n, done, err := r.await(ctx, off, len(p))
	if err != nil || n == 0 {
		return 0, err
	}
	defer done()
	k, err := r.store.ReadAt(p[:n], toff)
	if err != nil {
		return k, fmt.Errorf("engine: read %s at %d: %w", r.file.DisplayPath(), off, err)
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// ReadSpan is ReadAt for zero-copy readers: it waits the same way for the
// n bytes at off (fewer at the end of the file; io.EOF at or past it), then
// returns them held in the cache's data file instead of copying them. The
// caller splices from the span and must Release it.
func (r *Reader) ReadSpan(ctx context.Context, off int64, n int) (*cache.Span, error) {
	for try := 1; ; try++ {
		sp, err := r.readSpan(ctx, off, n)
		if try < readRetries && errors.Is(err, cache.ErrNotPresent) && ctx.Err() == nil {
			continue // as in ReadAt
		}
		return sp, err
	}
}

func (r *Reader) readSpan(ctx context.Context, off int64, n int) (*cache.Span, error) {
	toff, n, done, err := r.await(ctx, off, n)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, io.EOF
	}
	defer done()
	sp, err := r.store.HoldSpan(toff, n)
	if err != nil {
		return nil, fmt.Errorf("engine: read %s at %d: %w", r.file.DisplayPath(), off, err)
	}
	return sp, nil
}

// await registers a read of want bytes at file offset off, updates the
// priorities, and waits until its pieces are verified. It returns the torrent
// offset and length to read (0 at the end of the file: ReadAt then returns
// io.EOF for off past the end) and a func to call once the bytes are read,
// which drops the read's pins and Now priority.
func (r *Reader) await(ctx context.Context, off int64, want int) (toff int64, n int, done func(), err error) {
	if off < 0 {
		return 0, 0, nil, fmt.Errorf("engine: negative offset %d", off)
	}
	if off >= r.file.Length {
		return 0, 0, nil, io.EOF
	}
	n = int(min(int64(want), r.file.Length-off))
	if n == 0 {
		return 0, 0, nil, nil
	}
	toff = r.file.Offset + off
	first, end := r.info.PieceSpan(toff, int64(n))

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0, 0, nil, ErrReaderClosed
	}
	r.pol.Read(time.Now(), off, int64(n))
	r.warmLocked(off + int64(n))
	r.nextID++
	id := r.nextID
	r.active[id] = [2]int{first, end}
	ranges, seq, changed := r.rebuildLocked()
	r.mu.Unlock()
	for i := first; i < end; i++ {
		r.store.Pin(i)
	}
	done = func() {
		for i := first; i < end; i++ {
			r.store.Unpin(i)
		}
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
	}

	if changed {
		if err := r.push(ctx, ranges, seq); err != nil {
			done()
			return 0, 0, nil, err
		}
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			// Close ran while we pushed: make sure its clear comes last.
			r.pushClear()
			done()
			return 0, 0, nil, ErrReaderClosed
		}
	}
	waitFrom := time.Now()
	for i := first; i < end; i++ {
		if err := r.waitPiece(ctx, i); err != nil {
			done()
			return 0, 0, nil, r.explain(ctx, i, err)
		}
	}
	if w := time.Since(waitFrom); w > time.Millisecond {
		r.t.log.Debug("read waited", "file", r.file.DisplayPath(), "off", off, "n", n,
			"pieces", fmt.Sprintf("%d-%d", first, end-1), "wait", w.Round(time.Millisecond))
	}
	return toff, n, done, nil
}

// rangesLocked builds the reader's picker ranges: the head piece and the
// tail piece (until the container probe found where the headers are), the
// probe's ranges, the next file's head, the pieces of in-flight reads (Now)
// and the readahead windows.
func (r *Reader) rangesLocked() []picker.Range {
	var rs []picker.Range
	if r.headEnd > 0 {
		rs = append(rs, picker.Range{First: r.headEnd - 1, End: r.headEnd, Prio: picker.HeadTail})
		if r.tail >= r.headEnd && !r.pf.found {
			rs = append(rs, picker.Range{First: r.tail, End: r.tail + 1, Prio: picker.HeadTail})
		}
	}
	rs = append(rs, r.pf.probe...)
	rs = append(rs, r.pf.warm...)
	for _, w := range r.pol.Windows(nil) {
		end := min(w.End, r.file.Length)
		// The window keeps some bytes behind the reader wanted (the
		// kernel's reads come out of order), at most MaxReadahead: in a
		// small cache more would be evicted and fetched again.
		start := max(w.Start, w.End-2*r.t.c.cfg.MaxReadahead)
		if end <= start {
			continue
		}
		f, e := r.info.PieceSpan(r.file.Offset+start, end-start)
		rs = append(rs, picker.Range{First: f, End: e, Prio: picker.Readahead})
	}
	ids := make([]int, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := r.active[id]
		rs = append(rs, picker.Range{First: s[0], End: s[1], Prio: picker.Now})
	}
	return rs
}

// push gives the reader's ranges to the torrent loop, without waiting for
// it. Updates pushed concurrently may arrive out of order; the newest by
// seq wins.
func (r *Reader) push(ctx context.Context, ranges []picker.Range, seq uint64) error {
	select {
	case <-r.t.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("engine: setting read priority: %w", ctx.Err())
	default:
	}
	r.t.prio.put(prioOwner{owner: r.owner, ranges: ranges, seq: seq})
	return nil
}

// explain turns a failed wait for piece i into an error that says why.
func (r *Reader) explain(ctx context.Context, i int, err error) error {
	if errors.Is(err, cache.ErrClosed) {
		return fmt.Errorf("engine: read %s: %w", r.file.DisplayPath(), ErrClosed)
	}
	if ctx.Err() == nil {
		return fmt.Errorf("engine: read %s: %w", r.file.DisplayPath(), err)
	}
	why := "unknown"
	qctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r.t.doCtx(qctx, func() { why = r.t.ls.whyMissing(i) }) != nil {
		why = "torrent busy or closed"
	}
	return fmt.Errorf("engine: read %s: waiting for piece %d: %s: %w", r.file.DisplayPath(), i, why, ctx.Err())
}

// Close ends the reader's container probe and drops the reader's
// priorities. Reads after Close fail.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stopProbe()
	r.pushClear()
	return nil
}

// pushClear tells the loop to drop the reader's ranges (without waiting
// for it).
func (r *Reader) pushClear() {
	r.t.prio.put(prioOwner{owner: r.owner, clear: true})
}
