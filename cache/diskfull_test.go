package cache

import (
	"errors"
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

func TestDiskFull(t *testing.T) {
	root := mountTmpfs(t, "1m")
	filler := filepath.Join(root, "filler")
	if err := os.WriteFile(filler, make([]byte, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 20))
	const pl = 64 << 10
	tt := genTorrent(rng, pl, 32*pl) // 2 MiB: does not fit
	s := openT(t, root, tt, Config{})

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

	// Space comes back: the store carries on.
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
