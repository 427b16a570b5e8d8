package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Default values used for zero Config fields.
const (
	DefaultInterval = 250 * time.Millisecond
	DefaultSettle   = 2 * time.Second
)

// opTimeout bounds one Add or Remove.
const opTimeout = time.Minute

// Config configures Run. Dir and Library are required.
type Config struct {
	// Dir is the directory watched.
	Dir string
	// Library receives the adds and removes.
	Library library.Library
	// Interval is the time between two polls; zero means DefaultInterval.
	Interval time.Duration
	// Settle is how long a file that does not parse must stay unchanged
	// before it is reported as bad; zero means DefaultSettle.
	Settle time.Duration
	// Logger receives what was added, removed and skipped; nil is silent.
	Logger *slog.Logger
}

// fileState is what the watcher knows of one file.
type fileState struct {
	size  int64
	mtime time.Time
	since time.Time // when this size and mtime were first seen
	done  bool      // this version was handled (added, present or bad)
	owned bool      // hash was added by this watcher
	hash  metainfo.Hash
}

// watcher is Run's state.
type watcher struct {
	cfg   Config
	log   *slog.Logger
	files map[string]*fileState
}

// Run watches cfg.Dir until ctx ends. It returns nil then, or an error at
// once when the directory cannot be read.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	w := &watcher{cfg: cfg, log: cfg.Logger, files: map[string]*fileState{}}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.ReadDir(cfg.Dir); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		w.poll(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// watched reports whether a directory entry name is a source file.
func watched(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".torrent" || ext == ".magnet"
}

// poll compares the directory with what was seen and acts on changes.
func (w *watcher) poll(ctx context.Context, now time.Time) {
	entries, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		w.log.Warn("watch: reading the directory", "dir", w.cfg.Dir, "err", err)
		return // a transient failure must not remove every torrent
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if !watched(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		name := e.Name()
		seen[name] = true
		st, ok := w.files[name]
		if !ok {
			st = &fileState{}
			w.files[name] = st
		}
		if !ok || fi.Size() != st.size || !fi.ModTime().Equal(st.mtime) {
			st.size, st.mtime, st.since, st.done = fi.Size(), fi.ModTime(), now, false
			continue // wait until it stays the same for one poll
		}
		if !st.done {
			w.try(ctx, name, st, now)
		}
	}
	for name, st := range w.files {
		if seen[name] {
			continue
		}
		delete(w.files, name)
		if st.owned {
			w.remove(ctx, name, st.hash)
		}
	}
}

// try reads and adds a file that has stayed unchanged for one poll.
func (w *watcher) try(ctx context.Context, name string, st *fileState, now time.Time) {
	path := filepath.Join(w.cfg.Dir, name)
	src, err := readSource(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return // gone: the next poll removes it
		}
		if now.Sub(st.since) >= w.cfg.Settle {
			w.log.Warn("watch: skipping a file that is not a torrent or magnet link", "file", path, "err", err)
			st.done = true
		}
		return
	}
	h := src.InfoHash()
	if st.owned && st.hash == h {
		st.done = true // touched, same torrent
		return
	}
	if st.owned {
		w.remove(ctx, name, st.hash) // the file now holds another torrent
		st.owned = false
	}
	st.done = true
	actx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t, err := w.cfg.Library.Add(actx, src)
	switch {
	case errors.Is(err, library.ErrExists):
		w.log.Info("watch: torrent already present; the file does not own it", "file", path, "infohash", h.String())
	case err != nil:
		w.log.Warn("watch: adding a torrent", "file", path, "err", err)
	default:
		st.owned, st.hash = true, h
		w.log.Info("watch: added", "file", path, "name", t.Name, "infohash", h.String())
	}
}

// remove removes the torrent a vanished or changed file had added.
func (w *watcher) remove(ctx context.Context, name string, h metainfo.Hash) {
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err := w.cfg.Library.Remove(rctx, h, false)
	switch {
	case errors.Is(err, library.ErrNotFound):
		// Removed another way already.
	case err != nil:
		w.log.Warn("watch: removing a torrent", "file", name, "infohash", h.String(), "err", err)
	default:
		w.log.Info("watch: removed", "file", name, "infohash", h.String())
	}
}

// readSource reads and parses one file, at most metainfo.MaxTorrentSize
// bytes plus one so that a larger file is refused by ParseSource.
func readSource(path string) (library.Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return library.Source{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, metainfo.MaxTorrentSize+1))
	if err != nil {
		return library.Source{}, err
	}
	return library.ParseSource(b)
}
