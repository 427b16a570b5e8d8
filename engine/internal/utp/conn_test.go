package utp

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// transfer writes n seeded random bytes on w and checks r reads exactly
// them, then EOF after w's CloseWrite.
func transfer(t *testing.T, w, r net.Conn, n int, seed uint64) {
	t.Helper()
	if err := transferErr(w, r, n, seed); err != nil {
		t.Fatal(err)
	}
}

func transferErr(w, r net.Conn, n int, seed uint64) error {
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(seed, 3))
		for off := 0; off < n; {
			k := min(1+rng.IntN(100000), n-off)
			if _, err := w.Write(data[off : off+k]); err != nil {
				errc <- err
				return
			}
			off += k
		}
		if cw, ok := w.(interface{ CloseWrite() error }); ok {
			errc <- cw.CloseWrite()
			return
		}
		errc <- w.Close()
	}()
	r.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), err)
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("received %d bytes (sha1 %x), sent %d (sha1 %x)", len(got), sha1.Sum(got), n, sha1.Sum(data))
	}
	return nil
}

func TestTransferLoopback(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	d, acc := connPair(t, a, b)
	transfer(t, d, acc, 8<<20, 1)
}

func TestTransferBothWays(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	d, acc := connPair(t, a, b)
	errc := make(chan error, 1)
	go func() { errc <- transferErr(acc, d, 2<<20, 7) }()
	transfer(t, d, acc, 2<<20, 8)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestTransferLossy moves data byte-exact through links that drop,
// duplicate and reorder datagrams (seeded, so a failure repeats).
func TestTransferLossy(t *testing.T) {
	cases := []struct {
		name               string
		drop, dup, reorder float64
		size               int
	}{
		{"mixed", 0.03, 0.02, 0.05, 16 << 20},
		{"heavy-loss", 0.10, 0, 0, 4 << 20},
		{"reorder-dup", 0, 0.10, 0.30, 8 << 20},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lossy []*lossyConn
			wrap := func(pc net.PacketConn, seed uint64) net.PacketConn {
				l := newLossy(pc, seed+uint64(10*i), tc.drop, tc.dup, tc.reorder)
				lossy = append(lossy, l)
				return l
			}
			a, b := socketPair(t, Config{MinRTO: 100 * time.Millisecond}, wrap)
			d, acc := connPair(t, a, b)
			transfer(t, d, acc, tc.size, uint64(i))
			for _, l := range lossy {
				l.mu.Lock()
				t.Logf("lossy link: %+v", l.stat)
				l.mu.Unlock()
			}
		})
	}
}

// TestBlockedWriterSends has a Write block on a full send buffer while
// the peer reads slowly, then end at its deadline: while it waits, the
// read goroutine leaves the sending that acknowledgements allow to it, so
// the bytes it queued before the deadline must still all arrive, with and
// without the writer waiting at that moment.
func TestBlockedWriterSends(t *testing.T) {
	a, b := socketPair(t, Config{SendBuffer: 64 << 10, RecvBuffer: 64 << 10}, nil)
	d, acc := connPair(t, a, b)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	type res struct {
		n   int
		err error
	}
	wrote := make(chan res, 1)
	d.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	go func() {
		n, err := d.Write(data)
		wrote <- res{n, err}
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 4<<10)
	// Bytes flow on acknowledgements alone: no timer (the keep-alive
	// after 29 s would be the first) is needed for any of them.
	var w res
	for done := false; !done; {
		select {
		case w = <-wrote:
			done = true
		default:
			acc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := acc.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
			time.Sleep(time.Millisecond) // a slow reader
		}
	}
	if !errors.Is(w.err, os.ErrDeadlineExceeded) || w.n == len(data) {
		t.Fatalf("write: %d bytes, %v; want a deadline before all of them", w.n, w.err)
	}
	acc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < w.n {
		n, err := acc.Read(buf)
		if err != nil {
			t.Fatalf("after %d of the %d bytes written: %v", len(got), w.n, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, data[:w.n]) {
		t.Fatalf("received %d bytes differing from the %d written", len(got), w.n)
	}
}
