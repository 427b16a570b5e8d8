package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/swarmfs/swarmfs/engine/internal/container"
	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/readahead"
)

// The reader-side prefetch rules of one open file, beside its readahead
// window (reader.go):
//   - container probe: at open a goroutine walks the file's container
//     structure (container.Probe), asking for each range it needs as
//     HeadTail, and then asks for what a demuxer reads at open (Start, as
//     HeadTail) and at its first seek (Seek, as Normal) instead of guessing
//     the file's last piece;
//   - next-file warm-up: once the reads pass readahead.DefaultWarmAt of
//     the file, the head of the next file (readahead.NextFile) is asked for
//     as Normal until the reader closes.
//
// Torrent.Prefetch (user.swarmfs.prefetch) asks for a range as Normal for
// a torrent-wide owner of its own.

// warmBytes is how much of the next file's head the warm-up asks for: the
// headers and first data a player reads at open (readahead's first window).
const warmBytes = readahead.DefaultMin

// maxProbes caps the container probes running at once in a torrent: each
// holds up to 16 reads of at most 256 KiB (usually 64 KiB), so a torrent's
// probes hold at most 16 MiB whatever the number of open files. Readers
// opened beyond it wait for a slot (keeping the guess of the last piece
// meanwhile).
const maxProbes = 4

// maxPrefetchRanges caps the ranges Torrent.Prefetch keeps; the oldest go
// first, so repeated setfattr calls cost bounded memory.
const maxPrefetchRanges = 32

// readerPrefetch is a Reader's prefetch state, guarded by Reader.mu.
type readerPrefetch struct {
	// probe are the ranges the container probe asks for (its current
	// step while it walks, then the Result's Start and Seek).
	probe []picker.Range
	// found is set once the probe's Result has Start ranges: the guess of
	// the file's last piece is then dropped.
	found bool
	// warm is the head of the next file, once the reads passed the
	// warm-up point; warmChecked is set once the next file was looked for.
	warm        []picker.Range
	warmChecked bool

	cancel context.CancelFunc // ends the probe goroutine
	done   chan struct{}      // closed when the probe goroutine ended
}

// startProbe starts the container probe goroutine, unless the file is
// already complete (a demuxer then reads from the cache at disk speed).
func (r *Reader) startProbe() {
	ctx, cancel := context.WithCancel(context.Background())
	r.pf.cancel = cancel
	r.pf.done = make(chan struct{})
	if r.t.FileComplete(r.fileIndex) {
		close(r.pf.done)
		return
	}
	go func() {
		defer close(r.pf.done)
		r.runProbe(ctx)
	}()
}

// stopProbe ends the probe goroutine and waits for it.
func (r *Reader) stopProbe() {
	if r.pf.cancel == nil {
		return
	}
	r.pf.cancel()
	<-r.pf.done // the goroutine's waits all watch ctx
}

// runProbe walks the file's container structure, reading each range the
// walk asks for once its pieces are in the cache, and leaves the ranges it
// found in the reader's priorities. It ends when the walk is over, ctx
// ends (Close) or the store closes.
func (r *Reader) runProbe(ctx context.Context) {
	select {
	case r.t.probes <- struct{}{}:
		defer func() { <-r.t.probes }()
	case <-ctx.Done():
		return
	case <-r.t.closing:
		return
	}
	p := container.New(r.file.Length, container.Config{})
	for {
		rg, more := p.Next()
		if !more {
			break
		}
		rg.End = min(rg.End, r.file.Length)
		if rg.End <= rg.Off {
			break
		}
		r.setProbe(ctx, r.pieceRanges([]container.Range{rg}, picker.HeadTail), false)
		b, err := r.readProbe(ctx, rg)
		if err != nil {
			if ctx.Err() == nil {
				r.t.log.Debug("container probe stopped", "file", r.file.DisplayPath(), "err", err)
			}
			r.setProbe(ctx, nil, false)
			return
		}
		if err := p.Feed(rg.Off, b); err != nil {
			r.setProbe(ctx, nil, false)
			return
		}
	}
	res, err := p.Result()
	if err != nil {
		r.t.log.Debug("container probe", "file", r.file.DisplayPath(), "format", res.Format, "err", err)
	}
	rs := r.pieceRanges(res.Start, picker.HeadTail)
	rs = append(rs, r.pieceRanges(res.Seek, picker.Normal)...)
	r.setProbe(ctx, rs, len(res.Start) > 0)
}

// readProbe waits for the pieces of file range rg and reads its bytes.
func (r *Reader) readProbe(ctx context.Context, rg container.Range) ([]byte, error) {
	toff := r.file.Offset + rg.Off
	first, end := r.info.PieceSpan(toff, rg.Len())
	for i := first; i < end; i++ {
		r.store.Pin(i)
	}
	defer func() {
		for i := first; i < end; i++ {
			r.store.Unpin(i)
		}
	}()
	for i := first; i < end; i++ {
		if err := r.store.Wait(ctx, i); err != nil {
			return nil, err
		}
	}
	b := make([]byte, rg.Len()) // at most the probe's largest read (256 KiB)
	if _, err := r.store.ReadAt(b, toff); err != nil {
		return nil, fmt.Errorf("engine: container probe of %s: %w", r.file.DisplayPath(), err)
	}
	return b, nil
}

// pieceRanges turns file byte ranges into picker ranges of class prio.
func (r *Reader) pieceRanges(rs []container.Range, prio picker.Priority) []picker.Range {
	out := make([]picker.Range, 0, len(rs))
	for _, rg := range rs {
		end := min(rg.End, r.file.Length)
		if end <= rg.Off || rg.Off < 0 {
			continue
		}
		f, e := r.info.PieceSpan(r.file.Offset+rg.Off, end-rg.Off)
		out = append(out, picker.Range{First: f, End: e, Prio: prio})
	}
	return out
}

// setProbe replaces the probe's ranges and pushes the reader's priorities
// if they changed. found drops the guess of the file's last piece.
func (r *Reader) setProbe(ctx context.Context, rs []picker.Range, found bool) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.pf.probe = rs
	r.pf.found = found
	ranges, seq, changed := r.rebuildLocked()
	r.mu.Unlock()
	if changed {
		_ = r.push(ctx, ranges, seq) // fails only when the torrent or ctx closes
	}
}

// rebuildLocked recomputes the reader's ranges and reports whether they
// changed since the last push, with the new sequence number.
func (r *Reader) rebuildLocked() (ranges []picker.Range, seq uint64, changed bool) {
	ranges = r.rangesLocked()
	changed = !slices.Equal(ranges, r.sent)
	if changed {
		r.sent = ranges
		r.seq++
	}
	return ranges, r.seq, changed
}

// warmLocked starts the next-file warm-up once the reads reach pos, at
// most once per reader.
func (r *Reader) warmLocked(pos int64) {
	if r.pf.warmChecked || !readahead.WarmDue(pos, r.file.Length, 0) {
		return
	}
	r.pf.warmChecked = true
	files := make([]readahead.File, len(r.info.Files))
	for i, f := range r.info.Files {
		files[i] = readahead.File{Path: f.DisplayPath(), Length: f.Length}
	}
	next, ok := readahead.NextFile(files, r.fileIndex)
	if !ok {
		return
	}
	nf := r.info.Files[next]
	f, e := r.info.PieceSpan(nf.Offset, min(nf.Length, warmBytes))
	r.pf.warm = []picker.Range{{First: f, End: e, Prio: picker.Normal}}
}

// prefetchRanges and its owner hold Torrent.Prefetch's requests.
type prefetchRanges struct {
	owner  int
	ranges []picker.Range
	seq    uint64
}

// ErrBadPrefetch is wrapped by ParsePrefetch's and Prefetch's errors for a
// malformed value or a range outside the file.
var ErrBadPrefetch = readahead.ErrBadPrefetch

// ParsePrefetch parses a user.swarmfs.prefetch value ("all", OFFSET or
// OFFSET+LEN, with optional K, M, G, T suffixes) for a file of size bytes
// and returns the byte range [start, end) it asks for. Its errors wrap
// ErrBadPrefetch.
func ParsePrefetch(value []byte, size int64) (start, end int64, err error) {
	return readahead.ParsePrefetch(value, size)
}

// Prefetch asks for bytes [start, end) of file index file of Info().Files
// in the background, at Normal priority (below every open reader's reads,
// windows, heads and tails), and returns at once. The torrent keeps the
// last 32 such ranges until it is removed; pieces already verified cost
// nothing.
func (t *Torrent) Prefetch(file int, start, end int64) error {
	info := t.Info()
	if info == nil {
		return ErrNoInfo
	}
	if file < 0 || file >= len(info.Files) {
		return fmt.Errorf("engine: no file %d (torrent has %d)", file, len(info.Files))
	}
	f := info.Files[file]
	if start < 0 || end > f.Length || start >= end {
		return fmt.Errorf("%w: range [%d, %d) of a %d-byte file", ErrBadPrefetch, start, end, f.Length)
	}
	select {
	case <-t.closing:
		return ErrClosed
	default:
	}
	first, last := info.PieceSpan(f.Offset+start, end-start)
	t.pfMu.Lock()
	defer t.pfMu.Unlock()
	pf := &t.pf
	if pf.owner == 0 {
		pf.owner = int(t.nextOwner.Add(1))
	}
	pf.ranges = append(pf.ranges, picker.Range{First: first, End: last, Prio: picker.Normal})
	if n := len(pf.ranges) - maxPrefetchRanges; n > 0 {
		pf.ranges = slices.Delete(pf.ranges, 0, n)
	}
	pf.seq++
	t.prio.put(prioOwner{owner: pf.owner, ranges: slices.Clone(pf.ranges), seq: pf.seq})
	return nil
}
