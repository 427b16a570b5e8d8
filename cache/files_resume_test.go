package cache

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// makeTree writes a source tree of files with random contents and odd
// sizes (one empty) under parent/name and returns its path.
func makeTree(t testing.TB, rng *rand.Rand, parent, name string) string {
	t.Helper()
	tree := filepath.Join(parent, name)
	files := map[string]int{
		"a.bin":             70001,
		"empty":             0,
		"sub/b.bin":         16384,
		"sub/c.txt":         3,
		"sub/deeper/d.bin":  200000,
		"sub/deeper/e.bin":  12345,
		"z-last/f.bin":      65536,
		"z-last/g tail.bin": 99,
	}
	for p, n := range files {
		b := make([]byte, n)
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		full := filepath.Join(tree, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// torrentOfTree reads a torrent's payload from the tree it was made from.
func torrentOfTree(t testing.TB, mi *metainfo.MetaInfo, tree string) *torrent {
	t.Helper()
	payload := make([]byte, mi.Info.TotalLength)
	for _, f := range mi.Info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{tree}, f.Path...)...))
		if err != nil {
			t.Fatal(err)
		}
		copy(payload[f.Offset:], b)
	}
	return &torrent{info: mi.Info, hash: mi.InfoHash, payload: payload}
}

// mktorrent makes a torrent of tree with mktorrent (piece length 2^15).
func mktorrent(t testing.TB, tree string) *metainfo.MetaInfo {
	t.Helper()
	if _, err := exec.LookPath("mktorrent"); err != nil {
		t.Skip("mktorrent not installed")
	}
	out := filepath.Join(t.TempDir(), "t.torrent")
	cmd := exec.Command("mktorrent", "-l", "15", "-d", "-a", "http://127.0.0.1:6969/announce", "-o", out, tree)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v\n%s", err, b)
	}
	mi, err := metainfo.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// sameTrees compares two trees: the same regular files, byte for byte.
func sameTrees(t testing.TB, a, b string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ma, mb := list(a), list(b)
	ka, kb := slices.Sorted(mapKeys(ma)), slices.Sorted(mapKeys(mb))
	if !slices.Equal(ka, kb) {
		t.Fatalf("trees differ in names:\n%q\n%q", ka, kb)
	}
	for k, v := range ma {
		if !bytes.Equal(v, mb[k]) {
			t.Fatalf("%s differs", k)
		}
	}
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestFilesLayoutMatchesSource downloads (writes piece by piece) torrents
// made by metainfo.Create and by mktorrent from a source tree into an
// empty directory: the result is the source tree, byte for byte and name
// for name, as other clients would write it.
func TestFilesLayoutMatchesSource(t *testing.T) {
	rng := rand.New(rand.NewPCG(65, 66))
	src := t.TempDir()
	tree := makeTree(t, rng, src, "tree")
	created, err := metainfo.Create(tree, metainfo.CreateOptions{PieceLength: 32 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	single, err := metainfo.Create(filepath.Join(tree, "sub", "deeper", "d.bin"), metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, mi := range map[string]*metainfo.MetaInfo{"create": created, "mktorrent": mktorrent(t, tree), "single": single} {
		t.Run(name, func(t *testing.T) {
			var tt *torrent
			if mi.Info.SingleFile {
				b, err := os.ReadFile(filepath.Join(tree, "sub", "deeper", "d.bin"))
				if err != nil {
					t.Fatal(err)
				}
				tt = &torrent{info: mi.Info, hash: mi.InfoHash, payload: b}
			} else {
				tt = torrentOfTree(t, mi, tree)
			}
			out := t.TempDir()
			s := openFilesT(t, t.TempDir(), out, tt, Config{})
			writeMixed(t, rng, s, tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if mi.Info.SingleFile {
				a, _ := os.ReadFile(filepath.Join(tree, "sub", "deeper", "d.bin"))
				b, err := os.ReadFile(filepath.Join(out, "d.bin"))
				if err != nil || !bytes.Equal(a, b) {
					t.Fatalf("single file differs from its source: %v", err)
				}
				return
			}
			sameTrees(t, tree, filepath.Join(out, "tree"))
		})
	}
}

// TestFilesVerifyForeignData opens the Files layout, with no state, over
// the source tree mktorrent made a torrent of: parallel verification finds
// every piece present, reads each file byte once and changes nothing. With
// one file missing and one truncated, exactly their pieces stay absent.
func TestFilesVerifyForeignData(t *testing.T) {
	rng := rand.New(rand.NewPCG(67, 68))
	src := t.TempDir()
	tree := makeTree(t, rng, src, "tree")
	mi := mktorrent(t, tree)
	tt := torrentOfTree(t, mi, tree)
	before := treeTimes(t, tree)

	s := openFilesT(t, t.TempDir(), src, tt, Config{VerifyWorkers: 4})
	waitVerified(t, s)
	vp := s.VerifyProgress()
	if n, _ := s.Present(); n != tt.info.NumPieces() || vp.Good != n || vp.Checked != n || !vp.Done {
		t.Fatalf("%d of %d pieces present after verification, progress %+v", n, tt.info.NumPieces(), vp)
	}
	if got := s.files.read.Load(); got != tt.info.TotalLength {
		t.Fatalf("verification read %d bytes, want the torrent's %d", got, tt.info.TotalLength)
	}
	checkPresentData(t, s, tt)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := treeTimes(t, tree); !maps2Equal(before, after) {
		t.Fatal("verifying foreign data modified it")
	}

	// One file missing, one truncated; no state either (another cache).
	var missing, cut metainfo.File
	for _, f := range tt.info.Files {
		switch f.DisplayPath() {
		case "sub/b.bin":
			missing = f
		case "sub/deeper/d.bin":
			cut = f
		}
	}
	if err := os.Remove(filePath(src, tt, missing)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filePath(src, tt, cut), cut.Length/2); err != nil {
		t.Fatal(err)
	}
	s = openFilesT(t, t.TempDir(), src, tt, Config{})
	waitVerified(t, s)
	checkPresentData(t, s, tt)
	for i, ok := range s.Bitfield() {
		lo, hi := tt.info.PieceOffset(i), tt.info.PieceOffset(i)+tt.info.PieceSize(i)
		gone := overlaps(lo, hi, missing.Offset, missing.Offset+missing.Length) ||
			overlaps(lo, hi, cut.Offset+cut.Length/2, cut.Offset+cut.Length)
		if ok == gone {
			t.Fatalf("piece %d present=%v with a missing and a truncated file", i, ok)
		}
	}
}

func overlaps(a0, a1, b0, b1 int64) bool { return a0 < b1 && b0 < a1 }

// treeTimes returns the mtime of every file under root.
func treeTimes(t testing.TB, root string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			m[p] = fi.ModTime()
		}
		return err
	})
	return m
}

func maps2Equal(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// TestFilesContentElsewhere seeds content whose name differs from the
// torrent's (Files.Content): a directory for a multi-file torrent and a
// file for a single-file one verify in place, and a missing piece written
// goes into that content, not into a new directory named after the
// torrent.
func TestFilesContentElsewhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(77, 78))
	src := t.TempDir()
	tree := makeTree(t, rng, src, "tree")
	mi, err := metainfo.Create(tree, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true, Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(tree, "a.bin")
	single, err := metainfo.Create(one, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true, Name: "renamed.bin"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(one)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		tt      *torrent
		content string
	}{
		"multi":  {torrentOfTree(t, mi, tree), tree},
		"single": {&torrent{info: single.Info, hash: single.InfoHash, payload: b}, one},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			s := openT(t, root, c.tt, Config{Layout: Files{Content: c.content}})
			waitVerified(t, s)
			if n, _ := s.Present(); n != c.tt.info.NumPieces() {
				t.Fatalf("%d of %d pieces verified in place", n, c.tt.info.NumPieces())
			}
			checkPresentData(t, s, c.tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Piece 0 damaged behind its back: rewritten in place.
			f, err := os.OpenFile(filePathContent(c.content, c.tt, c.tt.info.Files[0]), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{c.tt.payload[0] ^ 1}, 0)
			f.Close()
			os.Chtimes(f.Name(), time.Now(), time.Now().Add(time.Hour))
			s = openT(t, root, c.tt, Config{Layout: Files{Content: c.content}})
			waitVerified(t, s)
			if s.Has(0) {
				t.Fatal("damaged piece 0 present")
			}
			if err := s.WritePiece(0, c.tt.piece(0)); err != nil {
				t.Fatal(err)
			}
			checkPresentData(t, s, c.tt)
			for _, p := range []string{filepath.Join(src, "other"), filepath.Join(tree, "renamed.bin"), filepath.Join(src, "renamed.bin")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s created", p)
				}
			}
		})
	}
}

func filePathContent(content string, tt *torrent, f metainfo.File) string {
	if tt.info.SingleFile {
		return content
	}
	return filepath.Join(append([]string{content}, f.Path...)...)
}

// TestFilesVerifySparseForeign verifies, with no state, files another
// client preallocated sparse at full size and filled in part: pieces in
// holes are settled without reading (a piece of zeros in a hole verifies,
// being zeros), written pieces verify, the rest stay absent, and a short
// file's all-zero piece is not taken for a hole.
func TestFilesVerifySparseForeign(t *testing.T) {
	pl := int64(4 * BlockSize)
	rng := rand.New(rand.NewPCG(81, 82))
	tt := multiTorrent(rng, pl, []int64{4 * pl, 2 * pl, pl}, true)
	clear(tt.payload[pl : 2*pl]) // piece 1 is zeros
	clear(tt.payload[4*pl:])     // so are the second and third files
	tt = hashTorrent(tt.info, tt.payload)
	dir := t.TempDir()
	for i, f := range tt.info.Files {
		p := filePath(dir, tt, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		size := f.Length
		if i == 2 { // short: its piece's bytes are not there at all
			size /= 2
		}
		if err := fh.Truncate(size); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // pieces 0 and 3 written, 1 and 2 holes
			fh.WriteAt(tt.piece(0), 0)
			fh.WriteAt(tt.piece(3), 3*pl)
		}
		fh.Close()
	}
	s := openFilesT(t, t.TempDir(), dir, tt, Config{})
	waitVerified(t, s)
	want := []bool{true, true, false, true, true, true, false}
	if got := s.Bitfield(); !boolsEqual(got, want) {
		t.Fatalf("present %v, want %v", got, want)
	}
	// The two written pieces, and the short file up to its end.
	if got := s.files.read.Load(); got != 2*pl+pl/2 {
		t.Fatalf("read %d bytes, want only the %d of the two written pieces and the short file", got, 2*pl+pl/2)
	}
	checkPresentData(t, s, tt)
}
