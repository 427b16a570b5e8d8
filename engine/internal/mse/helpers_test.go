package mse

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
)

// Fixed randomness for handshakes whose bytes a test builds by hand: the
// receiver (B) and initiator (A) draw their keys and pads from these seeds.
var (
	seedA = [32]byte{'a', 's', 'w', 'a', 'r', 'm', 'f', 's'}
	seedB = [32]byte{'b', 's', 'w', 'a', 'r', 'm', 'f', 's'}
	// testSKey is the info hash of the torrent the test peers talk about.
	testSKey = [20]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
)

func detRand(seed [32]byte) io.Reader { return rand.NewChaCha8(seed) }

// detKey returns the key pair a handshake drawing from detRand(seed) makes
// (the key is its first draw).
func detKey(t testing.TB, seed [32]byte) keyPair {
	t.Helper()
	k, err := newKeyPair(detRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// lookupOnly is a receiver's lookup that knows one torrent.
func lookupOnly(skey [20]byte) func([20]byte) ([20]byte, bool) {
	want := SKeyHash(skey)
	return func(req2 [20]byte) ([20]byte, bool) {
		if req2 != want {
			return [20]byte{}, false
		}
		return skey, true
	}
}

// fakeConn reads from a fixed input and records what is written.
type fakeConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// step3 describes what a hand-built initiator sends.
type step3 struct {
	pub      []byte // Ya; nil means side A's real key
	padA     int
	skey     [20]byte
	vc       [8]byte
	provide  Method
	padC     int
	ia       []byte
	after    []byte // payload after IA (encrypted with keyA when rc4 is true)
	rc4After bool
}

// buildInitiator returns the bytes side A sends (steps 1, 3 and maybe 5)
// to a receiver drawing from detRand(seedB).
func buildInitiator(t testing.TB, o step3) []byte {
	t.Helper()
	a, b := detKey(t, seedA), detKey(t, seedB)
	s, err := a.secret(b.pub[:])
	if err != nil {
		t.Fatal(err)
	}
	pub := o.pub
	if pub == nil {
		pub = a.pub[:]
	}
	out := append([]byte(nil), pub...)
	out = append(out, bytes.Repeat([]byte{0xa5}, o.padA)...)
	req1 := hash([]byte("req1"), s[:])
	req2 := SKeyHash(o.skey)
	req3 := hash([]byte("req3"), s[:])
	out = append(out, req1[:]...)
	for i := range req2 {
		out = append(out, req2[i]^req3[i])
	}
	start := len(out)
	out = append(out, o.vc[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(o.provide))
	out = binary.BigEndian.AppendUint16(out, uint16(o.padC))
	out = append(out, make([]byte, o.padC)...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(o.ia)))
	out = append(out, o.ia...)
	enc := newCipher("keyA", &s, o.skey)
	if o.rc4After {
		out = append(out, o.after...)
		enc.XORKeyStream(out[start:], out[start:])
	} else {
		enc.XORKeyStream(out[start:], out[start:])
		out = append(out, o.after...)
	}
	return out
}

// step4 describes what a hand-built receiver answers.
type step4 struct {
	padB   int
	vc     [8]byte
	sel    Method
	padD   int
	after  []byte
	rc4    bool // encrypt after with keyB
	noSync bool // leave out VC and the rest
}

// buildReceiver returns the bytes side B sends (steps 2 and 4) to an
// initiator drawing from detRand(seedA).
func buildReceiver(t testing.TB, o step4) []byte {
	t.Helper()
	a, b := detKey(t, seedA), detKey(t, seedB)
	s, err := b.secret(a.pub[:])
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), b.pub[:]...)
	out = append(out, bytes.Repeat([]byte{0x5a}, o.padB)...)
	if o.noSync {
		return out
	}
	start := len(out)
	out = append(out, o.vc[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(o.sel))
	out = binary.BigEndian.AppendUint16(out, uint16(o.padD))
	out = append(out, make([]byte, o.padD)...)
	enc := newCipher("keyB", &s, testSKey)
	if o.rc4 {
		out = append(out, o.after...)
		enc.XORKeyStream(out[start:], out[start:])
	} else {
		enc.XORKeyStream(out[start:], out[start:])
		out = append(out, o.after...)
	}
	return out
}
