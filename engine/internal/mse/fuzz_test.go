package mse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets run a handshake whose own randomness is fixed, so that
// the seeds (valid handshakes built for that randomness) lead the fuzzer
// past the synchronisation points into the encrypted fields.

// FuzzReceive feeds arbitrary initiator bytes to the receiving side.
func FuzzReceive(f *testing.F) {
	for _, s := range receiveSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, c := receiveBytes(in, RC4|Plaintext)
		if c.w.Len() > KeyLen+MaxPad+14 {
			t.Fatalf("receiver wrote %d bytes", c.w.Len())
		}
		if r.err != nil {
			if r.rw != nil {
				t.Fatal("stream returned with an error")
			}
			return
		}
		if r.method != RC4 && r.method != Plaintext {
			t.Fatalf("selected %v", r.method)
		}
		if r.skey != testSKey || len(r.ia) > MaxInitialPayload {
			t.Fatalf("skey %x, %d bytes of IA", r.skey, len(r.ia))
		}
		n, err := io.Copy(io.Discard, r.rw)
		if err != nil || n > int64(len(in)) {
			t.Fatalf("payload: %d bytes, %v", n, err)
		}
	})
}

// FuzzInitiate feeds arbitrary receiver bytes to the initiating side.
func FuzzInitiate(f *testing.F) {
	for _, s := range initiateSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, _ := initiateBytes(in, RC4|Plaintext)
		if r.err != nil {
			if r.rw != nil {
				t.Fatal("stream returned with an error")
			}
			return
		}
		if r.method != RC4 && r.method != Plaintext {
			t.Fatalf("selected %v", r.method)
		}
		if _, err := io.Copy(io.Discard, r.rw); err != nil {
			t.Fatal(err)
		}
	})
}

type seed struct {
	name string
	data []byte
	ok   bool // a complete, valid handshake
}

func receiveSeeds(t testing.TB) []seed {
	bt := append([]byte{19}, "BitTorrent protocol"...)
	bt = append(bt, make([]byte, 48)...)
	a := detKey(t, seedA)
	return []seed{
		{"rc4_ia", buildInitiator(t, step3{padA: 17, skey: testSKey, provide: RC4 | Plaintext, ia: bt, after: []byte{0, 0, 0, 1, 2}, rc4After: true}), true},
		{"plaintext", buildInitiator(t, step3{skey: testSKey, provide: Plaintext, padC: 3, after: bt}), true},
		{"bad_vc", buildInitiator(t, step3{padA: 1, skey: testSKey, vc: [8]byte{1}, provide: RC4}), false},
		{"long_padc", buildInitiator(t, step3{skey: testSKey, provide: RC4, padC: MaxPad + 1}), false},
		{"no_sync", append(a.pub[:], make([]byte, 600)...), false},
	}
}

func initiateSeeds(t testing.TB) []seed {
	return []seed{
		{"rc4", buildReceiver(t, step4{padB: 40, sel: RC4, padD: 2, after: []byte("payload"), rc4: true}), true},
		{"plaintext", buildReceiver(t, step4{sel: Plaintext, after: []byte("payload")}), true},
		{"both_selected", buildReceiver(t, step4{sel: RC4 | Plaintext}), false},
		{"long_padd", buildReceiver(t, step4{sel: RC4, padD: MaxPad + 1}), false},
	}
}

// TestFuzzSeeds checks that the seed files under testdata/fuzz are the
// handshakes the seed builders make today (so that they still reach deep
// into the parsers), and that the valid ones are accepted. With
// SWARMFS_WRITE_SEEDS=1 it rewrites them.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string][]seed{"FuzzReceive": receiveSeeds(t), "FuzzInitiate": initiateSeeds(t)} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			var r result
			if target == "FuzzReceive" {
				r, _ = receiveBytes(s.data, RC4|Plaintext)
			} else {
				r, _ = initiateBytes(s.data, RC4|Plaintext)
			}
			if (r.err == nil) != s.ok {
				t.Errorf("%s/%s: err %v, want valid=%v", target, s.name, r.err, s.ok)
			}
			path := filepath.Join(dir, s.name)
			if os.Getenv("SWARMFS_WRITE_SEEDS") != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.data)))
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := readSeed(path)
			if err != nil {
				t.Fatalf("%v (regenerate with SWARMFS_WRITE_SEEDS=1)", err)
			}
			if !bytes.Equal(got, s.data) {
				t.Errorf("%s differs from what the builders make (regenerate with SWARMFS_WRITE_SEEDS=1)", path)
			}
		}
	}
}

// readSeed reads a one-value []byte corpus file.
func readSeed(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		return nil, errors.New(path + ": not a one-value []byte corpus file")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []byte(s), nil
}
