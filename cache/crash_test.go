package cache

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// evictTorrent is the torrent the eviction crash test's child writes: 128
// pieces of four blocks, under a budget of 12 pieces.
func evictTorrent() *torrent {
	return genTorrent(rand.New(rand.NewPCG(43, 43)), 4*BlockSize, 128*4*BlockSize)
}

const evictBudgetPieces = 12

// TestHelperEvictWriter is the child process of TestCrashEvictRefetch. Over
// a store whose budget holds a tenth of the torrent it writes random
// pieces, so that most are evicted and fetched again while the state on
// disk may still claim them, and it often writes them wrong first: a
// corrupt block that a good one overwrites before FinishPiece, a corrupt
// block that fails the hash (its piece is discarded, punched out) before
// the piece is written again, or a corrupt WritePiece (written in chunks
// before its hash is known, then punched out). It prints "n <ops>" after
// each piece until it is killed, or "done" after its bounded run.
func TestHelperEvictWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "evict" {
		t.Skip("child process of TestCrashEvictRefetch")
	}
	tt := evictTorrent()
	pl := tt.info.PieceLength
	budget := NewBudget(evictBudgetPieces * pl)
	s, err := Open(os.Getenv("SWARMFS_CACHE_DIR"), tt.hash, tt.info, Config{Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	s.chunk = BlockSize // WritePiece writes before it knows the hash
	seed, _ := strconv.ParseUint(os.Getenv("SWARMFS_CACHE_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 2))
	corrupt := func(b []byte) []byte {
		bad := append([]byte(nil), b...)
		bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
		return bad
	}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 200000 && time.Now().Before(deadline); n++ {
		i := rng.IntN(tt.info.NumPieces())
		if s.Has(i) {
			continue
		}
		bs := blocksOf(tt, i)
		switch rng.IntN(4) {
		case 0: // a corrupt block, overwritten by the good one
			k := rng.IntN(len(bs))
			if err := s.WriteBlock(i, bs[k].begin, corrupt(bs[k].data)); err != nil {
				t.Fatal(err)
			}
		case 1: // a corrupt piece by blocks: discarded
			k := rng.IntN(len(bs))
			for j, b := range bs {
				data := b.data
				if j == k {
					data = corrupt(data)
				}
				if err := s.WriteBlock(i, b.begin, data); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.FinishPiece(i); !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("FinishPiece(%d) of a corrupt piece = %v", i, err)
			}
		case 2: // a corrupt whole piece: discarded
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

// TestCrashEvictRefetch kills the child above with SIGKILL at random
// moments, 40 times over the same store, and after each kill reopens the
// store offline and checks, byte for byte, every piece its state claims:
// a piece evicted and then rewritten (or discarded) must never be claimed
// by the state on disk while its bytes change.
func TestCrashEvictRefetch(t *testing.T) {
	tt := evictTorrent()
	root := t.TempDir()
	claimedTotal := 0
	crashLoop(t, 40, "TestHelperEvictWriter", []string{helperEnv + "=evict", "SWARMFS_CACHE_DIR=" + root},
		func(round int, line string) {
			s := openT(t, root, tt, Config{})
			if s.Verifying() {
				t.Fatalf("round %d: crashed store not trusted (re-verifying)", round)
			}
			have, _ := s.Present()
			claimedTotal += have
			t.Logf("round %d: killed after %q; state claims %d pieces", round, line, have)
			checkPresentData(t, s, tt) // every claimed piece, byte for byte
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	if claimedTotal == 0 {
		t.Fatal("no reopened state claimed any piece: the test checked nothing")
	}
}

// crashLoop runs the test function child of this binary as a writer, with
// env added and SWARMFS_CACHE_SEED set, rounds times (SWARMFS_CRASH_ROUNDS
// overrides), kills it with SIGKILL at a random moment after its first
// line "n ...", and calls check with the last such line it printed.
func crashLoop(t *testing.T, rounds int, child string, env []string, check func(round int, line string)) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	if n, err := strconv.Atoi(os.Getenv("SWARMFS_CRASH_ROUNDS")); err == nil && n > 0 {
		rounds = n // for longer runs by hand
	}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
		cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("SWARMFS_CACHE_SEED=%d", rng.Uint64()))
		line := killMidway(t, cmd, "n ", time.Duration(20+rng.IntN(600))*time.Millisecond)
		if line == "" || line == "done" {
			t.Fatalf("round %d: child ended before it was killed (last line %q)", round, line)
		}
		check(round, line)
	}
}

// killMidway starts cmd (a re-exec'd test child), waits for its first
// progress line (one starting with prefix, or "done"), SIGKILLs it after
// pause and returns the last such line it wrote; "" if none.
func killMidway(t *testing.T, cmd *exec.Cmd, prefix string, pause time.Duration) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var mu sync.Mutex
	var last string
	first := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		once := sync.OnceFunc(func() { close(first) })
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, prefix) || line == "done" {
				mu.Lock()
				last = line
				mu.Unlock()
				once()
			}
		}
		once()
	}()
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("child wrote nothing")
	}
	time.Sleep(pause)
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-scanned:
	case <-time.After(10 * time.Second):
		t.Fatal("child output did not end after SIGKILL")
	}
	cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return last
}
