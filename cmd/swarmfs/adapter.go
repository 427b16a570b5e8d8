package main

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

// fsTorrent adapts an engine torrent to what the mount needs.
type fsTorrent struct{ t *engine.Torrent }

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

func (a fsTorrent) OpenFile(_ context.Context, file int) (fs.FileReader, error) {
	r, err := a.t.NewReader(file)
	if err != nil {
		return nil, err
	}
	return fsReader{r}, nil
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

func (a fsTorrent) Status() fs.Status {
	// Decide from one Stats snapshot: metadata may land between two calls.
	st := a.t.Stats()
	s := fs.Status{Verified: st.BytesHave, Text: st.State.String()}
	if st.PiecesTotal == 0 {
		s.Text = fmt.Sprintf("%s (%d peers)", st.State, st.Peers)
		return s
	}
	if info := a.t.Info(); info != nil {
		s.Total = info.TotalLength
		s.Pieces = a.t.Bitfield()
	}
	return s
}
