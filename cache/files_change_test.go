package cache

import (
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// TestFilesResumeWithoutRehash closes a half-written Files store and
// reopens it: the pieces it had are present at once and not a byte of the
// files is read.
func TestFilesResumeWithoutRehash(t *testing.T) {
	rng := rand.New(rand.NewPCG(69, 70))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{pl + 3, 2*pl - 7, 0, 5 * pl, 77}, false)
	root, dir := t.TempDir(), t.TempDir()
	s := openFilesT(t, root, dir, tt, Config{})
	for i := range tt.info.NumPieces() {
		if i%2 == 0 {
			if err := s.WritePiece(i, tt.piece(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := s.Bitfield()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFilesT(t, root, dir, tt, Config{})
	waitVerified(t, s)
	if s.VerifyProgress().Pieces != 0 || s.files.read.Load() != 0 {
		t.Fatalf("reopen verified %d pieces, read %d bytes", s.VerifyProgress().Pieces, s.files.read.Load())
	}
	if got := s.Bitfield(); !boolsEqual(got, want) {
		t.Fatalf("present after reopen %v, want %v", got, want)
	}
	// The rest can be written into the same files.
	for i := range tt.info.NumPieces() {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkTree(t, dir, tt)
	// A data directory of its own for the same torrent: another state,
	// nothing trusted there.
	other := openFilesT(t, root, t.TempDir(), tt, Config{})
	if n, _ := other.Present(); n != 0 {
		t.Fatalf("a store over an empty directory has %d pieces", n)
	}
}

func boolsEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFilesSyncBeforeClaim checks that a state claiming pieces is written
// only after every file they touch was fdatasync'ed (each once), and the
// directories created for them fsync'ed, so that after a power loss the
// state cannot claim bytes the files lost.
func TestFilesSyncBeforeClaim(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{pl / 2, pl / 4, pl / 8, 3 * pl}, false)
	root, dir := t.TempDir(), t.TempDir()
	s := openFilesT(t, root, dir, tt, Config{SyncInterval: time.Hour, SyncPieces: 1 << 20})
	if err := s.WritePiece(0, tt.piece(0)); err != nil { // spans the first 4 files
		t.Fatal(err)
	}
	if st, err := readState(s.statePath); err != nil || st.present[0] {
		t.Fatalf("state claims piece 0 before any persist: %v", err)
	}
	if n := s.files.syncs.Load(); n != 0 {
		t.Fatalf("%d files synced before the persist", n)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := s.files.syncs.Load(); n != 4 {
		t.Fatalf("%d files fdatasync'ed before the state claiming piece 0, want 4", n)
	}
	st, err := readState(s.statePath)
	if err != nil || !st.present[0] || st.clean {
		t.Fatalf("state after Sync: %+v, %v", st, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := s.files.syncs.Load(); n != 4 {
		t.Fatalf("%d syncs after a Sync with nothing new, want still 4", n)
	}
}

// TestFilesChangedBehindBack changes the files of a closed Files store the
// way a user might: a byte changed in place at the same size (only the
// mtime tells), a file grown, a file removed, a file truncated. The reopen
// re-verifies only the pieces of the changed files and drops the bad ones;
// a removed file's pieces are absent without reading anything.
func TestFilesChangedBehindBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	pl := int64(4 * BlockSize)
	// Pieces span files: no pads.
	tt := multiTorrent(rng, pl, []int64{3*pl + 100, 2 * pl, 4*pl - 50, 3 * pl, 2*pl + 9, 3 * pl}, false)
	root, dir := t.TempDir(), t.TempDir()
	s := openFilesT(t, root, dir, tt, Config{})
	writeMixed(t, rng, s, tt)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := tt.info.Files
	same, grown, gone, cut := files[0], files[2], files[3], files[5]
	// Same size, one byte changed, and a new mtime.
	p := filePath(dir, tt, same)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	badOff := int64(pl + 10) // in the file's second piece
	if _, err := f.WriteAt([]byte{tt.payload[same.Offset+badOff] ^ 0xff}, badOff); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chtimes(p, time.Now(), time.Now().Add(-time.Hour))
	// Grown: its pieces are still good.
	f, err = os.OpenFile(filePath(dir, tt, grown), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("more"))
	f.Close()
	if err := os.Remove(filePath(dir, tt, gone)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filePath(dir, tt, cut), cut.Length/2); err != nil {
		t.Fatal(err)
	}

	s = openFilesT(t, root, dir, tt, Config{})
	waitVerified(t, s)
	info := tt.info
	inFile := func(i int, f byteRange) bool {
		return overlaps(info.PieceOffset(i), info.PieceOffset(i)+info.PieceSize(i), f.off, f.end)
	}
	var wantChecked int
	var readMax int64
	for i, ok := range s.Bitfield() {
		goneP := inFile(i, fr(gone.Offset, gone.Length))
		changed := inFile(i, fr(same.Offset, same.Length)) || inFile(i, fr(grown.Offset, grown.Length)) ||
			inFile(i, fr(cut.Offset, cut.Length))
		bad := goneP || inFile(i, fr(same.Offset+badOff, 1)) || inFile(i, fr(cut.Offset+cut.Length/2, cut.Length-cut.Length/2))
		if changed && !goneP {
			wantChecked++
			readMax += info.PieceSize(i)
		}
		if ok == bad {
			t.Fatalf("piece %d present=%v (changed=%v, bad=%v)", i, ok, changed, bad)
		}
	}
	vp := s.VerifyProgress()
	if vp.Pieces != wantChecked || vp.Checked != wantChecked {
		t.Fatalf("re-verified %+v, want the %d pieces of the changed files", vp, wantChecked)
	}
	if got := s.files.read.Load(); got > readMax || got == 0 {
		t.Fatalf("read %d bytes to re-verify, at most %d expected", got, readMax)
	}
	checkPresentData(t, s, tt)
	// The bad pieces come again and are written into the files.
	for i, ok := range s.Bitfield() {
		if !ok {
			if err := s.WritePiece(i, tt.piece(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The grown file keeps its extra bytes (ours are written in place),
	// everything else is the torrent again.
	os.Truncate(filePath(dir, tt, grown), grown.Length)
	checkTree(t, dir, tt)
}

type byteRange struct{ off, end int64 }

func fr(off, n int64) byteRange { return byteRange{off, off + n} }

// TestFilesCutWhileOpen truncates a file of an open Files store, as a user
// might while it seeds: the read of a piece past the cut fails with a
// *DiskError, the file's pieces are dropped and reported like evicted ones
// (so the engine stops offering them) and re-verified: those before the
// cut come back, those past it stay dropped and can be downloaded again.
func TestFilesCutWhileOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(79, 80))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{2*pl + 10, 5*pl + 3, pl}, false)
	root, dir := t.TempDir(), t.TempDir()
	s := openFilesT(t, root, dir, tt, Config{})
	writeAll(t, s, tt)
	f := tt.info.Files[1]
	cutAt := f.Length / 2
	if err := os.Truncate(filePath(dir, tt, f), cutAt); err != nil {
		t.Fatal(err)
	}
	victim := tt.info.PieceAt(f.Offset + f.Length - 1)
	buf := make([]byte, 100)
	var de *DiskError
	if err := s.ReadBlock(victim, 0, buf); !errors.As(err, &de) {
		t.Fatalf("ReadBlock of a piece past the cut: %v, want a *DiskError", err)
	}
	select {
	case <-s.Evictions():
	default:
		t.Fatal("no eviction reported for the dropped pieces")
	}
	dropped := s.TakeEvicted()
	waitVerified(t, s)
	for p, ok := range s.Bitfield() {
		lo := tt.info.PieceOffset(p)
		past := overlaps(lo, lo+tt.info.PieceSize(p), f.Offset+cutAt, f.Offset+f.Length)
		if p == victim && (ok || !slices.Contains(dropped, p)) {
			t.Fatalf("piece %d past the cut: present=%v, dropped %v", p, ok, dropped)
		}
		if ok == past {
			t.Fatalf("piece %d: present=%v after the re-verification (past the cut: %v)", p, ok, past)
		}
	}
	for _, p := range dropped {
		if err := s.WritePiece(p, tt.piece(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReadBlock(victim, 0, buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
