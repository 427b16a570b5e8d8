package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func writeAll(t testing.TB, s *Store, tt *torrent) {
	t.Helper()
	for i := range tt.info.NumPieces() {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			t.Fatalf("WritePiece(%d): %v", i, err)
		}
	}
}

func TestReopenTrusted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tt := genTorrent(rng, 32<<10, 1<<20+77)
	root := t.TempDir()
	s := openT(t, root, tt, Config{})
	for i := range tt.info.NumPieces() {
		if i%3 != 1 {
			if err := s.WritePiece(i, tt.piece(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := s.Bitfield()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second reopen sees an untouched clean state again
		s = openT(t, root, tt, Config{})
		if s.Verifying() {
			t.Fatalf("round %d: trusted store is re-verifying", round)
		}
		if got := s.Bitfield(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: bitfield after reopen differs", round)
		}
		checkPresentData(t, s, tt)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReopenUntrusted changes the store behind its back in several ways and
// checks that the pieces are re-verified in the background, not trusted.
func TestReopenUntrusted(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	tt := genTorrent(rng, 32<<10, 1<<20)
	np := tt.info.NumPieces()
	cases := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   func(i int) bool
	}{
		{"modified byte", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, dataName), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Same size, and put the old mtime back: ctime still changes.
			fi, _ := f.Stat()
			if _, err := f.WriteAt([]byte{0xAB ^ tt.payload[3*32<<10+5]}, 3*32<<10+5); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(filepath.Join(dir, dataName), fi.ModTime(), fi.ModTime())
		}, func(i int) bool { return i != 3 }},
		{"truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, dataName), 10*32<<10+100); err != nil {
				t.Fatal(err)
			}
		}, func(i int) bool { return i < 10 }},
		{"corrupt state", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, stateName))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			os.WriteFile(filepath.Join(dir, stateName), b, 0o600)
		}, func(int) bool { return true }},
		{"state missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, stateName))
		}, func(int) bool { return true }},
		{"data missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, dataName))
		}, func(int) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := openT(t, root, tt, Config{})
			writeAll(t, s, tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			c.change(t, s.Dir())
			s = openT(t, root, tt, Config{})
			// Nothing is trusted before it verifies again: waiters still work.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if c.want(0) {
				if err := s.Wait(ctx, 0); err != nil {
					t.Fatalf("Wait during re-verification: %v", err)
				}
			}
			waitVerified(t, s)
			if s.Verifying() {
				t.Fatal("Verifying() after VerifyDone")
			}
			for i := range np {
				if s.Has(i) != c.want(i) {
					t.Fatalf("piece %d: Has = %v after re-verification", i, s.Has(i))
				}
			}
			checkPresentData(t, s, tt)
			// The store works normally: fill what is missing, reopen trusted.
			writeAll(t, s, tt)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, root, tt, Config{})
			if s.Verifying() {
				t.Fatal("re-verified store not trusted on the next open")
			}
			if n, _ := s.Present(); n != np {
				t.Fatalf("%d of %d present", n, np)
			}
		})
	}
}

const helperEnv = "SWARMFS_CACHE_HELPER"

// crashTorrent is the torrent the crash-test child writes; parent and child
// derive it from the same seed.
func crashTorrent() *torrent {
	return genTorrent(rand.New(rand.NewPCG(42, 42)), 16<<10, 512*16<<10-300)
}

// TestHelperWriter is the child process of TestCrashRecovery: it writes the
// missing pieces of crashTorrent in a random order (some as blocks, some
// corrupt first), printing after each "w <pieces written> p <pieces
// persisted>" until killed.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("child process of TestCrashRecovery")
	}
	tt := crashTorrent()
	var budget *Budget
	if os.Getenv("SWARMFS_CACHE_BUDGET") == "1" {
		budget = NewBudget(tt.info.TotalLength * 2 / 5)
	}
	s, err := Open(os.Getenv("SWARMFS_CACHE_DIR"), tt.hash, tt.info, Config{Budget: budget, SyncInterval: 20 * time.Millisecond, SyncPieces: 8})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(os.Getenv("SWARMFS_CACHE_CHUNK")); err == nil {
		s.chunk = n // smaller than a piece: WritePiece writes before it knows the hash
	}
	seed, _ := strconv.ParseUint(os.Getenv("SWARMFS_CACHE_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	order := rng.Perm(tt.info.NumPieces())
	written := 0
	for _, i := range order {
		if s.Has(i) {
			continue
		}
		if rng.IntN(2) == 0 {
			if rng.IntN(5) == 0 {
				bad := append([]byte(nil), tt.piece(i)...)
				bad[len(bad)-1] ^= 1
				if err := s.WritePiece(i, bad); !errors.Is(err, ErrHashMismatch) {
					t.Fatalf("WritePiece(corrupt) = %v", err)
				}
			}
			err = s.WritePiece(i, tt.piece(i))
		} else {
			for _, b := range blocksOf(tt, i) {
				data := b.data
				if rng.IntN(10) == 0 {
					data = make([]byte, len(data))
				}
				if err := s.WriteBlock(i, b.begin, data); err != nil {
					t.Fatal(err)
				}
			}
			if err = s.FinishPiece(i); err != nil {
				err = s.WritePiece(i, tt.piece(i))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		written++
		s.mu.Lock()
		p := s.persisted
		s.mu.Unlock()
		fmt.Printf("w %d p %d\n", func() int { n, _ := s.Present(); return n }(), p)
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
	}
	fmt.Println("done")
	s.Close()
}

// TestCrashRecovery kills a writer child with SIGKILL at random moments and
// checks after each kill that every piece the store claims verifies, and
// that no piece reported persisted was forgotten.
func TestCrashRecovery(t *testing.T) {
	for _, withBudget := range []bool{false, true} {
		t.Run(fmt.Sprintf("budget=%v", withBudget), func(t *testing.T) { crashRounds(t, withBudget) })
	}
}

func crashRounds(t *testing.T, withBudget bool) {
	tt := crashTorrent()
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("SWARMFS_CRASH_ROUNDS")); err == nil && n > 0 {
		rounds = n // for longer runs by hand
	}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "SWARMFS_CACHE_DIR="+root,
			fmt.Sprintf("SWARMFS_CACHE_CHUNK=%d", []int{writeChunk, 4 << 10}[round%2]),
			fmt.Sprintf("SWARMFS_CACHE_SEED=%d", rng.Uint64()), fmt.Sprintf("SWARMFS_CACHE_BUDGET=%d", map[bool]int{false: 0, true: 1}[withBudget]))
		line := killMidway(t, cmd, "w ", time.Duration(10+rng.IntN(300))*time.Millisecond)
		s := openT(t, root, tt, Config{})
		if s.Verifying() {
			t.Fatalf("round %d: crashed store not trusted (re-verifying)", round)
		}
		checkPresentData(t, s, tt) // every claimed piece verifies
		have, _ := s.Present()
		if line == "done" {
			t.Logf("round %d: child finished", round)
		} else {
			var w, p int
			if _, err := fmt.Sscanf(line, "w %d p %d", &w, &p); err != nil {
				t.Fatalf("bad child line %q", line)
			}
			t.Logf("round %d: child had %d present, %d persisted; reopened with %d", round, w, p, have)
			if capPieces := int(tt.info.TotalLength * 2 / 5 / tt.info.PieceLength); withBudget && have > capPieces+1 {
				t.Fatalf("round %d: %d pieces present, budget holds %d (+1 being added)", round, have, capPieces)
			}
			if !withBudget && have < p {
				t.Fatalf("round %d: %d pieces present after reopen, child had persisted %d", round, have, p)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
