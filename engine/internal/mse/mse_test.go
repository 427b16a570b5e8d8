package mse

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// recorder keeps a copy of every byte written through it.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.out.Bytes()...)
}

type result struct {
	rw     io.ReadWriter
	method Method
	skey   [20]byte
	ia     []byte
	err    error
}

// pipePair runs our initiator against our receiver over net.Pipe, with a
// deadline on both ends.
func pipePair(t *testing.T, ia []byte, provide, accept, prefer Method, lookup func([20]byte) ([20]byte, bool)) (a, b result, ca, cb *recorder) {
	t.Helper()
	p1, p2 := net.Pipe()
	t.Cleanup(func() { p1.Close(); p2.Close() })
	deadline := time.Now().Add(10 * time.Second)
	p1.SetDeadline(deadline)
	p2.SetDeadline(deadline)
	ca, cb = &recorder{Conn: p1}, &recorder{Conn: p2}
	done := make(chan result, 1)
	go func() {
		rw, skey, m, gotIA, err := ReceiveHandshake(cb, lookup, accept, prefer)
		if err != nil {
			p2.Close() // as a caller would: the initiator then fails too
		}
		done <- result{rw: rw, method: m, skey: skey, ia: gotIA, err: err}
	}()
	rw, m, err := InitiateHandshake(ca, testSKey, ia, provide)
	if err != nil {
		p1.Close()
	}
	a = result{rw: rw, method: m, err: err}
	b = <-done
	return a, b, ca, cb
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends payloads both ways at once and checks them.
func exchange(t *testing.T, a, b io.ReadWriter, n int) (fromA, fromB []byte) {
	t.Helper()
	fromA, fromB = randBytes(t, n), randBytes(t, n)
	keepA := append([]byte(nil), fromA...)
	errs := make(chan error, 2)
	go func() { _, err := a.Write(fromA); errs <- err }()
	go func() { _, err := b.Write(fromB); errs <- err }()
	gotB := make([]byte, n)
	gotA := make([]byte, n)
	var wg sync.WaitGroup
	wg.Add(2)
	var errA, errB error
	go func() { defer wg.Done(); _, errB = io.ReadFull(b, gotB) }()
	go func() { defer wg.Done(); _, errA = io.ReadFull(a, gotA) }()
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if errA != nil || errB != nil {
		t.Fatalf("read: %v / %v", errA, errB)
	}
	if !bytes.Equal(gotB, fromA) || !bytes.Equal(gotA, fromB) {
		t.Fatal("payload corrupted in transit")
	}
	if !bytes.Equal(fromA, keepA) {
		t.Fatal("Write modified the caller's buffer")
	}
	return fromA, fromB
}

func TestRoundTrip(t *testing.T) {
	bt := append([]byte{19}, "BitTorrent protocol"...)
	bt = append(bt, make([]byte, 48)...)
	for _, tc := range []struct {
		name                    string
		provide, accept, prefer Method
		ia                      []byte
		want                    Method
	}{
		{"both-both-rc4", RC4 | Plaintext, RC4 | Plaintext, RC4, bt, RC4},
		{"both-both-plain", RC4 | Plaintext, RC4 | Plaintext, Plaintext, bt, Plaintext},
		{"rc4-only", RC4, RC4 | Plaintext, Plaintext, bt, RC4},
		{"plain-only", Plaintext, RC4 | Plaintext, RC4, bt, Plaintext},
		{"receiver-plain", RC4 | Plaintext, Plaintext, RC4, nil, Plaintext},
		{"max-ia", RC4, RC4 | Plaintext, RC4, randBytes(t, MaxInitialPayload), RC4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, ca, _ := pipePair(t, tc.ia, tc.provide, tc.accept, tc.prefer, lookupOnly(testSKey))
			if a.err != nil || b.err != nil {
				t.Fatalf("initiator: %v; receiver: %v", a.err, b.err)
			}
			if a.method != tc.want || b.method != tc.want {
				t.Fatalf("methods %v / %v, want %v", a.method, b.method, tc.want)
			}
			if b.skey != testSKey || !bytes.Equal(b.ia, tc.ia) {
				t.Fatalf("receiver got skey %x and %d bytes of IA, want %x and %d", b.skey, len(b.ia), testSKey, len(tc.ia))
			}
			if len(tc.ia) > 0 && bytes.Contains(ca.written(), tc.ia[:20]) {
				t.Fatal("IA went over the wire in the clear")
			}
			before := len(ca.written())
			// More than maxChunk in one Write.
			fromA, _ := exchange(t, a.rw, b.rw, 3*maxChunk+17)
			wire := ca.written()[before:]
			if len(wire) != len(fromA) {
				t.Fatalf("%d bytes on the wire for %d of payload", len(wire), len(fromA))
			}
			if clear := bytes.Equal(wire, fromA); clear != (tc.want == Plaintext) {
				t.Fatalf("method %v but payload in the clear = %v", tc.want, clear)
			}
		})
	}
}

func TestNoCommonMethod(t *testing.T) {
	a, b, _, _ := pipePair(t, nil, RC4, Plaintext, Plaintext, lookupOnly(testSKey))
	if !errors.Is(b.err, ErrNoMethod) {
		t.Fatalf("receiver: %v, want ErrNoMethod", b.err)
	}
	if a.err == nil {
		t.Fatal("initiator succeeded although the receiver gave up")
	}
}

func TestWrongSKey(t *testing.T) {
	other := testSKey
	other[0] ^= 0xff
	var asked [][20]byte
	lookup := func(req2 [20]byte) ([20]byte, bool) {
		asked = append(asked, req2)
		return lookupOnly(other)(req2)
	}
	a, b, _, _ := pipePair(t, []byte("hello"), RC4|Plaintext, RC4|Plaintext, RC4, lookup)
	if !errors.Is(b.err, ErrUnknownSKey) {
		t.Fatalf("receiver: %v, want ErrUnknownSKey", b.err)
	}
	if a.err == nil {
		t.Fatal("initiator succeeded against a receiver that does not know the torrent")
	}
	if len(asked) != 1 || asked[0] != SKeyHash(testSKey) {
		t.Fatalf("lookup asked for %x, want once %x", asked, SKeyHash(testSKey))
	}
}

func TestBadMethodSets(t *testing.T) {
	c := &fakeConn{r: bytes.NewReader(nil)}
	for _, m := range []Method{0, 4, RC4 | 8} {
		if _, _, err := InitiateHandshake(c, testSKey, nil, m); err == nil {
			t.Errorf("initiate providing %v: no error", m)
		}
		if _, _, _, _, err := ReceiveHandshake(c, lookupOnly(testSKey), m, RC4); err == nil {
			t.Errorf("receive accepting %v: no error", m)
		}
		if _, _, _, _, err := ReceiveHandshake(c, lookupOnly(testSKey), RC4, m); err == nil {
			t.Errorf("receive preferring %v: no error", m)
		}
	}
	if _, _, err := InitiateHandshake(c, testSKey, make([]byte, MaxInitialPayload+1), RC4); err == nil {
		t.Error("initiate with an oversized IA: no error")
	}
	if c.w.Len() != 0 {
		t.Errorf("wrote %d bytes before refusing the arguments", c.w.Len())
	}
}

// receiveBytes runs the receiver (randomness seedB) on a hand-built input.
func receiveBytes(in []byte, accept Method) (result, *fakeConn) {
	c := &fakeConn{r: bytes.NewReader(in)}
	rw, skey, m, ia, err := receive(c, lookupOnly(testSKey), accept, RC4, detRand(seedB))
	return result{rw: rw, skey: skey, method: m, ia: ia, err: err}, c
}

func TestReceiveCrafted(t *testing.T) {
	good := step3{padA: 100, skey: testSKey, provide: RC4 | Plaintext, padC: 7, ia: []byte("initial"), after: []byte("payload"), rc4After: true}
	p1 := new(big.Int).Sub(prime, big.NewInt(1))
	for _, tc := range []struct {
		name   string
		mod    func(*step3)
		accept Method
		want   error // nil: success
	}{
		{"good", func(*step3) {}, RC4 | Plaintext, nil},
		{"plaintext", func(o *step3) { o.provide = Plaintext; o.rc4After = false }, RC4 | Plaintext, nil},
		{"max pads", func(o *step3) { o.padA, o.padC = MaxPad, MaxPad }, RC4, nil},
		{"padA too long", func(o *step3) { o.padA = MaxPad + 1 }, RC4, ErrHandshake},
		{"padC too long", func(o *step3) { o.padC = MaxPad + 1 }, RC4, ErrHandshake},
		{"bad VC", func(o *step3) { o.vc[3] = 1 }, RC4, ErrHandshake},
		{"wrong SKEY", func(o *step3) { o.skey[19]++ }, RC4, ErrUnknownSKey},
		{"provides nothing", func(o *step3) { o.provide = 0 }, RC4 | Plaintext, ErrNoMethod},
		{"unknown method only", func(o *step3) { o.provide = 0x10 }, RC4 | Plaintext, ErrNoMethod},
		{"public key 0", func(o *step3) { o.pub = make([]byte, KeyLen) }, RC4, ErrHandshake},
		{"public key 1", func(o *step3) { o.pub = big.NewInt(1).FillBytes(make([]byte, KeyLen)) }, RC4, ErrHandshake},
		{"public key P-1", func(o *step3) { o.pub = p1.FillBytes(make([]byte, KeyLen)) }, RC4, ErrHandshake},
		{"public key 0xff..", func(o *step3) { o.pub = bytes.Repeat([]byte{0xff}, KeyLen) }, RC4, ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mod(&o)
			r, c := receiveBytes(buildInitiator(t, o), tc.accept)
			if tc.want != nil {
				if !errors.Is(r.err, tc.want) {
					t.Fatalf("err %v, want %v", r.err, tc.want)
				}
				if c.w.Len() > KeyLen+MaxPad {
					t.Fatalf("answered %d bytes to a bad handshake", c.w.Len())
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.skey != testSKey || !bytes.Equal(r.ia, o.ia) {
				t.Fatalf("skey %x ia %q", r.skey, r.ia)
			}
			got, err := io.ReadAll(r.rw)
			if err != nil || string(got) != "payload" {
				t.Fatalf("payload %q, %v", got, err)
			}
		})
	}
}

func TestReceiveTruncated(t *testing.T) {
	in := buildInitiator(t, step3{padA: 33, skey: testSKey, provide: RC4, padC: 5, ia: []byte("0123456789")})
	for n := range len(in) {
		r, _ := receiveBytes(in[:n], RC4)
		if !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Fatalf("input cut at %d of %d: err %v, want io.ErrUnexpectedEOF", n, len(in), r.err)
		}
	}
	if r, _ := receiveBytes(in, RC4); r.err != nil {
		t.Fatalf("whole input: %v", r.err)
	}
}

// initiateBytes runs the initiator (randomness seedA) on a hand-built
// answer.
func initiateBytes(in []byte, provide Method) (result, *fakeConn) {
	c := &fakeConn{r: bytes.NewReader(in)}
	rw, m, err := initiate(c, testSKey, []byte("ia"), provide, detRand(seedA))
	return result{rw: rw, method: m, err: err}, c
}

func TestInitiateCrafted(t *testing.T) {
	good := step4{padB: 200, sel: RC4, padD: 3, after: []byte("answer"), rc4: true}
	for _, tc := range []struct {
		name    string
		mod     func(*step4)
		provide Method
		want    error
	}{
		{"good", func(*step4) {}, RC4 | Plaintext, nil},
		{"plaintext", func(o *step4) { o.sel = Plaintext; o.rc4 = false }, RC4 | Plaintext, nil},
		{"max pads", func(o *step4) { o.padB, o.padD = MaxPad, MaxPad }, RC4, nil},
		{"padB too long", func(o *step4) { o.padB = MaxPad + 1 }, RC4, ErrHandshake},
		{"padD too long", func(o *step4) { o.padD = MaxPad + 1 }, RC4, ErrHandshake},
		{"bad VC", func(o *step4) { o.vc[0] = 9; o.after = make([]byte, 600) }, RC4, ErrHandshake},
		{"selects both", func(o *step4) { o.sel = RC4 | Plaintext }, RC4 | Plaintext, ErrHandshake},
		{"selects unprovided", func(o *step4) { o.sel = Plaintext }, RC4, ErrHandshake},
		{"selects nothing", func(o *step4) { o.sel = 0 }, RC4, ErrHandshake},
		{"hangs up after Yb", func(o *step4) { o.noSync = true }, RC4, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.mod(&o)
			r, _ := initiateBytes(buildReceiver(t, o), tc.provide)
			if tc.want != nil {
				if !errors.Is(r.err, tc.want) {
					t.Fatalf("err %v, want %v", r.err, tc.want)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.method != o.sel {
				t.Fatalf("method %v, want %v", r.method, o.sel)
			}
			got, err := io.ReadAll(r.rw)
			if err != nil || string(got) != "answer" {
				t.Fatalf("payload %q, %v", got, err)
			}
		})
	}
	in := buildReceiver(t, good)
	for n := range len(in) - len(good.after) {
		if r, _ := initiateBytes(in[:n], RC4); !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Fatalf("answer cut at %d: err %v, want io.ErrUnexpectedEOF", n, r.err)
		}
	}
}

func TestStreamWriteFailureSticks(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p2.Close()
	s := &stream{r: p1, w: p1, enc: newCipher("keyA", &[KeyLen]byte{}, testSKey)}
	p1.Close()
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed pipe succeeded")
	}
	if _, err := s.Write([]byte("y")); err == nil {
		t.Fatal("second write after a failure succeeded")
	}
}

func TestMethodString(t *testing.T) {
	for m, want := range map[Method]string{RC4: "rc4", Plaintext: "plaintext", RC4 | Plaintext: "rc4+plaintext", 0: "0x0", 8 | RC4: "rc4+0x8"} {
		if got := m.String(); got != want {
			t.Errorf("%d: %q, want %q", uint32(m), got, want)
		}
	}
}
