package fs

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// fakeFile is one file of a fake torrent.
type fakeFile struct {
	path []string
	data []byte
	exec bool
}

// fakeTorrent serves a torrent from memory. Pieces can be gated: a gated
// piece becomes readable only when the test releases it, or (with delay) a
// while after it is first asked for, like a slow download.
type fakeTorrent struct {
	name    string
	hash    metainfo.Hash
	created time.Time
	data    []byte // the concatenated content

	infoMu sync.Mutex
	info   *metainfo.Info
	ready  chan struct{}
	full   *metainfo.Info // the info, published by setInfo for magnets

	gates     []chan struct{} // nil: every piece is present
	releaseMu sync.Mutex
	released  []bool
	requested []atomic.Bool
	delay     time.Duration

	text     string
	openGate chan struct{} // when set, OpenFile waits for it (or ctx)
	opens    atomic.Int64
	closes   atomic.Int64
	waiting  atomic.Int64 // ReadAt calls blocked on a gate now
	canceled atomic.Int64 // ReadAt calls ended by context.Canceled
	timedOut atomic.Int64 // ReadAt calls ended by a deadline
	served   atomic.Int64 // bytes returned by ReadAt
	calls    atomic.Int64 // ReadAt calls that returned data
}

type fakeOptions struct {
	pieceLength int64
	gated       bool          // every piece starts missing
	delay       time.Duration // gated pieces arrive this long after they are asked for
	magnet      bool          // info unknown until setInfo
	single      bool          // single-file torrent (one file named name)
}

// newFake builds a fake torrent named name with files laid out in order.
func newFake(name string, files []fakeFile, o fakeOptions) *fakeTorrent {
	if o.pieceLength == 0 {
		o.pieceLength = 64 << 10
	}
	info := &metainfo.Info{Name: name, PieceLength: o.pieceLength, SingleFile: o.single}
	var data []byte
	for _, f := range files {
		info.Files = append(info.Files, metainfo.File{Path: f.path, Length: int64(len(f.data)), Offset: int64(len(data)), Executable: f.exec})
		data = append(data, f.data...)
	}
	info.TotalLength = int64(len(data))
	for off := int64(0); off < info.TotalLength; off += o.pieceLength {
		info.Pieces = append(info.Pieces, sha1.Sum(data[off:min(off+o.pieceLength, info.TotalLength)]))
	}
	ft := &fakeTorrent{
		name:    name,
		hash:    sha1.Sum([]byte(name + fmt.Sprint(len(data)) + fmt.Sprint(rand.Int64()))),
		created: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
		data:    data,
		ready:   make(chan struct{}),
		full:    info,
		text:    "downloading",
		delay:   o.delay,
	}
	n := len(info.Pieces)
	ft.released = make([]bool, n)
	ft.requested = make([]atomic.Bool, n)
	if o.gated || o.delay > 0 {
		ft.gates = make([]chan struct{}, n)
		for i := range ft.gates {
			ft.gates[i] = make(chan struct{})
		}
	} else {
		for i := range ft.released {
			ft.released[i] = true
		}
	}
	if !o.magnet {
		ft.info = info
		close(ft.ready)
	}
	return ft
}

// setInfo publishes the info of a magnet-like fake.
func (f *fakeTorrent) setInfo() {
	f.infoMu.Lock()
	defer f.infoMu.Unlock()
	if f.info == nil {
		f.info = f.full
		close(f.ready)
	}
}

// release makes pieces readable.
func (f *fakeTorrent) release(pieces ...int) {
	f.releaseMu.Lock()
	defer f.releaseMu.Unlock()
	for _, p := range pieces {
		if !f.released[p] {
			f.released[p] = true
			close(f.gates[p])
		}
	}
}

func (f *fakeTorrent) releaseAll() {
	for p := range f.released {
		f.release(p)
	}
}

func (f *fakeTorrent) Name() string            { return f.name }
func (f *fakeTorrent) InfoHash() metainfo.Hash { return f.hash }
func (f *fakeTorrent) CreationDate() time.Time { return f.created }
func (f *fakeTorrent) InfoReady() <-chan struct{} {
	return f.ready
}

func (f *fakeTorrent) Info() *metainfo.Info {
	f.infoMu.Lock()
	defer f.infoMu.Unlock()
	return f.info
}

func (f *fakeTorrent) Status() Status {
	f.releaseMu.Lock()
	defer f.releaseMu.Unlock()
	st := Status{Text: f.text}
	if f.Info() == nil {
		st.Text = "fetching metadata (0 peers)"
		return st
	}
	st.Total = f.full.TotalLength
	st.Pieces = append([]bool(nil), f.released...)
	for p, ok := range f.released {
		if ok {
			st.Verified += f.full.PieceSize(p)
		}
	}
	return st
}

func (f *fakeTorrent) FileComplete(file int) bool {
	f.releaseMu.Lock()
	defer f.releaseMu.Unlock()
	first, end := f.full.FileSpan(f.full.Files[file])
	for p := first; p < end; p++ {
		if !f.released[p] {
			return false
		}
	}
	return true
}

func (f *fakeTorrent) OpenFile(ctx context.Context, file int) (FileReader, error) {
	if f.openGate != nil {
		select {
		case <-f.openGate:
		case <-ctx.Done():
			return nil, fmt.Errorf("fake: open: %w", ctx.Err())
		}
	}
	info := f.Info()
	if info == nil || file < 0 || file >= len(info.Files) {
		return nil, fmt.Errorf("fake: no file %d", file)
	}
	f.opens.Add(1)
	return &fakeReader{t: f, file: info.Files[file]}, nil
}

// wait blocks until piece p is readable or ctx ends.
func (f *fakeTorrent) wait(ctx context.Context, p int) error {
	if f.gates == nil {
		return nil
	}
	g := f.gates[p]
	select {
	case <-g:
		return nil
	default:
	}
	f.request(p)
	f.waiting.Add(1)
	defer f.waiting.Add(-1)
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		if ctx.Err() == context.Canceled {
			f.canceled.Add(1)
		} else {
			f.timedOut.Add(1)
		}
		return fmt.Errorf("fake: piece %d unavailable (no peers): %w", p, ctx.Err())
	}
}

// request starts the slow arrival of piece p, once.
func (f *fakeTorrent) request(p int) {
	if f.delay > 0 && !f.requested[p].Swap(true) {
		time.AfterFunc(f.delay, func() { f.release(p) })
	}
}

type fakeReader struct {
	t      *fakeTorrent
	file   metainfo.File
	closed atomic.Bool
}

func (r *fakeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, fmt.Errorf("fake: reader closed")
	}
	if off >= r.file.Length {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.file.Length-off))
	start := r.file.Offset + off
	first, end := r.t.full.PieceSpan(start, int64(n))
	for piece := first; piece < end; piece++ {
		r.t.request(piece) // all at once, as an engine fetches a window
	}
	for piece := first; piece < end; piece++ {
		if err := r.t.wait(ctx, piece); err != nil {
			return 0, err
		}
	}
	copy(p, r.t.data[start:start+int64(n)])
	r.t.served.Add(int64(n))
	r.t.calls.Add(1)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *fakeReader) Close() error {
	if r.closed.Swap(true) {
		return fmt.Errorf("fake: reader closed twice")
	}
	r.t.closes.Add(1)
	return nil
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}
