package metadata

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

func testInfo(size int) ([]byte, [20]byte) {
	r := rand.New(rand.NewPCG(uint64(size), 9))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, sha1.Sum(b)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// serve answers a request for piece i as an honest peer would.
func serve(t *testing.T, info []byte, i int) []byte {
	t.Helper()
	p, err := Piece(info, i)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAssembleParallel(t *testing.T) {
	info, hash := testInfo(3*PieceSize + 100)
	a, err := New[string](hash, len(info))
	if err != nil {
		t.Fatal(err)
	}
	if a.NumPieces() != 4 || a.Size() != len(info) {
		t.Fatalf("pieces %d", a.NumPieces())
	}
	// Two peers take different pieces in parallel.
	got := map[int]string{}
	for _, peer := range []string{"a", "b", "a", "b"} {
		i, ok := a.Next(peer, t0)
		if !ok {
			t.Fatalf("no piece for %s", peer)
		}
		if _, dup := got[i]; dup {
			t.Fatalf("piece %d handed out twice", i)
		}
		got[i] = peer
	}
	if _, ok := a.Next("c", t0); ok {
		t.Fatal("a piece was handed out a second time before any timeout")
	}
	for i := range 4 {
		done, err := a.Add(got[i], i, serve(t, info, i))
		if err != nil {
			t.Fatal(err)
		}
		if done != (i == 3) {
			t.Fatalf("piece %d: done=%v", i, done)
		}
	}
	if !a.Done() || !bytes.Equal(a.Bytes(), info) || a.Have() != 4 {
		t.Fatal("assembled bytes differ")
	}
	if _, ok := a.Next("a", t0); ok {
		t.Fatal("Next after done")
	}
}

func TestRejectTimeoutAndGone(t *testing.T) {
	info, hash := testInfo(2 * PieceSize)
	a, _ := New[string](hash, len(info))
	a.Timeout = time.Minute
	i, _ := a.Next("a", t0)
	if _, ok := a.Next("b", t0); !ok {
		t.Fatal("no piece for b")
	}
	// a rejects: the piece goes to c, and is not offered to a again soon.
	a.Reject("a", i)
	if k, ok := a.Next("c", t0); !ok || k != i {
		t.Fatalf("after reject: %d %v, want %d", k, ok, i)
	}
	// Half a minute later a gets nothing: it rejected i, and j is not
	// stale yet. After the timeout the refusal has expired.
	if k, ok := a.Next("a", t0.Add(30*time.Second)); ok {
		t.Fatalf("a got piece %d within the timeout", k)
	}
	if _, ok := a.Next("a", t0.Add(2*time.Minute)); !ok {
		t.Fatal("nothing for a after the timeout")
	}
	// b goes away: its piece is free at once.
	a2, _ := New[string](hash, len(info))
	x, _ := a2.Next("b", t0)
	a2.PeerGone("b")
	if y, ok := a2.Next("d", t0); !ok || y != x {
		t.Fatalf("after PeerGone: %d %v", y, ok)
	}
	// Timeout: a request older than Timeout is offered to another peer,
	// and a late answer from the first still counts.
	info1, hash1 := testInfo(PieceSize)
	a3, _ := New[string](hash1, len(info1))
	a3.Timeout = 10 * time.Second
	p, _ := a3.Next("slow", t0)
	if _, ok := a3.Next("fast", t0.Add(5*time.Second)); ok {
		t.Fatal("re-requested before the timeout")
	}
	if q, ok := a3.Next("fast", t0.Add(11*time.Second)); !ok || q != p {
		t.Fatal("not re-requested after the timeout")
	}
	done, err := a3.Add("slow", p, info1)
	if !done || err != nil {
		t.Fatalf("late answer: %v %v", done, err)
	}
}

func TestAddErrors(t *testing.T) {
	info, hash := testInfo(PieceSize + 10)
	a, _ := New[string](hash, len(info))
	if _, err := a.Add("a", 0, info[:PieceSize]); !errors.Is(err, ErrUnrequested) {
		t.Errorf("unrequested: %v", err)
	}
	i, _ := a.Next("a", t0)
	j, _ := a.Next("a", t0)
	if i != 0 || j != 1 {
		t.Fatalf("order %d %d", i, j)
	}
	if _, err := a.Add("a", 1, info[PieceSize:]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add("a", 0, info[:100]); !errors.Is(err, ErrPieceSize) {
		t.Errorf("short piece: %v", err)
	}
	if _, err := a.Add("a", 5, info[:10]); !errors.Is(err, ErrPieceSize) {
		t.Errorf("index out of range: %v", err)
	}
	if _, err := a.Add("b", 0, info[:PieceSize]); !errors.Is(err, ErrUnrequested) {
		t.Errorf("other peer: %v", err)
	}
	for _, size := range []int{0, -1, wire.MaxMetadataSize + 1} {
		if _, err := New[string](hash, size); !errors.Is(err, ErrSize) {
			t.Errorf("New(%d): %v", size, err)
		}
	}
	if _, err := Piece(info, 2); !errors.Is(err, ErrPieceSize) {
		t.Errorf("Piece out of range: %v", err)
	}
	if p, _ := Piece(info, 1); len(p) != 10 {
		t.Errorf("last piece %d bytes", len(p))
	}
}

// A lying peer alone: it is named guilty and banned; an honest peer then
// completes the metadata.
func TestLyingPeerAlone(t *testing.T) {
	info, hash := testInfo(2*PieceSize + 5)
	a, _ := New[string](hash, len(info))
	lie := bytes.Clone(info)
	lie[PieceSize+3] ^= 1
	var err error
	for range a.NumPieces() {
		i, ok := a.Next("liar", t0)
		if !ok {
			t.Fatal("liar got no piece")
		}
		_, err = a.Add("liar", i, serve(t, lie, i))
	}
	var he *HashMismatchError[string]
	if !errors.As(err, &he) || !errors.Is(err, ErrHashMismatch) || !he.Guilty || len(he.Peers) != 1 || he.Peers[0] != "liar" {
		t.Fatalf("got %v", err)
	}
	if !a.Banned("liar") || a.Have() != 0 {
		t.Fatal("liar not banned or pieces kept")
	}
	if _, ok := a.Next("liar", t0); ok {
		t.Fatal("banned peer asked again")
	}
	fetchAll(t, a, "honest", info)
}

// A lying peer among honest ones: the first mismatch names all
// contributors without a verdict, then the Assembler fetches from one peer
// at a time, the liar is caught alone, and an honest peer completes it.
func TestLyingPeerAmongHonest(t *testing.T) {
	info, hash := testInfo(4 * PieceSize)
	lie := bytes.Clone(info)
	for i := range lie {
		lie[i] ^= 0x55
	}
	src := map[string][]byte{"liar": lie, "h1": info, "h2": info}
	a, _ := New[string](hash, len(info))
	var err error
	for _, peer := range []string{"liar", "h1", "h2", "liar"} {
		i, ok := a.Next(peer, t0)
		if !ok {
			t.Fatalf("no piece for %s", peer)
		}
		if _, err = a.Add(peer, i, serve(t, src[peer], i)); err != nil {
			break
		}
	}
	var he *HashMismatchError[string]
	if !errors.As(err, &he) || he.Guilty || len(he.Peers) != 3 {
		t.Fatalf("first mismatch: %v", err)
	}
	// Now one source at a time: the liar is asked first and gets every
	// piece; others wait.
	now := t0.Add(time.Second)
	for {
		i, ok := a.Next("liar", now)
		if !ok {
			break
		}
		if _, ok := a.Next("h1", now); ok {
			t.Fatal("second source while the first is active")
		}
		if _, err = a.Add("liar", i, serve(t, lie, i)); err != nil {
			break
		}
	}
	if !errors.As(err, &he) || !he.Guilty || he.Peers[0] != "liar" {
		t.Fatalf("second mismatch: %v", err)
	}
	fetchAll(t, a, "h2", info)
}

func TestSourceTakeover(t *testing.T) {
	info, hash := testInfo(2 * PieceSize)
	a, _ := New[string](hash, len(info))
	a.Timeout = 10 * time.Second
	a.single = true // as after a mismatch with several contributors
	i, _ := a.Next("quiet", t0)
	if _, err := a.Add("quiet", i, serve(t, info, i)); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Next("other", t0.Add(5*time.Second)); ok {
		t.Fatal("took over before the timeout")
	}
	// The source goes quiet for the timeout: another peer starts over.
	if _, ok := a.Next("other", t0.Add(11*time.Second)); !ok || a.Have() != 0 {
		t.Fatalf("takeover: have %d", a.Have())
	}
	// A source that rejects loses its role and is not source again
	// within the timeout.
	a.Reject("other", 0)
	if _, ok := a.Next("other", t0.Add(12*time.Second)); ok {
		t.Fatal("rejecting peer became source again")
	}
	fetchAll(t, a, "third", info)
}

func fetchAll(t *testing.T, a *Assembler[string], peer string, info []byte) {
	t.Helper()
	now := t0.Add(time.Hour)
	for range a.NumPieces() + 1 {
		i, ok := a.Next(peer, now)
		if !ok {
			break
		}
		done, err := a.Add(peer, i, serve(t, info, i))
		if err != nil {
			t.Fatal(err)
		}
		if done {
			if !bytes.Equal(a.Bytes(), info) {
				t.Fatal("wrong bytes")
			}
			return
		}
	}
	t.Fatalf("%s could not complete the metadata (have %d of %d)", peer, a.Have(), a.NumPieces())
}

// TestAssembleRandomized runs many random schedules of honest peers, one
// liar, rejects, departures and clock jumps, and checks that the metadata
// always completes with the right bytes and that no honest peer is ever
// found guilty.
func TestAssembleRandomized(t *testing.T) {
	info, hash := testInfo(5*PieceSize + 123)
	lie := bytes.Clone(info)
	lie[3*PieceSize+1] ^= 0xff
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 77))
		a, _ := New[int](hash, len(info))
		a.Timeout = 10 * time.Second
		now := t0
		type req struct{ peer, piece int }
		var outstanding []req
		peers := 4 // peer 0 lies
		for step := 0; !a.Done(); step++ {
			if step > 5000 {
				t.Fatalf("seed %d: not done after %d steps (have %d)", seed, step, a.Have())
			}
			switch op := r.IntN(10); {
			case op < 4: // a random peer asks for work
				p := r.IntN(peers)
				if i, ok := a.Next(p, now); ok {
					outstanding = append(outstanding, req{p, i})
				}
			case op < 8 && len(outstanding) > 0: // an answer arrives
				k := r.IntN(len(outstanding))
				q := outstanding[k]
				outstanding = append(outstanding[:k], outstanding[k+1:]...)
				src := info
				if q.peer == 0 {
					src = lie
				}
				if q.peer != 0 && r.IntN(8) == 0 {
					a.Reject(q.peer, q.piece)
					continue
				}
				_, err := a.Add(q.peer, q.piece, serve(t, src, q.piece))
				var he *HashMismatchError[int]
				switch {
				case errors.As(err, &he):
					if he.Guilty && he.Peers[0] != 0 {
						t.Fatalf("seed %d: honest peer %d found guilty", seed, he.Peers[0])
					}
				case err != nil && !errors.Is(err, ErrUnrequested):
					t.Fatalf("seed %d: %v", seed, err)
				}
				// As the engine does: give the peer its next piece at once.
				if i, ok := a.Next(q.peer, now); ok {
					outstanding = append(outstanding, req{q.peer, i})
				}
			case op == 8: // time passes, now and then a long stall
				d := time.Duration(r.IntN(3000)) * time.Millisecond
				if r.IntN(20) == 0 {
					d = 15 * time.Second
				}
				now = now.Add(d)
			default: // a peer leaves and a new one comes
				if r.IntN(4) == 0 {
					p := 1 + r.IntN(peers-1)
					a.PeerGone(p)
					kept := outstanding[:0]
					for _, q := range outstanding {
						if q.peer != p {
							kept = append(kept, q)
						}
					}
					outstanding = kept
				}
				if peers < 12 {
					peers++
				}
			}
		}
		if !bytes.Equal(a.Bytes(), info) {
			t.Fatalf("seed %d: wrong bytes", seed)
		}
	}
}
