package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// afterTick waits until the filesystem's clock has moved past the ctime of
// the file at path, so that a change made now gets other times than the
// store's last write into it (timestamps are as coarse as a clock tick).
func afterTick(t testing.TB, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(filepath.Dir(path), ".tick")
	defer os.Remove(probe)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if pi, err := os.Stat(probe); err == nil && pi.ModTime().After(fi.ModTime()) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the filesystem clock did not move")
}

// changeTorrent is a torrent over four files (pieces span them) for the
// tests of files changed while the store is open.
func changeTorrent() *torrent {
	rng := rand.New(rand.NewPCG(91, 92))
	pl := int64(4 * BlockSize)
	return multiTorrent(rng, pl, []int64{3*pl + 100, 4*pl - 50, 3 * pl, 2*pl + 9}, false)
}

// flipped returns a copy of the bytes of f (in tt) with one byte changed
// at offset at.
func flipped(tt *torrent, f metainfo.File, at int64) []byte {
	b := append([]byte(nil), tt.payload[f.Offset:f.Offset+f.Length]...)
	b[at] ^= 0xff
	return b
}

// readsNeverChanged reads every piece with ReadPiece, ReadAt and HoldSpan
// and fails when any of them returns bytes that are not the torrent's: a
// read either gives the right bytes or an error.
func readsNeverChanged(t *testing.T, s *Store, tt *torrent) {
	t.Helper()
	buf := make([]byte, tt.info.PieceLength)
	for p := range tt.info.NumPieces() {
		want := tt.piece(p)
		if n, err := s.ReadPiece(p, buf); err == nil && !bytes.Equal(buf[:n], want) {
			t.Fatalf("ReadPiece(%d) returned changed bytes", p)
		} else if err != nil && !errors.Is(err, ErrNotPresent) {
			t.Fatalf("ReadPiece(%d): %v", p, err)
		}
		off := tt.info.PieceOffset(p)
		if n, err := s.ReadAt(buf[:len(want)], off); err == nil && !bytes.Equal(buf[:n], want) {
			t.Fatalf("ReadAt of piece %d returned changed bytes", p)
		}
		sp, err := s.HoldSpan(off, len(want))
		if err != nil {
			continue
		}
		got := make([]byte, sp.Len())
		_, rerr := unix.Pread(int(sp.Fd()), got, sp.Offset())
		sp.Release()
		if rerr == nil && !bytes.Equal(got, want[:len(got)]) {
			t.Fatalf("HoldSpan of piece %d held changed bytes", p)
		}
	}
}

// changedWhileOpen writes every piece of changeTorrent into a Files store,
// then changes file 1 with change (after the clock moved past the store's
// last write), and returns the store, the file and the piece whose bytes
// changed.
func changedWhileOpen(t *testing.T, change func(path string, b []byte)) (s *Store, tt *torrent, fi int, bad int) {
	tt = changeTorrent()
	root, dir := t.TempDir(), t.TempDir()
	s = openFilesT(t, root, dir, tt, Config{SyncInterval: time.Hour})
	writeAll(t, s, tt)
	if err := s.Sync(); err != nil { // the state claims every piece
		t.Fatal(err)
	}
	fi = 1
	f := tt.info.Files[fi]
	at := f.Length / 2
	path := filePath(dir, tt, f)
	afterTick(t, path)
	change(path, flipped(tt, f, at))
	return s, tt, fi, tt.info.PieceAt(f.Offset + at)
}

// checkReverified waits for the re-verification that a changed file
// started and checks that only the piece whose bytes changed is missing.
func checkReverified(t *testing.T, s *Store, tt *torrent, fi, bad int) {
	t.Helper()
	dropped := s.TakeEvicted()
	first, end := tt.info.FileSpan(tt.info.Files[fi])
	if len(dropped) != end-first {
		t.Fatalf("dropped pieces %v, want the %d pieces of file %d", dropped, end-first, fi)
	}
	waitVerified(t, s)
	for p, ok := range s.Bitfield() {
		if ok == (p == bad) {
			t.Fatalf("after re-verification piece %d present=%v (the changed piece is %d)", p, ok, bad)
		}
	}
	checkPresentData(t, s, tt)
}

// TestFilesRewrittenWhileOpen rewrites a file of an open Files store in
// place, same size, one byte changed: no read returns the changed bytes;
// the first read of the file finds the change, drops the file's pieces and
// re-verifies them, and only the changed piece stays missing.
func TestFilesRewrittenWhileOpen(t *testing.T) {
	s, tt, fi, bad := changedWhileOpen(t, func(path string, b []byte) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
	})
	buf := make([]byte, tt.info.PieceSize(bad))
	if err := s.ReadBlock(bad, 0, buf); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadBlock of the changed piece: %v, want ErrNotPresent", err)
	}
	// A kill -9 now must not find the file's pieces claimed.
	st, err := readState(s.statePath)
	if err != nil {
		t.Fatal(err)
	}
	first, end := tt.info.FileSpan(tt.info.Files[fi])
	for p := first; p < end; p++ {
		if st.present[p] {
			t.Fatalf("the state on disk still claims piece %d of the changed file", p)
		}
	}
	readsNeverChanged(t, s, tt)
	checkReverified(t, s, tt, fi, bad)
	readsNeverChanged(t, s, tt)
	// The piece comes again and is written into the file.
	if err := s.WritePiece(bad, tt.piece(bad)); err != nil {
		t.Fatal(err)
	}
	readsNeverChanged(t, s, tt)
	if n, _ := s.Present(); n != tt.info.NumPieces() {
		t.Fatalf("%d of %d pieces present", n, tt.info.NumPieces())
	}
}

// TestFilesReplacedWhileOpen replaces a file of an open Files store by
// rename (a new file, same size, one byte changed): reads keep returning
// verified bytes (of the old file) until the path is checked again; then
// the file's pieces are re-verified from the new file, and only the changed
// piece stays missing.
func TestFilesReplacedWhileOpen(t *testing.T) {
	s, tt, fi, bad := changedWhileOpen(t, func(path string, b []byte) {
		if err := os.WriteFile(path+".new", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	})
	readsNeverChanged(t, s, tt)
	s.files.slots[fi].pathAt.Store(0) // as if a second passed
	buf := make([]byte, tt.info.PieceSize(bad))
	if err := s.ReadBlock(bad, 0, buf); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadBlock of the changed piece once the path was checked: %v, want ErrNotPresent", err)
	}
	checkReverified(t, s, tt, fi, bad)
	readsNeverChanged(t, s, tt)
	if err := s.WritePiece(bad, tt.piece(bad)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkTree(t, s.DataDir(), tt) // written into the new file
}

// TestFilesChangedThenClosed changes a file of an open Files store that
// nothing reads afterwards, then closes the store cleanly: the state keeps
// the stamp of the file as the store wrote it, so the reopen re-verifies
// that file's pieces (and only those) instead of trusting them.
func TestFilesChangedThenClosed(t *testing.T) {
	for _, how := range []string{"in place", "by rename"} {
		t.Run(how, func(t *testing.T) {
			s, tt, fi, bad := changedWhileOpen(t, func(path string, b []byte) {
				if how == "in place" {
					if err := os.WriteFile(path, b, 0); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err := os.WriteFile(path+".new", b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(path+".new", path); err != nil {
					t.Fatal(err)
				}
			})
			root, dir := filepath.Dir(s.Dir()), s.DataDir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openFilesT(t, root, dir, tt, Config{})
			waitVerified(t, s)
			first, end := tt.info.FileSpan(tt.info.Files[fi])
			if vp := s.VerifyProgress(); vp.Pieces != end-first {
				t.Fatalf("reopen re-verified %d pieces, want the %d of the changed file", vp.Pieces, end-first)
			}
			for p, ok := range s.Bitfield() {
				if ok == (p == bad) {
					t.Fatalf("after the reopen piece %d present=%v (the changed piece is %d)", p, ok, bad)
				}
			}
			checkPresentData(t, s, tt)
		})
	}
}

// TestFilesChangeUnderReaders rewrites a file of an open Files store over
// and over (a byte changed, then the torrent's bytes back) while
// goroutines read every piece: no read ever returns changed bytes, and
// once the file holds the torrent's bytes again, a reopen finds every
// piece.
func TestFilesChangeUnderReaders(t *testing.T) {
	tt := changeTorrent()
	root, dir := t.TempDir(), t.TempDir()
	s := openFilesT(t, root, dir, tt, Config{})
	writeAll(t, s, tt)
	f := tt.info.Files[1]
	path := filePath(dir, tt, f)
	good := tt.payload[f.Offset : f.Offset+f.Length]
	stop := make(chan struct{})
	errc := make(chan error, 2)
	for r := range 2 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(r), 93))
			buf := make([]byte, tt.info.PieceLength)
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				p := rng.IntN(tt.info.NumPieces())
				k, err := s.ReadPiece(p, buf)
				if err == nil && !bytes.Equal(buf[:k], tt.piece(p)) {
					errc <- errors.New("a read returned changed bytes")
					return
				}
				var de *DiskError // os.WriteFile truncates first: a read may find the file short
				if err != nil && !errors.Is(err, ErrNotPresent) && !errors.As(err, &de) {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for round := range 10 {
		b := good
		if round%2 == 0 {
			b = flipped(tt, f, int64(round)*f.Length/10)
		}
		afterTick(t, path)
		if err := os.WriteFile(path, b, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // let the readers find it
	}
	close(stop)
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// The file holds the torrent's bytes again. Whatever the rounds of
	// re-verification saw, a reopen re-verifies the file (its stamp is
	// not the one the store knew) and finds every piece.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFilesT(t, root, dir, tt, Config{})
	waitVerified(t, s)
	if n, _ := s.Present(); n != tt.info.NumPieces() {
		t.Fatalf("%d of %d pieces present after the file was restored", n, tt.info.NumPieces())
	}
	checkPresentData(t, s, tt)
}
