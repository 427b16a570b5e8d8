package fs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

type fileSpan struct {
	f        *os.File
	off      int64
	n        int
	released int
}

func (s *fileSpan) Fd() uintptr   { return s.f.Fd() }
func (s *fileSpan) Offset() int64 { return s.off }
func (s *fileSpan) Len() int      { return s.n }
func (s *fileSpan) Release()      { s.released++ }

// TestSpanResult checks the zero-copy reply: it tells go-fuse where to
// splice from, its Bytes fallback reads the same bytes, and Done releases
// the span.
func TestSpanResult(t *testing.T) {
	name := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(name, []byte("0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp := &fileSpan{f: f, off: 4, n: 8}
	var r fuse.ReadResult = spanResult{sp}
	fd, off, sz := r.(spanResult).Seekable()
	if fd != f.Fd() || off != 4 || sz != 8 || r.Size() != 8 {
		t.Fatalf("Seekable() = %d %d %d, Size %d", fd, off, sz, r.Size())
	}
	for _, buf := range [][]byte{nil, make([]byte, 2), make([]byte, 64)} {
		got, st := r.Bytes(buf)
		if st != fuse.OK || string(got) != "456789ab" {
			t.Fatalf("Bytes(%d-byte buf) = %q, %v", len(buf), got, st)
		}
	}
	r.Done()
	if sp.released != 1 {
		t.Fatalf("released %d times", sp.released)
	}
	f.Close()
	if _, st := r.Bytes(nil); st != fuse.EIO {
		t.Fatalf("Bytes after the file closed: %v, want EIO", st)
	}
}
