package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomState(rng *rand.Rand, n int) *state {
	st := &state{clean: rng.IntN(2) == 0, pieceLength: 1 + rng.Int64N(1<<24),
		dataSize: rng.Int64N(1 << 40), mtime: rng.Int64(), ctime: rng.Int64(), present: make([]bool, n)}
	for i := range st.infoHash {
		st.infoHash[i] = byte(rng.Uint32())
	}
	for i := range st.present {
		st.present[i] = rng.IntN(2) == 0
	}
	st.verify = rng.IntN(2) == 0
	if rng.IntN(2) == 0 { // a Files layout's state
		st.files, st.dataDir = true, fmt.Sprintf("/data/dir %d", rng.IntN(1000))
		if st.clean {
			for range rng.IntN(5) {
				st.stamps = append(st.stamps, stamp{size: rng.Int64N(1<<40) - 1, mtime: rng.Int64(), ctime: rng.Int64()})
			}
		}
	}
	return st
}

func TestStateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{0, 1, 7, 8, 9, 1000} {
		st := randomState(rng, n)
		b := encodeState(st)
		got, err := decodeState(b)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(encodeState(got), b) || got.clean != st.clean || got.verify != st.verify || got.mtime != st.mtime || got.infoHash != st.infoHash ||
			got.files != st.files || got.dataDir != st.dataDir || !slices.Equal(got.stamps, st.stamps) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		// Any flipped bit or lost byte is caught.
		for i := range b {
			c := append([]byte(nil), b...)
			c[i] ^= 1 << (i % 8)
			if _, err := decodeState(c); !errors.Is(err, ErrBadState) {
				t.Fatalf("n=%d: flipped bit in byte %d accepted", n, i)
			}
		}
		for i := range len(b) {
			if _, err := decodeState(b[:i]); !errors.Is(err, ErrBadState) {
				t.Fatalf("n=%d: truncation to %d bytes accepted", n, i)
			}
		}
	}
}

// FuzzDecodeState checks that decoding arbitrary bytes never panics and that
// whatever decodes re-encodes to the same bytes.
func FuzzDecodeState(f *testing.F) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{0, 3, 16, 100, 5, 9} {
		f.Add(encodeState(randomState(rng, n)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		if !bytes.Equal(encodeState(st), b) {
			t.Fatal("decoded state does not re-encode to the same bytes")
		}
	})
}
