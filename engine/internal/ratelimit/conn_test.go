package ratelimit

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// pipePair returns a wrapped end and the raw other end of a net.Pipe.
func pipePair(t *testing.T, up, down *Limiter) (*Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	c := Wrap(a, up, down)
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, b
}

func TestConnWriteCharged(t *testing.T) {
	up, clk := newFake(t, 1000, 100)
	c, peer := pipePair(t, up, nil)
	var got atomic.Int64
	go func() { _, _ = io.Copy(countWriter{&got}, peer) }()
	wrote := make(chan int, 1)
	go func() {
		n, err := c.Write(make([]byte, 300))
		if err != nil {
			t.Errorf("Write: %v", err)
		}
		wrote <- n
	}()
	for want := int64(100); want <= 300; want += 100 {
		eventually(t, "the next chunk", func() bool { return got.Load() == want && (want == 300 || up.Waiting() == 1) })
		if want < 300 {
			clk.Advance(99 * time.Millisecond)
			if got.Load() != want {
				t.Fatalf("a chunk left before its tokens: %d B", got.Load())
			}
			clk.Advance(time.Millisecond)
		}
	}
	if n := <-wrote; n != 300 {
		t.Errorf("Write returned %d", n)
	}
}

type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

func TestConnReadCharged(t *testing.T) {
	down, clk := newFake(t, 1000, 100)
	c, peer := pipePair(t, nil, down)
	go func() { _, _ = peer.Write(make([]byte, 250)) }()
	buf := make([]byte, 1000)
	for i := range 2 {
		// The second read pays for the first from the full bucket.
		n, err := c.Read(buf)
		if n != 100 || err != nil {
			t.Fatalf("Read %d = %d, %v; want one 100 B chunk", i, n, err)
		}
	}
	// The third pays for the second from an empty bucket: it waits 100 ms
	// of fake time before it touches the connection.
	read := make(chan int, 1)
	go func() {
		n, _ := c.Read(buf)
		read <- n
	}()
	eventually(t, "the read to wait for tokens", func() bool { return down.Waiting() == 1 })
	select {
	case n := <-read:
		t.Fatalf("read %d B before paying for the last", n)
	default:
	}
	clk.Advance(100 * time.Millisecond)
	if n := <-read; n != 50 {
		t.Fatalf("third Read = %d", n)
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	up, clk := newFake(t, 1000, 100)
	c, peer := pipePair(t, up, nil)
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	if _, err := c.Write(make([]byte, 100)); err != nil { // empties the bucket
		t.Fatal(err)
	}
	write := func() chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := c.Write(make([]byte, 100))
			ch <- err
		}()
		eventually(t, "the write to wait for tokens", func() bool { return up.Waiting() == 1 })
		return ch
	}

	// A deadline passing while waiting.
	if err := c.SetWriteDeadline(clk.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ch := write()
	clk.Advance(50 * time.Millisecond)
	if err := <-ch; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("deadline error %v is not a net.Error timeout", err)
	}
	if up.Waiting() != 0 {
		t.Fatal("the timed-out write is still queued")
	}

	// A deadline moved into the past while waiting.
	_ = c.SetWriteDeadline(clk.Now().Add(time.Hour))
	ch = write()
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	if err := <-ch; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write whose deadline moved to the past: %v", err)
	}

	// Close while waiting.
	_ = c.SetWriteDeadline(time.Time{})
	ch = write()
	c.Close()
	if err := <-ch; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed conn: %v", err)
	}
	if up.Waiting() != 0 {
		t.Fatal("the closed conn's write is still queued")
	}
}

// TestConnUrgentRead: when download tokens are scarce, the connection
// marked Urgent (carrying a reader's Now pieces) reads first.
func TestConnUrgentRead(t *testing.T) {
	down, clk := newFake(t, 1000, 100)
	normal, np := pipePair(t, nil, down)
	urgent, up := pipePair(t, nil, down)
	urgent.SetReadClass(Urgent)
	go func() { _, _ = np.Write(make([]byte, 200)) }()
	go func() { _, _ = up.Write(make([]byte, 200)) }()
	buf := make([]byte, 100)
	if n, _ := normal.Read(buf); n != 100 { // takes the bucket
		t.Fatalf("read %d", n)
	}
	if n, _ := urgent.Read(buf); n != 100 {
		t.Fatalf("read %d", n)
	}
	reserve(t, down, 100, Normal) // empties the bucket: both conns owe 100 B
	order := make(chan string, 2)
	go func() {
		b := make([]byte, 100)
		_, _ = normal.Read(b)
		order <- "normal"
	}()
	eventually(t, "the normal read to queue", func() bool { return down.Waiting() == 1 })
	go func() {
		b := make([]byte, 100)
		_, _ = urgent.Read(b)
		order <- "urgent"
	}()
	eventually(t, "the urgent read to queue", func() bool { return down.Waiting() == 2 })
	clk.Advance(100 * time.Millisecond)
	if first := <-order; first != "urgent" {
		t.Fatalf("%s read first", first)
	}
	clk.Advance(100 * time.Millisecond)
	<-order
}
