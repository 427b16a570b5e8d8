package cache

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

// multiTorrent builds a multi-file torrent by hand over random contents:
// one file per size (0 makes an empty file), spread over a few
// directories. With pad, every file is followed by BEP 47 pad bytes up to
// the next piece boundary (as libtorrent makes them), except the last.
func multiTorrent(rng *rand.Rand, pl int64, sizes []int64, pad bool) *torrent {
	info := &metainfo.Info{Name: "gen", PieceLength: pl}
	var payload []byte
	for i, n := range sizes {
		f := metainfo.File{Path: []string{fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d.bin", i)},
			Length: n, Offset: int64(len(payload))}
		info.Files = append(info.Files, f)
		b := make([]byte, n)
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		payload = append(payload, b...)
		if pad && i < len(sizes)-1 && int64(len(payload))%pl != 0 {
			payload = append(payload, make([]byte, pl-int64(len(payload))%pl)...)
		}
	}
	info.TotalLength = int64(len(payload))
	return hashTorrent(info, payload)
}

// padsTorrent is testdata's hand-made torrent with legacy and BEP 47 pad
// files, an empty file and a 4-byte tail, over the contents
// scripts/gen-testdata.sh made it from.
func padsTorrent(t testing.TB) *torrent {
	t.Helper()
	mi, err := metainfo.LoadFile(filepath.Join("..", "testdata", "torrents", "good", "handmade-pads.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	pl := int(mi.Info.PieceLength)
	a, c := sha1.Sum([]byte("a")), sha1.Sum([]byte("c"))
	blob := bytes.Repeat(a[:], 100)
	blob = append(blob, make([]byte, pl-len(blob))...)
	blob = append(blob, bytes.Repeat(c[:], 51)...)
	blob = append(blob, make([]byte, 2*pl-len(blob))...)
	blob = append(blob, "tail"...)
	tt := &torrent{info: mi.Info, hash: mi.InfoHash, payload: blob}
	for i := range mi.Info.NumPieces() {
		if sha1.Sum(tt.piece(i)) != mi.Info.Pieces[i] {
			t.Fatalf("pads fixture: piece %d does not match the recipe", i)
		}
	}
	return tt
}

// openFilesT opens a Files store of tt with its data in dir.
func openFilesT(t testing.TB, root, dir string, tt *torrent, cfg Config) *Store {
	t.Helper()
	cfg.Layout = Files{Dir: dir}
	return openT(t, root, tt, cfg)
}

// writeMixed writes every piece of tt, in random order, whole or by blocks
// (some of them out of order, one of them corrupt first).
func writeMixed(t testing.TB, rng *rand.Rand, s *Store, tt *torrent) {
	t.Helper()
	for _, i := range rng.Perm(tt.info.NumPieces()) {
		if rng.IntN(3) == 0 {
			if err := s.WritePiece(i, tt.piece(i)); err != nil {
				t.Fatalf("WritePiece(%d): %v", i, err)
			}
			continue
		}
		bs := blocksOf(tt, i)
		bad := append([]byte(nil), bs[0].data...)
		bad[0] ^= 1
		if err := s.WriteBlock(i, 0, bad); err != nil {
			t.Fatal(err)
		}
		for _, k := range rng.Perm(len(bs)) {
			if err := s.WriteBlock(i, bs[k].begin, bs[k].data); err != nil {
				t.Fatalf("WriteBlock(%d, %d): %v", i, bs[k].begin, err)
			}
		}
		if err := s.FinishPiece(i); err != nil {
			t.Fatalf("FinishPiece(%d): %v", i, err)
		}
	}
}

// filePath is where file f of tt lives under dir.
func filePath(dir string, tt *torrent, f metainfo.File) string {
	if tt.info.SingleFile {
		return filepath.Join(append([]string{dir}, f.Path...)...)
	}
	return filepath.Join(append([]string{dir, tt.info.Name}, f.Path...)...)
}

// checkTree compares the regular files under dir with tt's files, byte for
// byte: the same names (no pad files, empty files present) and contents.
func checkTree(t testing.TB, dir string, tt *torrent) {
	t.Helper()
	var got, want []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			got = append(got, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tt.info.Files {
		p := filePath(dir, tt, f)
		want = append(want, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("file %s: %v", f.DisplayPath(), err)
		}
		if !bytes.Equal(b, tt.payload[f.Offset:f.Offset+f.Length]) {
			t.Fatalf("file %s: %d bytes differ from the torrent's %d", f.DisplayPath(), len(b), f.Length)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("files under %s:\n%q\nwant\n%q", dir, got, want)
	}
}

// checkReads reads random ranges (across piece, file and pad boundaries)
// with ReadAt and compares them with the payload.
func checkReads(t testing.TB, rng *rand.Rand, s *Store, tt *torrent) {
	t.Helper()
	total := tt.info.TotalLength
	for range 200 {
		off := rng.Int64N(total)
		n := 1 + rng.Int64N(min(total-off, 3*tt.info.PieceLength))
		buf := make([]byte, n)
		m, err := s.ReadAt(buf, off)
		if err != nil && !(err == io.EOF && off+n == total) {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		if int64(m) != n || !bytes.Equal(buf, tt.payload[off:off+n]) {
			t.Fatalf("ReadAt(%d, %d): %d bytes, wrong data", off, n, m)
		}
	}
}

// TestFilesLayoutRoundTrip writes torrents whose pieces span files, with
// pad bytes between them and empty files, into the Files layout, and
// checks the reads across boundaries, the files on disk (no pad files, the
// empty ones created), and a reopen that trusts everything without reading.
func TestFilesLayoutRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	pl := int64(4 * BlockSize)
	cases := map[string]*torrent{
		"handmade-pads": padsTorrent(t),
		"pads":          multiTorrent(rng, pl, []int64{3*BlockSize + 5, 0, 100, pl, 2*pl + 7, 0, 1}, true),
		"spanning":      multiTorrent(rng, pl, []int64{1, BlockSize - 1, 3*pl + 9, 0, 5, pl - 3, 2 * BlockSize}, false),
		"single":        genTorrent(rng, pl, 5*pl+11),
	}
	for name, tt := range cases {
		t.Run(name, func(t *testing.T) {
			root, dir := t.TempDir(), t.TempDir()
			s := openFilesT(t, root, dir, tt, Config{})
			for _, f := range tt.info.Files {
				_, err := os.Stat(filePath(dir, tt, f))
				if f.Length == 0 && err != nil {
					t.Fatalf("empty file %s not created at Open: %v", f.DisplayPath(), err)
				}
			}
			writeMixed(t, rng, s, tt)
			checkReads(t, rng, s, tt)
			checkPresentData(t, s, tt)
			checkTree(t, dir, tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openFilesT(t, root, dir, tt, Config{})
			if s.Verifying() || s.VerifyProgress().Pieces != 0 {
				t.Fatalf("reopen re-verifies: %+v", s.VerifyProgress())
			}
			if n, _ := s.Present(); n != tt.info.NumPieces() {
				t.Fatalf("%d pieces present after reopen, want %d", n, tt.info.NumPieces())
			}
			checkReads(t, rng, s, tt)
			checkTree(t, dir, tt)
		})
	}
}

// TestFilesLayoutUnverifiedInvisible checks that bytes written to the files
// but not verified are never read back, that a hash failure leaves the
// piece absent, and that the files hold no pad files or preallocated tail.
func TestFilesLayoutUnverifiedInvisible(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{pl + 100, 3 * pl, 50}, true)
	dir := t.TempDir()
	s := openFilesT(t, t.TempDir(), dir, tt, Config{WriteBuffers: -1})
	bs := blocksOf(tt, 1)
	if err := s.WriteBlock(1, 0, bs[0].data); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := s.ReadAt(buf, pl); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("ReadAt of a staged block: %v, want ErrNotPresent", err)
	}
	bad := append([]byte(nil), tt.piece(2)...)
	bad[7] ^= 1
	if err := s.WritePiece(2, bad); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("WritePiece of a corrupt piece: %v", err)
	}
	if s.Has(2) {
		t.Fatal("corrupt piece present")
	}
	if _, err := s.HoldSpan(2*pl, 10); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("HoldSpan of a corrupt piece: %v", err)
	}
	// Only what was written exists: the second file was never reached.
	if _, err := os.Stat(filePath(dir, tt, tt.info.Files[1])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file no piece reached exists: %v", err)
	}
	fi, err := os.Stat(filePath(dir, tt, tt.info.Files[0]))
	if err != nil || fi.Size() != tt.info.Files[0].Length {
		t.Fatalf("first file after a block across its end and the pad: %v, %v", fi, err)
	}
}

// TestFilesLayoutNoCap writes a torrent ten times a budget's cap into the
// Files layout: the user's files are never evicted nor charged to the
// budget, and WouldEvict forecasts nothing.
func TestFilesLayoutNoCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(85, 86))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{5 * pl, 5*pl + 1}, true)
	b := NewBudget(pl)
	dir := t.TempDir()
	s := openFilesT(t, t.TempDir(), dir, tt, Config{Budget: b})
	writeMixed(t, rng, s, tt)
	if n, _ := s.Present(); n != tt.info.NumPieces() || len(s.TakeEvicted()) != 0 {
		t.Fatalf("%d of %d pieces present under a one-piece budget", n, tt.info.NumPieces())
	}
	if b.Used() != 0 || b.Staged() != 0 {
		t.Fatalf("budget charged %d verified and %d staged bytes", b.Used(), b.Staged())
	}
	if f := s.WouldEvict(pl); len(f.Pieces) != 0 || f.Others != 0 || f.Short != 0 {
		t.Fatalf("WouldEvict = %+v", f)
	}
	if _, ok := s.Layout().(Files); !ok || s.DataDir() != dir {
		t.Fatalf("Layout %#v, DataDir %q", s.Layout(), s.DataDir())
	}
	checkTree(t, dir, tt)
}
