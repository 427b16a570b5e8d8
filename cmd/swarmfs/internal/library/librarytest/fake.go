// Package librarytest provides an in-memory library.Library for the tests
// of the front ends, and a helper that builds small real torrents.
package librarytest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Fake is a Library held in memory. Files read back their contents from
// Data; a torrent whose Gate channel is set blocks every read until the
// channel is closed or the read's context ends. It is safe for concurrent
// use.
type Fake struct {
	mu       sync.Mutex // guards the fields below
	torrents map[metainfo.Hash]*fakeTorrent
	order    []metainfo.Hash
	opened   int // readers opened
	closed   int // readers closed
	removed  []metainfo.Hash
	adds     []library.Source
}

type fakeTorrent struct {
	t    library.Torrent
	data [][]byte
	gate chan struct{}
}

var _ library.Library = (*Fake)(nil)

// NewFake returns an empty fake library.
func NewFake() *Fake { return &Fake{torrents: map[metainfo.Hash]*fakeTorrent{}} }

// Put adds a ready torrent with the given files (path -> contents, in the
// order given by paths). gate, when not nil, blocks reads until closed.
func (f *Fake) Put(h metainfo.Hash, name string, paths []string, data [][]byte, gate chan struct{}) {
	t := library.Torrent{InfoHash: h, Name: name, Ready: true, Modified: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	var off int64
	var files []library.File
	for i, p := range paths {
		n := int64(len(data[i]))
		files = append(files, library.File{Path: p, Size: n, Offset: off})
		off += n
	}
	t.Size, t.Files = off, library.FileList(files)
	t.Stats = library.Stats{State: "downloading", PiecesHave: 1, PiecesTotal: 4, Downloaded: 1000, Uploaded: 10, Peers: 2, WebSeedBytes: 500, HashFailures: 3, Banned: 1, EvictedBytes: 4096}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.torrents[h]; !ok {
		f.order = append(f.order, h)
	}
	f.torrents[h] = &fakeTorrent{t: t, data: data, gate: gate}
}

// Torrents returns the torrents in the order they were put.
func (f *Fake) Torrents() []library.Torrent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []library.Torrent
	for _, h := range f.order {
		out = append(out, f.torrents[h].t)
	}
	return out
}

// Torrent returns one torrent.
func (f *Fake) Torrent(h metainfo.Hash) (library.Torrent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.torrents[h]
	if !ok {
		return library.Torrent{}, false
	}
	return ft.t, true
}

// Open opens a reader of one file.
func (f *Fake) Open(_ context.Context, h metainfo.Hash, file int) (library.Reader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.torrents[h]
	if !ok || file < 0 || file >= len(ft.data) {
		return nil, library.ErrNotFound
	}
	f.opened++
	return &fakeReader{f: f, data: ft.data[file], gate: ft.gate}, nil
}

// Add adds a source as a ready torrent with no data (a magnet: not ready).
func (f *Fake) Add(_ context.Context, src library.Source) (library.Torrent, error) {
	h := src.InfoHash()
	f.mu.Lock()
	_, exists := f.torrents[h]
	f.adds = append(f.adds, src)
	f.mu.Unlock()
	if exists {
		return library.Torrent{}, library.ErrExists
	}
	var paths []string
	var data [][]byte
	if src.Meta != nil {
		for _, fl := range src.Meta.Info.Files {
			paths = append(paths, fl.DisplayPath())
			data = append(data, make([]byte, fl.Length))
		}
	}
	f.Put(h, src.Name(), paths, data, nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	if src.Meta == nil {
		f.torrents[h].t.Ready = false
	}
	return f.torrents[h].t, nil
}

// Remove removes a torrent.
func (f *Fake) Remove(_ context.Context, h metainfo.Hash, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.torrents[h]; !ok {
		return library.ErrNotFound
	}
	delete(f.torrents, h)
	f.order = slices.DeleteFunc(f.order, func(x metainfo.Hash) bool { return x == h })
	f.removed = append(f.removed, h)
	return nil
}

// Readers returns how many readers were opened and closed.
func (f *Fake) Readers() (opened, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened, f.closed
}

// Removed returns the info hashes removed so far.
func (f *Fake) Removed() []metainfo.Hash {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

// Adds returns every source given to Add, including refused ones.
func (f *Fake) Adds() []library.Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.adds)
}

type fakeReader struct {
	f    *Fake
	data []byte
	gate chan struct{}
	once sync.Once
}

func (r *fakeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return 0, fmt.Errorf("fake: waiting for data: %w", ctx.Err())
		}
	}
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *fakeReader) Close() error {
	r.once.Do(func() {
		r.f.mu.Lock()
		r.f.closed++
		r.f.mu.Unlock()
	})
	return nil
}

// MakeTorrent writes files (path -> size, deterministic contents) under a
// temporary directory and returns the .torrent file's bytes.
func MakeTorrent(t testing.TB, name string, files map[string]int) []byte {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	for p, n := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + len(p))
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
