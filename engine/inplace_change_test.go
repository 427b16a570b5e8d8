package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadInPlaceFileChanged changes a byte of a file seeded in place
// while a reader reads it: the next read, of another piece of the file,
// finds the change (the cache drops the file's pieces under it), waits for
// the piece's re-verification and returns the right bytes; a read of the
// changed piece never returns the changed bytes (with no peer to send the
// piece, it fails when its context ends).
func TestReadInPlaceFileChanged(t *testing.T) {
	const pl = 32 << 10
	f := makeFixture(t, "changes", pl, nil, 10*pl+777)
	path := filepath.Join(f.dir, f.name)
	c := newTestClient(t, "127.0.2.47", Config{CacheDir: t.TempDir()})
	tor, err := c.AddTorrent(f.mi, AddOptions{Content: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "verification in place", tor)
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := f.files[f.name]

	const bad = 3*pl + 100
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte{want[bad] ^ 0xff}, bad); err != nil {
		t.Fatal(err)
	}
	file.Close()

	buf := make([]byte, pl)
	// The first read of the file finds the change.
	n, err := r.ReadAt(ctx, buf, 6*pl)
	if err != nil {
		t.Fatalf("read of an unchanged piece of the changed file: %v", err)
	}
	if !bytes.Equal(buf[:n], want[6*pl:6*pl+n]) {
		t.Fatal("a read of an unchanged piece returned other bytes")
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	n, err = r.ReadAt(rctx, buf, 3*pl)
	rcancel()
	if err == nil && !bytes.Equal(buf[:n], want[3*pl:3*pl+n]) {
		t.Fatal("a read returned the changed bytes")
	}
	if err == nil {
		t.Fatal("a read of the changed piece succeeded with no peer to send it")
	}
}
