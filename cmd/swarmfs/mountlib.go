package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

// errFixedMount is what add and remove say to a mount started with one
// source and no --watch, whose layout cannot change.
var errFixedMount = errors.New("this mount's torrents are fixed: it was started with one source and no --watch " +
	"(mount with --watch, several sources or none to add and remove torrents)")

// mountLibrary is the library of a living mount: the engineLibrary, with
// every add and remove made in the mount too, so that the control socket,
// the watch directory and the HTTP API change what the mount shows. A
// torrent is in the mount when Add returns, and out of it when Remove
// returns; files of it that are open keep working until they are closed,
// and the engine keeps the torrent until then.
type mountLibrary struct {
	*engineLibrary
	srv *fs.Server
	// fixed refuses adds and removes (the mount is not dynamic).
	fixed bool

	// changeMu serializes adds and removes, so that the library and the
	// mount change in the same order.
	changeMu sync.Mutex
}

var _ library.Library = (*mountLibrary)(nil)

// Add adds the torrent to the library and its directory to the mount,
// whose name it returns in Torrent.Dir.
func (l *mountLibrary) Add(ctx context.Context, src library.Source) (library.Torrent, error) {
	if l.fixed {
		return library.Torrent{}, errFixedMount
	}
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	t, err := l.engineLibrary.Add(ctx, src)
	if err != nil {
		return t, err
	}
	ft, ok := l.fsTorrent(t.InfoHash)
	if !ok {
		return library.Torrent{}, fmt.Errorf("%w: %s was removed while being added", library.ErrNotFound, src.Name())
	}
	t.Dir, err = l.srv.AddTorrent(ft)
	if err != nil {
		_ = l.engineLibrary.Remove(ctx, t.InfoHash, false)
		return library.Torrent{}, fmt.Errorf("mounting %s: %w", src.Name(), err)
	}
	return t, nil
}

// Remove takes the torrent's directory out of the mount, then removes it
// from the library (which drops it from the engine once its last open
// file is closed).
func (l *mountLibrary) Remove(ctx context.Context, h metainfo.Hash, purge bool) error {
	if l.fixed {
		return errFixedMount
	}
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	if _, ok := l.Torrent(h); !ok {
		return fmt.Errorf("%w: torrent %s", library.ErrNotFound, h)
	}
	if err := l.srv.RemoveTorrent(h); err != nil && !errors.Is(err, fs.ErrNotFound) {
		return err
	}
	return l.engineLibrary.Remove(ctx, h, purge)
}
