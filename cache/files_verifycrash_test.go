package cache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// verifyCrashTorrent is the torrent whose files the verification crash
// tests' child verifies in place: 60 pieces over files of odd sizes.
func verifyCrashTorrent() *torrent {
	rng := rand.New(rand.NewPCG(45, 45))
	pl := int64(4 * BlockSize)
	return multiTorrent(rng, pl, []int64{7*pl + 5, 20 * pl, 0, 13*pl - 9, 19*pl + 4}, false)
}

// writeFiles writes tt's files under dir as another client would leave
// them, without a store.
func writeFiles(t testing.TB, dir string, tt *torrent) {
	t.Helper()
	for _, f := range tt.info.Files {
		p := filePath(dir, tt, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, tt.payload[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHelperFilesVerifier is the child process of the verification crash
// tests: it opens a Files store over complete files it has no state for,
// so that it verifies them all, with persists only at the store's own
// initiative (no interval, no count reached). With SWARMFS_VERIFY=end it
// prints "n verified" once VerifyDone closes; with SWARMFS_VERIFY=mid it
// persists every 8 pieces and prints "n half" when verification reaches
// the middle piece and a persist claimed pieces; it never finishes that
// piece. Then it waits to be
// killed.
func TestHelperFilesVerifier(t *testing.T) {
	if os.Getenv(helperEnv) != "verify" {
		t.Skip("child process of TestCrashAfterVerify and TestCrashDuringVerify")
	}
	tt := verifyCrashTorrent()
	cfg := Config{Layout: Files{Dir: os.Getenv("SWARMFS_DATA_DIR")}, SyncInterval: time.Hour, SyncPieces: 1 << 20, VerifyWorkers: 2}
	mid := os.Getenv("SWARMFS_VERIFY") == "mid"
	if mid {
		cfg.SyncPieces, cfg.VerifyWorkers = 8, 1
	}
	half := tt.info.NumPieces() / 2
	var s *Store
	opened := make(chan struct{})
	cfg.verifyHook = func(p int) {
		if mid && p == half {
			<-opened
			// The periodic persists during verification claim the
			// first pieces: wait for one (the kill must not race it).
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if st, err := readState(s.statePath); err == nil && slices.Contains(st.present, true) {
					break
				}
			}
			fmt.Println("n half")
			time.Sleep(time.Minute) // killed long before
		}
	}
	s, err := Open(os.Getenv("SWARMFS_CACHE_DIR"), tt.hash, tt.info, cfg)
	if err != nil {
		t.Fatal(err)
	}
	close(opened)
	if !mid {
		<-s.VerifyDone()
		fmt.Println("n verified")
	}
	time.Sleep(time.Minute) // killed long before
	fmt.Println("done")
}

// verifyCrash runs the verifier child over a data directory of complete
// files, SIGKILLs it as soon as it says so, and reopens the store.
// It returns how many pieces the state on disk claimed after the kill.
func verifyCrash(t *testing.T, mode string) (tt *torrent, claimed int, s *Store) {
	tt = verifyCrashTorrent()
	root, data := t.TempDir(), t.TempDir()
	writeFiles(t, data, tt)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFilesVerifier$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=verify", "SWARMFS_VERIFY="+mode,
		"SWARMFS_CACHE_DIR="+root, "SWARMFS_DATA_DIR="+data)
	if line := killMidway(t, cmd, "n ", 0); line == "" || line == "done" {
		t.Fatalf("child ended before it was killed (last line %q)", line)
	}
	states, _ := filepath.Glob(filepath.Join(root, tt.hash.String(), "files-*.state"))
	if len(states) != 1 {
		t.Fatalf("state files %v", states)
	}
	st, err := readState(states[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range st.present {
		if ok {
			claimed++
		}
	}
	return tt, claimed, openFilesT(t, root, data, tt, Config{})
}

// TestCrashAfterVerify kills a store with SIGKILL right after it verified
// a data directory in place: the reopen trusts every piece at once,
// without reading a byte of the files.
func TestCrashAfterVerify(t *testing.T) {
	tt, _, s := verifyCrash(t, "end")
	if s.Verifying() || s.VerifyProgress().Pieces != 0 || s.files.read.Load() != 0 {
		t.Fatalf("reopen after a kill verifies again: %+v, read %d bytes", s.VerifyProgress(), s.files.read.Load())
	}
	if n, _ := s.Present(); n != tt.info.NumPieces() {
		t.Fatalf("reopen after a kill right after verification has %d of %d pieces", n, tt.info.NumPieces())
	}
	checkPresentData(t, s, tt)
}

// TestCrashDuringVerify kills a store with SIGKILL half-way through the
// verification of a data directory: the reopen trusts the pieces the
// persists claimed and verifies the others (not only the pieces of changed
// files), so that every piece is present again and none needs a download.
func TestCrashDuringVerify(t *testing.T) {
	tt, claimed, s := verifyCrash(t, "mid")
	n := tt.info.NumPieces()
	// The child stops inside piece n/2, so pieces 0..n/2-1 may all be
	// verified and saved by then (a loaded run saw all of them claimed).
	if claimed == 0 || claimed > n/2 {
		t.Fatalf("the state after a kill half-way claims %d of %d pieces", claimed, n)
	}
	waitVerified(t, s)
	if vp := s.VerifyProgress(); vp.Pieces != n-claimed {
		t.Fatalf("reopen verified %d pieces, want the %d not claimed", vp.Pieces, n-claimed)
	}
	if got, _ := s.Present(); got != n {
		t.Fatalf("after the reopen's verification %d of %d pieces are present", got, n)
	}
	checkPresentData(t, s, tt)
}

// TestDataFileVerifyResumes takes a copy of a DataFile store (its data
// and state files, as a kill -9 would leave them) half-way through the
// re-verification of a data file touched behind its back: the copy's
// reopen verifies the pieces its state does not claim instead of punching
// them out, and finds every piece.
func TestDataFileVerifyResumes(t *testing.T) {
	tt := genTorrent(rand.New(rand.NewPCG(46, 46)), 4*BlockSize, 40*4*BlockSize+99)
	root := t.TempDir()
	s := openT(t, root, tt, Config{})
	writeAll(t, s, tt)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, tt.hash.String())
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, dataName), later, later); err != nil {
		t.Fatal(err)
	}
	half := tt.info.NumPieces() / 2
	copied := make(chan struct{})
	crashed := t.TempDir()
	var s2 *Store
	opened := make(chan struct{})
	hook := func(p int) {
		if p != half {
			return
		}
		<-opened
		s2.Sync() // the periodic persist, claiming the pieces before half
		cdir := filepath.Join(crashed, tt.hash.String())
		if err := os.MkdirAll(cdir, 0o700); err != nil {
			t.Error(err)
		}
		for _, name := range []string{dataName, stateName} {
			if out, err := exec.Command("cp", "--sparse=always", filepath.Join(dir, name), cdir).CombinedOutput(); err != nil {
				t.Errorf("cp: %v\n%s", err, out)
			}
		}
		close(copied)
	}
	s2 = openT(t, root, tt, Config{VerifyWorkers: 1, verifyHook: hook})
	close(opened)
	select {
	case <-copied:
	case <-time.After(30 * time.Second):
		t.Fatal("verification did not reach the middle")
	}
	st, err := readState(filepath.Join(crashed, tt.hash.String(), stateName))
	if err != nil {
		t.Fatal(err)
	}
	if !st.verify || slices.Index(st.present, false) != half {
		t.Fatalf("the state half-way claims %d pieces, verify flag %v; want the %d before the middle and the flag", slices.Index(st.present, false), st.verify, half)
	}
	c := openT(t, crashed, tt, Config{})
	waitVerified(t, c)
	if vp := c.VerifyProgress(); vp.Pieces != tt.info.NumPieces()-half {
		t.Fatalf("the reopen verified %d pieces, want the %d not claimed", vp.Pieces, tt.info.NumPieces()-half)
	}
	if n, _ := c.Present(); n != tt.info.NumPieces() {
		t.Fatalf("%d of %d pieces present after the reopen", n, tt.info.NumPieces())
	}
	checkPresentData(t, c, tt)
	waitVerified(t, s2)
}
