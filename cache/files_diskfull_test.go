package cache

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesDiskFull downloads a torrent twice the size of a 4 MiB tmpfs
// into the Files layout there: the write that finds the disk full fails
// with a *DiskError naming the data directory, matching ErrNoSpace; every
// piece verified before stays present and correct, also after a reopen;
// and the store carries on once space is freed.
func TestFilesDiskFull(t *testing.T) {
	small := mountTmpfs(t, "4m")
	filler := filepath.Join(small, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(73, 74))
	pl := int64(4 * BlockSize)
	tt := multiTorrent(rng, pl, []int64{40*pl + 5, 0, 30*pl - 9, 60 * pl}, true)
	root := t.TempDir()
	s := openFilesT(t, root, small, tt, Config{})
	full := -1
	for i := range tt.info.NumPieces() {
		var err error
		if i%2 == 0 {
			err = s.WritePiece(i, tt.piece(i))
		} else {
			for _, b := range blocksOf(tt, i) {
				if err = s.WriteBlock(i, b.begin, b.data); err != nil {
					break
				}
			}
			if err == nil {
				err = s.FinishPiece(i)
			}
		}
		if err != nil {
			var de *DiskError
			if !errors.As(err, &de) || de.Dir != s.DataDir() || de.Piece != i || !errors.Is(err, ErrNoSpace) ||
				!strings.Contains(err.Error(), small) {
				t.Fatalf("piece %d: error %q is not a *DiskError naming the data directory, the piece and ErrNoSpace", i, err)
			}
			t.Logf("disk full at piece %d: %v", i, err)
			full = i
			break
		}
	}
	if full < 0 {
		t.Fatal("the 4 MiB tmpfs never filled up")
	}
	if n, _ := s.Present(); n != full || s.Has(full) {
		t.Fatalf("%d pieces present (piece %d: %v), want the %d before the disk filled", n, full, s.Has(full), full)
	}
	checkPresentData(t, s, tt)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFilesT(t, root, small, tt, Config{})
	waitVerified(t, s)
	if n, _ := s.Present(); n != full {
		t.Fatalf("%d pieces present after reopen, want %d", n, full)
	}
	checkPresentData(t, s, tt)
	// Space comes back: the store carries on.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePiece(full, tt.piece(full)); err != nil {
		t.Fatalf("WritePiece(%d) after space returned: %v", full, err)
	}
	if _, err := os.Stat(filepath.Join(small, tt.info.Name)); err != nil {
		t.Fatal(err)
	}
}
