package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

// engineLibrary is the library.Library of serve (and of a living mount):
// the torrents of an engine client that were added through it. A removed
// torrent disappears from the listing at once; the engine drops it when
// its last open reader is closed, so streams in progress finish.
type engineLibrary struct {
	c        *engine.Client
	cacheDir string // the engine's cache directory, for purging
	opt      engine.AddOptions
	log      *slog.Logger

	mu      sync.Mutex // guards entries and the entries' fields
	entries map[metainfo.Hash]*libEntry

	// seeding keeps removed torrents seeding (--seed-ratio, --seed-time);
	// nil removes them at once. Set before the library is used.
	seeding *removedSeeding
}

// libEntry is one torrent of the library.
type libEntry struct {
	t        *engine.Torrent
	added    time.Time
	readers  int  // open readers
	removing bool // removed: goes when readers reaches 0
	purge    bool // delete the cached data when it goes
}

var _ library.Library = (*engineLibrary)(nil)

// newEngineLibrary returns an empty library over c. cacheDir is the
// engine's cache directory ("" for the default); opt is used for every add.
func newEngineLibrary(c *engine.Client, cacheDir string, opt engine.AddOptions, log *slog.Logger) *engineLibrary {
	if cacheDir == "" {
		cacheDir = cache.DefaultDir()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &engineLibrary{c: c, cacheDir: cacheDir, opt: opt, log: log, entries: map[metainfo.Hash]*libEntry{}}
}

// Torrents returns a snapshot of every torrent not being removed.
func (l *engineLibrary) Torrents() []library.Torrent {
	type item struct {
		e       *libEntry
		readers int
	}
	l.mu.Lock()
	items := make([]item, 0, len(l.entries))
	for _, e := range l.entries {
		if !e.removing {
			items = append(items, item{e, e.readers})
		}
	}
	l.mu.Unlock()
	out := make([]library.Torrent, len(items))
	for i, it := range items {
		out[i] = snapshot(it.e, it.readers)
	}
	return out
}

// Torrent returns one torrent's snapshot.
func (l *engineLibrary) Torrent(h metainfo.Hash) (library.Torrent, bool) {
	l.mu.Lock()
	e, ok := l.entries[h]
	if !ok || e.removing {
		l.mu.Unlock()
		return library.Torrent{}, false
	}
	readers := e.readers
	l.mu.Unlock()
	return snapshot(e, readers), true
}

// snapshot builds a torrent's snapshot; it asks the torrent's loop for
// its stats, so it runs without l.mu.
func snapshot(e *libEntry, readers int) library.Torrent {
	t := e.t
	st := t.Stats()
	out := library.Torrent{
		InfoHash: t.InfoHash(), Name: t.Name(), Modified: e.added,
		Stats: library.Stats{
			State: st.State.String(), Downloaded: st.Downloaded, Uploaded: st.Uploaded,
			DownRate: st.DownRate, UpRate: st.UpRate, Peers: st.Peers, Seeds: st.Seeds,
			PiecesHave: st.PiecesHave, PiecesTotal: st.PiecesTotal, BytesHave: st.BytesHave,
			OpenReaders: readers, WebSeedBytes: st.WebSeedBytes,
			HashFailures: st.HashFailures, Banned: st.Banned, EvictedBytes: st.EvictedBytes,
		},
	}
	if mi := t.MetaInfo(); mi != nil && !mi.CreationDate.IsZero() {
		out.Modified = mi.CreationDate
	}
	if info := t.Info(); info != nil {
		out.Ready = true
		out.Size = info.TotalLength
		out.Files = library.InfoFiles(info)
	}
	return out
}

// Open opens a reader of one file; the torrent stays until it is closed.
func (l *engineLibrary) Open(_ context.Context, h metainfo.Hash, file int) (library.Reader, error) {
	l.mu.Lock()
	e, ok := l.entries[h]
	if !ok || e.removing {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: torrent %s", library.ErrNotFound, h)
	}
	e.readers++
	l.mu.Unlock()
	r, err := e.t.NewReader(file)
	if err != nil {
		l.release(h, e)
		if errors.Is(err, engine.ErrNoInfo) {
			return nil, fmt.Errorf("%w: %s", library.ErrNoInfo, e.t.Name())
		}
		return nil, err
	}
	return &libReader{Reader: r, l: l, h: h, e: e}, nil
}

// libReader is an engine reader that tells the library when it closes.
type libReader struct {
	*engine.Reader
	l    *engineLibrary
	h    metainfo.Hash
	e    *libEntry
	once sync.Once
}

func (r *libReader) Close() error {
	err := r.Reader.Close()
	r.once.Do(func() { r.l.release(r.h, r.e) })
	return err
}

// release drops one reader of e and finishes a pending remove.
func (l *engineLibrary) release(h metainfo.Hash, e *libEntry) {
	l.mu.Lock()
	e.readers--
	done := e.removing && e.readers == 0
	if done && l.entries[h] == e {
		delete(l.entries, h)
	}
	l.mu.Unlock()
	if done {
		l.drop(h, e)
	}
}

// Add adds a torrent file or magnet.
func (l *engineLibrary) Add(_ context.Context, src library.Source) (library.Torrent, error) {
	h := src.InfoHash()
	l.mu.Lock()
	if e, ok := l.entries[h]; ok && e.removing {
		l.mu.Unlock()
		return library.Torrent{}, fmt.Errorf("%w: %s is still being removed (files of it are open)", library.ErrExists, src.Name())
	}
	l.mu.Unlock()
	l.seeding.stop(h) // removed but still seeding: it leaves the engine first
	var t *engine.Torrent
	var err error
	switch {
	case src.Meta != nil:
		t, err = l.c.AddTorrent(src.Meta, l.opt)
	case src.Magnet != nil:
		t, err = l.c.AddMagnet(src.Magnet, l.opt)
	default:
		return library.Torrent{}, library.ErrBadSource
	}
	if errors.Is(err, engine.ErrExists) {
		return library.Torrent{}, fmt.Errorf("%w: %s (%s)", library.ErrExists, src.Name(), h)
	}
	if err != nil {
		return library.Torrent{}, fmt.Errorf("add %s: %w", src.Name(), err)
	}
	e := &libEntry{t: t, added: time.Now()}
	l.mu.Lock()
	l.entries[h] = e
	l.mu.Unlock()
	l.log.Info("torrent added", "name", t.Name(), "infohash", h.String())
	return snapshot(e, 0), nil
}

// Remove removes a torrent now, or when its last reader closes.
func (l *engineLibrary) Remove(_ context.Context, h metainfo.Hash, purge bool) error {
	l.mu.Lock()
	e, ok := l.entries[h]
	if !ok || e.removing {
		l.mu.Unlock()
		return fmt.Errorf("%w: torrent %s", library.ErrNotFound, h)
	}
	e.removing, e.purge = true, purge
	now := e.readers == 0
	if now {
		delete(l.entries, h)
	}
	l.mu.Unlock()
	if now {
		l.drop(h, e)
	}
	return nil
}

// drop removes the torrent from the engine and purges its cache if asked.
func (l *engineLibrary) drop(h metainfo.Hash, e *libEntry) {
	if !e.purge && l.seeding.keep(e.t) {
		return // seeds its cached pieces, then leaves the engine
	}
	_ = e.t.Remove()
	l.log.Info("torrent removed", "name", e.t.Name(), "infohash", h.String(), "purge", e.purge)
	if !e.purge {
		return
	}
	if err := cache.Remove(l.cacheDir, h); err != nil {
		l.log.Warn("purging the cache", "infohash", h.String(), "err", err)
	}
	if err := os.Remove(cache.MetadataPath(l.cacheDir, h)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("purging the metadata", "infohash", h.String(), "err", err)
	}
}

// fsTorrent returns the mount's view of torrent h, whose files are opened
// through the library: a torrent removed while the mount has files of it
// open stays in the engine until they are closed. A living mount gives fs
// these instead of plain fsTorrent values.
func (l *engineLibrary) fsTorrent(h metainfo.Hash) (fs.Torrent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[h]
	if !ok || e.removing {
		return nil, false
	}
	return libFSTorrent{fsTorrent: fsTorrent{t: e.t}, l: l}, true
}

// libFSTorrent is an fsTorrent whose readers are the library's.
type libFSTorrent struct {
	fsTorrent
	l *engineLibrary
}

var _ fs.Torrent = libFSTorrent{}

func (a libFSTorrent) OpenFile(ctx context.Context, file int) (fs.FileReader, error) {
	r, err := a.l.Open(ctx, a.t.InfoHash(), file)
	if err != nil {
		return nil, err
	}
	return libFSReader{r.(*libReader)}, nil
}

// libFSReader lets the mount splice replies from a library reader.
type libFSReader struct{ *libReader }

var _ fs.SpliceReader = libFSReader{}

func (r libFSReader) ReadSpan(ctx context.Context, off int64, n int) (fs.Span, error) {
	sp, err := r.Reader.ReadSpan(ctx, off, n)
	if err != nil {
		return nil, err
	}
	return sp, nil
}
