package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of the given size option in a temporary
// directory and unmounts it at cleanup (registered first, so it runs after
// the stores opened later are closed).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// TestDiskFull fills a small tmpfs with pieces written whole and by block,
// with write chunks larger and smaller than a piece, and checks that the
// error names the piece and ENOSPC, that nothing present is lost, and that
// the store carries on once space comes back.
func TestDiskFull(t *testing.T) {
	for _, chunk := range []int{writeChunk, 2 * BlockSize} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) { diskFull(t, chunk) })
	}
}

func diskFull(t *testing.T, chunk int) {
	root := mountTmpfs(t, "1m")
	filler := filepath.Join(root, "filler")
	if err := os.WriteFile(filler, make([]byte, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 20))
	const pl = 64 << 10
	tt := genTorrent(rng, pl, 32*pl) // 2 MiB: does not fit
	s := openT(t, root, tt, Config{})
	s.chunk = chunk

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
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "piece") {
				t.Fatalf("piece %d: error %q does not say disk full and which piece", i, err)
			}
			var de *DiskError
			if !errors.As(err, &de) || de.Dir != s.Dir() || de.Piece != i || !errors.Is(err, ErrNoSpace) ||
				!strings.Contains(err.Error(), s.Dir()) {
				t.Fatalf("piece %d: error %q is not a *DiskError naming the store, the piece and ErrNoSpace", i, err)
			}
			t.Logf("disk full at piece %d: %v", i, err)
			full = i
			break
		}
	}
	if full < 0 {
		t.Fatal("the 1 MiB tmpfs never filled up")
	}
	if s.Has(full) {
		t.Fatalf("piece %d present after a failed write", full)
	}
	if n, _ := s.Present(); n != full {
		t.Fatalf("%d pieces present, want the %d written before the disk filled", n, full)
	}
	checkPresentData(t, s, tt)
	// Still full: a block write fails the same way and loses nothing.
	if err := s.WriteBlock(full+1, 0, tt.piece(full + 1)[:BlockSize]); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteBlock on a full disk: %v", err)
	}
	checkPresentData(t, s, tt)

	// Completely full: every way bytes reach the data file fails with
	// ENOSPC, and what was staged is no longer counted.
	filler2 := filepath.Join(root, "filler2")
	fillUp(t, filler2)
	next := full + 2 // full+1 has a block staged above
	b0 := blocksOf(tt, next)[0]
	enospc := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "piece") {
			t.Fatalf("%s on a full disk: %v, want ENOSPC naming the piece", what, err)
		}
	}
	if err := s.WriteBlock(next, 0, b0.data); err != nil { // buffered
		t.Fatal(err)
	}
	if chunk < pl {
		// The next block fills the buffer, which goes out.
		enospc("WriteBlock filling a buffer", s.WriteBlock(next, BlockSize, blocksOf(tt, next)[1].data))
		if err := s.WriteBlock(next, 0, b0.data); err != nil {
			t.Fatal(err)
		}
	}
	// Rewriting buffered bytes puts the buffer out first.
	enospc("WriteBlock over a buffered block", s.WriteBlock(next, 0, b0.data))
	if n, _ := s.Staged(next); n != 0 {
		t.Fatalf("%d blocks of piece %d still staged after failed writes", n, next)
	}
	enospc("WritePiece", s.WritePiece(next, tt.piece(next)))
	last := tt.info.NumPieces() - 1
	for _, b := range blocksOf(tt, last)[:2] {
		if err := s.WriteBlock(last, b.begin, b.data); err != nil && chunk >= pl {
			t.Fatalf("WriteBlock into a buffer: %v", err)
		}
	}
	if chunk >= pl {
		// Everything was buffered: FinishPiece writes it once verified.
		for _, b := range blocksOf(tt, last)[2:] {
			if err := s.WriteBlock(last, b.begin, b.data); err != nil {
				t.Fatal(err)
			}
		}
		enospc("FinishPiece", s.FinishPiece(last))
	}
	if s.Has(next) || s.Has(last) {
		t.Fatal("a piece is present after failed writes")
	}
	if n, _ := s.Present(); n != full {
		t.Fatalf("%d pieces present, want %d", n, full)
	}
	checkPresentData(t, s, tt)

	// Space comes back: the store carries on.
	if err := os.Remove(filler2); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := full; i < full+3; i++ {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatalf("WritePiece(%d) after space returned: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, root, tt, Config{})
	if s.Verifying() {
		t.Fatal("store not trusted after a clean close")
	}
	if n, _ := s.Present(); n != full+3 {
		t.Fatalf("%d pieces present after reopen, want %d", n, full+3)
	}
	checkPresentData(t, s, tt)
}

// fillUp writes path until the filesystem is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for {
		if _, err := f.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestEvictOnFullDisk fills the filesystem of one store and makes a store
// elsewhere, sharing its budget, evict its pieces: the state that no longer
// claims them must be written although the disk is full, so that their
// space comes back.
func TestEvictOnFullDisk(t *testing.T) {
	small := mountTmpfs(t, "4m")
	rng := rand.New(rand.NewPCG(25, 26))
	const pl = 4 * BlockSize
	full, busy := genTorrent(rng, pl, 8*pl), genTorrent(rng, pl, 16*pl)
	b := NewBudget(8 * pl)
	sf := openT(t, small, full, Config{Budget: b})
	writeAll(t, sf, full)
	if err := sf.Sync(); err != nil {
		t.Fatal(err)
	}
	fillUp(t, filepath.Join(small, "filler"))
	data := filepath.Join(sf.Dir(), dataName)
	before := diskUsage(t, data)

	sb := openT(t, t.TempDir(), busy, Config{Budget: b})
	for i := range 4 {
		if err := sb.WritePiece(i, busy.piece(i)); err != nil {
			t.Fatal(err)
		}
	}
	if ev := sf.TakeEvicted(); len(ev) != 4 {
		t.Fatalf("evicted %v from the store on the full disk, want 4 pieces", ev)
	}
	if err := sf.Sync(); err != nil {
		t.Fatalf("Sync on a full disk: %v", err)
	}
	if after := diskUsage(t, data); after > before-4*pl {
		t.Fatalf("data file takes %d bytes after evicting 4 pieces, %d before", after, before)
	}
	// The state on disk agrees: a reopen trusts exactly what is present.
	want := fmt.Sprint(sf.Bitfield())
	if err := sf.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	s2 := openT(t, small, full, Config{})
	if s2.Verifying() {
		t.Fatal("state not trusted after an in-place write")
	}
	if got := fmt.Sprint(s2.Bitfield()); got != want {
		t.Fatalf("reopened with %s, want %s", got, want)
	}
	checkPresentData(t, s2, full)
}
