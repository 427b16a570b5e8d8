package main

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

// fsTorrent adapts an engine torrent to what the mount needs, returning
// promptly as fs.Torrent asks. Info, Name, Bitfield and FileComplete read
// the torrent's and the cache's own state under short locks; the part of
// Status that only the torrent loop knows (state, peers) comes from the
// snapshot the loop publishes (engine.Torrent.Stats), so getxattr never
// waits behind the loop's queue; OpenFile waits at most until its context
// ends.
type fsTorrent struct {
	t *engine.Torrent
}

var _ fs.Torrent = fsTorrent{}

func (a fsTorrent) Name() string               { return a.t.Name() }
func (a fsTorrent) InfoHash() metainfo.Hash    { return a.t.InfoHash() }
func (a fsTorrent) Info() *metainfo.Info       { return a.t.Info() }
func (a fsTorrent) InfoReady() <-chan struct{} { return a.t.InfoReady() }
func (a fsTorrent) FileComplete(file int) bool { return a.t.FileComplete(file) }

func (a fsTorrent) CreationDate() time.Time {
	if mi := a.t.MetaInfo(); mi != nil {
		return mi.CreationDate
	}
	return time.Time{}
}

// OpenFile opens an engine reader, giving up when ctx ends: NewReader
// queues the reader's first priorities for the torrent loop and takes no
// context, so it waits while that queue is full. A reader that arrives
// after ctx ended is closed.
func (a fsTorrent) OpenFile(ctx context.Context, file int) (fs.FileReader, error) {
	type opened struct {
		r   *engine.Reader
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := a.t.NewReader(file)
		ch <- opened{r, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, o.err
		}
		return fsReader{o.r}, nil
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.r != nil {
				o.r.Close()
			}
		}()
		return nil, fmt.Errorf("opening a reader of file %d: %w (%v)", file, ctx.Err(), context.Cause(ctx))
	}
}

// fsReader lets the mount splice replies straight from the cache's file.
type fsReader struct{ *engine.Reader }

var _ fs.SpliceReader = fsReader{}

func (r fsReader) ReadSpan(ctx context.Context, off int64, n int) (fs.Span, error) {
	sp, err := r.Reader.ReadSpan(ctx, off, n)
	if err != nil {
		return nil, err
	}
	return sp, nil
}

var _ fs.Prefetcher = fsTorrent{}

// Prefetch serves user.swarmfs.prefetch: it parses value for file index
// file and has the torrent fetch that range in the background. A
// malformed value wraps fs.ErrBadValue.
func (a fsTorrent) Prefetch(file int, value []byte) error {
	info := a.t.Info()
	if info == nil {
		return engine.ErrNoInfo
	}
	if file < 0 || file >= len(info.Files) {
		return fmt.Errorf("prefetch: no file %d", file)
	}
	start, end, err := engine.ParsePrefetch(value, info.Files[file].Length)
	if err != nil {
		return fmt.Errorf("%w: %w", fs.ErrBadValue, err)
	}
	return a.t.Prefetch(file, start, end)
}

// Status reports the verified pieces as the cache has them now, and the
// state and peers from the latest stats snapshot.
func (a fsTorrent) Status() fs.Status {
	st := a.t.Stats()
	info := a.t.Info()
	if info == nil {
		return fs.Status{Text: fmt.Sprintf("%s (%d peers)", st.State, st.Peers)}
	}
	s := fs.Status{Total: info.TotalLength, Pieces: a.t.Bitfield(), Text: st.State.String()}
	if st.PiecesTotal == 0 {
		// The snapshot is from before the metadata; the next one follows.
		s.Text = "metadata received"
	}
	if note := webSeedNote(st); note != "" {
		s.Text += " (" + note + ")"
	}
	if r := reachText(a.t.Reach()); r != "" {
		s.Text += fmt.Sprintf(", %d peers (%s)", st.Peers, r)
	}
	for i, ok := range s.Pieces {
		if ok {
			s.Verified += info.PieceSize(i)
		}
	}
	return s
}
