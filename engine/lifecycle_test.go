package engine

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadTimeoutSaysWhy reads from a torrent without peers: the error
// wraps the context's error and says that there are no peers.
func TestReadTimeoutSaysWhy(t *testing.T) {
	f := makeFixture(t, "lonely", 16<<10, nil, 100000)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = r.ReadAt(ctx, make([]byte, 100), 50000)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no peers") {
		t.Fatalf("err = %v, want a deadline error saying no peers", err)
	}
}

// TestPieceUnavailableSaysWhy reads a piece no connected peer has.
func TestPieceUnavailableSaysWhy(t *testing.T) {
	f := makeFixture(t, "partial", 16<<10, nil, 100000)
	// A peer whose data is damaged in piece 5 imports every other piece.
	damaged := t.TempDir()
	data := append([]byte(nil), f.fileData(0)...)
	data[90000] ^= 1
	if err := os.WriteFile(filepath.Join(damaged, f.name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mid := newTestClient(t, "127.0.2.5", Config{})
	mt, err := mid.AddTorrent(f.mi, AddOptions{Import: damaged})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for mt.Stats().PiecesHave < f.mi.Info.NumPieces()-1 {
		select {
		case <-ctx.Done():
			t.Fatalf("import: %+v", mt.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{mid.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := tor.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	// Piece 0 comes from the partial peer.
	if _, err := r2.ReadAt(ctx, make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	_, err = r2.ReadAt(short, make([]byte, 10), 90000)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no connected peer has piece 5") {
		t.Fatalf("err = %v, want a deadline error saying no peer has piece 5", err)
	}
}

// TestPauseResumeRemove pauses a download, resumes it, and removes the
// torrent while a read waits: the read ends with ErrClosed.
func TestPauseResumeRemove(t *testing.T) {
	f := makeFixture(t, "paused", 16<<10, nil, 500000)
	seed := newTestClient(t, "127.0.2.6", Config{})
	seedFixture(t, seed, f)
	c := newTestClient(t, "127.0.2.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{seed.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	tor.Pause()
	if st := tor.Stats(); st.State != StatePaused || st.Peers != 0 {
		t.Fatalf("after Pause: %+v", st)
	}
	tor.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tor.SetPrefetch(true)
	waitClosed(t, ctx, tor.Complete(), "download after resume", tor)
	checkFiles(t, ctx, tor, f)

	// A torrent with no peers: a read blocks until Remove.
	g := makeFixture(t, "removed", 16<<10, nil, 100000)
	tor2, err := c.AddTorrent(g.mi, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor2.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := r.ReadAt(ctx, make([]byte, 10), 0)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := tor2.Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("read after Remove: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("read still blocked after Remove")
	}
	if _, ok := c.Torrent(g.mi.InfoHash); ok {
		t.Fatal("removed torrent still listed")
	}
	if _, err := c.AddTorrent(f.mi, AddOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("adding twice: %v, want ErrExists", err)
	}
}

// TestFileComplete imports a two-file torrent whose second file is damaged
// in piece 5: the first file is complete, the second is not.
func TestFileComplete(t *testing.T) {
	f := makeFixture(t, "files", 16<<10, nil, 40000, 60000)
	dir := filepath.Join(t.TempDir(), "files")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, data := range f.files {
		data = append([]byte(nil), data...)
		if rel == "f01.bin" {
			data[50000] ^= 1 // torrent offset 90000: piece 5
		}
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestClient(t, "127.0.2.6", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Import: filepath.Dir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if tor.FileComplete(-1) || tor.FileComplete(2) {
		t.Fatal("FileComplete of a file index out of range")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for tor.Stats().PiecesHave < f.mi.Info.NumPieces()-1 {
		select {
		case <-ctx.Done():
			t.Fatalf("import: %+v", tor.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !tor.FileComplete(0) || tor.FileComplete(1) {
		t.Fatalf("FileComplete = %v, %v; want true, false", tor.FileComplete(0), tor.FileComplete(1))
	}
}
