package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// filesCrashTorrent is the torrent the Files crash test's child writes:
// pieces of two blocks over files of odd sizes, some followed by pad bytes
// and some not, so that pieces span files.
func filesCrashTorrent() *torrent {
	rng := rand.New(rand.NewPCG(44, 44))
	pl := int64(2 * BlockSize)
	var sizes []int64
	for range 10 {
		sizes = append(sizes, rng.Int64N(20*pl))
	}
	sizes[3] = 0
	return multiTorrent(rng, pl, sizes, false)
}

// TestHelperFilesWriter is the child process of TestCrashFilesLayout: it
// writes random missing pieces of a Files store, often wrong first (a
// corrupt block overwritten, a corrupt piece that fails its hash, a
// corrupt WritePiece), printing "n <ops>" after each piece until it is
// killed; with every piece present it idles.
func TestHelperFilesWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "files" {
		t.Skip("child process of TestCrashFilesLayout")
	}
	tt := filesCrashTorrent()
	s, err := Open(os.Getenv("SWARMFS_CACHE_DIR"), tt.hash, tt.info,
		Config{Layout: Files{Dir: os.Getenv("SWARMFS_DATA_DIR")}})
	if err != nil {
		t.Fatal(err)
	}
	s.chunk = BlockSize // WritePiece writes before it knows the hash
	seed, _ := strconv.ParseUint(os.Getenv("SWARMFS_CACHE_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 3))
	fmt.Println("n open")
	corrupt := func(b []byte) []byte {
		bad := append([]byte(nil), b...)
		bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		return bad
	}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 1000000 && time.Now().Before(deadline); n++ {
		i := rng.IntN(tt.info.NumPieces())
		if s.Has(i) {
			if k, _ := s.Present(); k == tt.info.NumPieces() {
				time.Sleep(time.Millisecond)
			}
			continue
		}
		bs := blocksOf(tt, i)
		switch rng.IntN(4) {
		case 0:
			k := rng.IntN(len(bs))
			if err := s.WriteBlock(i, bs[k].begin, corrupt(bs[k].data)); err != nil {
				t.Fatal(err)
			}
		case 1:
			for _, b := range bs {
				if err := s.WriteBlock(i, b.begin, corrupt(b.data)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.FinishPiece(i); !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("FinishPiece(%d) of a corrupt piece = %v", i, err)
			}
		case 2:
			if err := s.WritePiece(i, corrupt(tt.piece(i))); !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("WritePiece(%d) of a corrupt piece = %v", i, err)
			}
		}
		for _, b := range bs {
			if err := s.WriteBlock(i, b.begin, b.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FinishPiece(i); err != nil {
			t.Fatalf("FinishPiece(%d) = %v", i, err)
		}
		fmt.Printf("n %d\n", n)
		if rng.IntN(8) == 0 {
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		}
	}
	fmt.Println("done")
	s.Close()
}

// TestCrashFilesLayout kills the Files layout writer above with SIGKILL at
// random moments, 40 times over the same data directory. After each kill
// an offline reopen must trust the state without re-verifying, and every
// piece it claims must match byte for byte. Then one file is removed
// behind the store's back: the next reopen must not claim its pieces, and
// the writer has work again.
func TestCrashFilesLayout(t *testing.T) {
	tt := filesCrashTorrent()
	root, data := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	claimedTotal := 0
	crashLoop(t, 40, "TestHelperFilesWriter",
		[]string{helperEnv + "=files", "SWARMFS_CACHE_DIR=" + root, "SWARMFS_DATA_DIR=" + data},
		func(round int, line string) {
			// Every third round a file is cut short behind the
			// crashed store's back: its state (not clean) has no
			// stamps, so the size alone must tell.
			var cut byteRange
			if round%3 == 2 {
				f := tt.info.Files[rng.IntN(len(tt.info.Files))]
				if fi, err := os.Stat(filePath(data, tt, f)); err == nil && fi.Size() > 1 {
					n := rng.Int64N(fi.Size())
					if err := os.Truncate(filePath(data, tt, f), n); err != nil {
						t.Fatal(err)
					}
					cut = fr(f.Offset+n, fi.Size()-n)
				}
			}
			s := openFilesT(t, root, data, tt, Config{})
			if s.Verifying() && cut.end == 0 {
				t.Fatalf("round %d: crashed store not trusted (re-verifying)", round)
			}
			waitVerified(t, s)
			for p, ok := range s.Bitfield() {
				lo := tt.info.PieceOffset(p)
				if ok && overlaps(lo, lo+tt.info.PieceSize(p), cut.off, cut.end) {
					t.Fatalf("round %d: piece %d present over bytes cut from its file", round, p)
				}
			}
			have, _ := s.Present()
			claimedTotal += have
			t.Logf("round %d: killed after %q; state claims %d pieces", round, line, have)
			checkPresentData(t, s, tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			f := tt.info.Files[rng.IntN(len(tt.info.Files))]
			for f.Length == 0 {
				f = tt.info.Files[rng.IntN(len(tt.info.Files))]
			}
			if err := os.Remove(filePath(data, tt, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			s = openFilesT(t, root, data, tt, Config{})
			first, end := tt.info.FileSpan(f)
			for p := first; p < end; p++ {
				if s.Has(p) {
					t.Fatalf("round %d: piece %d of removed %s still present", round, p, f.DisplayPath())
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	if claimedTotal == 0 {
		t.Fatal("no reopened state claimed any piece: the test checked nothing")
	}
	if _, err := os.Stat(filepath.Join(data, tt.info.Name)); err != nil {
		t.Fatal(err)
	}
}
