package utp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestManyConnections(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	const n = 40
	var wg sync.WaitGroup
	errc := make(chan error, 2*n)
	go func() {
		for range n {
			c, err := b.Accept()
			if err != nil {
				errc <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				// Echo everything back, then close our side.
				if _, err := io.Copy(c, c); err != nil {
					errc <- fmt.Errorf("echo: %w", err)
					return
				}
				c.CloseWrite()
			}()
		}
	}()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := a.Dial(ctx, addrOf(b))
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			msg := make([]byte, 100<<10+i)
			for j := range msg {
				msg[j] = byte(i + j)
			}
			go func() {
				c.Write(msg)
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != string(msg) {
				errc <- fmt.Errorf("conn %d: %d of %d bytes echoed, %v", i, len(got), len(msg), err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	waitFor(t, 15*time.Second, "connections to end", func() bool { return a.NumConns() == 0 && b.NumConns() == 0 })
}

func TestCloseDeliversDataThenEOF(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	d, acc := connPair(t, a, b)
	msg := make([]byte, 300<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := d.Write(msg); err != nil {
		t.Fatal(err)
	}
	// Close returns at once; the data and FIN still arrive.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	acc.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(acc)
	if err != nil || string(got) != string(msg) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(msg), err)
	}
	acc.Close()
	waitFor(t, 10*time.Second, "both ends to be freed", func() bool { return a.NumConns() == 0 && b.NumConns() == 0 })
}

func TestCloseWithUnreadDataResets(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	d, acc := connPair(t, a, b)
	if _, err := d.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "data to arrive", func() bool {
		acc.mu.Lock()
		defer acc.mu.Unlock()
		return acc.recv.buffered() > 0
	})
	acc.Close()
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := d.Read(make([]byte, 10)); !errors.Is(err, ErrReset) {
		t.Fatalf("read after the peer reset: %v, want ErrReset", err)
	}
	if _, err := d.Write([]byte("more")); !errors.Is(err, ErrReset) {
		t.Fatalf("write after the peer reset: %v, want ErrReset", err)
	}
}

func TestSocketCloseResetsPeers(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	d, acc := connPair(t, a, b)
	b.Close()
	if _, err := acc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed socket: %v", err)
	}
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("peer of a closed socket: %v, want ErrReset", err)
	}
	if _, err := b.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept on a closed socket: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := b.Dial(ctx, addrOf(a)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("dial on a closed socket: %v", err)
	}
}

func TestDialRefusedAndUnanswered(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	b.Listener().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Dial(ctx, addrOf(b)); !errors.Is(err, ErrRefused) {
		t.Fatalf("dial to a closed listener: %v, want ErrRefused", err)
	}
	// A UDP socket that never answers: the context ends the dial.
	mute, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := a.Dial(ctx2, mute.LocalAddr().(*net.UDPAddr).AddrPort()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial to a mute socket: %v", err)
	}
	if n := a.NumConns(); n != 0 {
		t.Fatalf("%d connections left after failed dials", n)
	}
}

func TestMaxConns(t *testing.T) {
	a, _ := socketPair(t, Config{}, nil)
	_, b := socketPair(t, Config{MaxConns: 2}, nil)
	connPair(t, a, b)
	connPair(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Dial(ctx, addrOf(b)); !errors.Is(err, ErrRefused) {
		t.Fatalf("third dial: %v, want ErrRefused", err)
	}
	if _, err := b.Dial(ctx, addrOf(a)); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("dial beyond MaxConns: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	a, b := socketPair(t, Config{SendBuffer: 64 << 10, RecvBuffer: 64 << 10}, nil)
	d, acc := connPair(t, a, b)
	acc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := acc.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	acc.SetReadDeadline(time.Time{})
	go d.Write([]byte("late"))
	buf := make([]byte, 10)
	n, err := acc.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read after clearing the deadline: %q %v", buf[:n], err)
	}
	// Nobody reads: Write blocks once both buffers are full, until its
	// deadline.
	d.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err = d.Write(make([]byte, 1<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= 1<<20 {
		t.Fatalf("write to a stalled reader: %d bytes, %v", n, err)
	}
	// A deadline in the past fails at once; moving it unblocks a Read.
	acc.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := acc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", err)
	}
}

func TestSlowReaderRespectsWindow(t *testing.T) {
	const recvBuf = 32 << 10
	a, b := socketPair(t, Config{RecvBuffer: recvBuf}, nil)
	d, acc := connPair(t, a, b)
	go func() {
		d.Write(make([]byte, 2<<20))
		d.CloseWrite()
	}()
	acc.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 7000)
	total := 0
	for i := 0; ; i++ {
		acc.mu.Lock()
		held := acc.recv.buffered()
		acc.mu.Unlock()
		if held > recvBuf {
			t.Fatalf("receiver holds %d bytes, more than its %d buffer", held, recvBuf)
		}
		n, err := acc.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if total != 2<<20 {
		t.Fatalf("read %d bytes", total)
	}
}

func TestIdleTimeoutAndKeepAlive(t *testing.T) {
	// b sends keep-alives every 50 ms: a stays up past its idle timeout.
	a, _ := socketPair(t, Config{IdleTimeout: 300 * time.Millisecond, KeepAlive: time.Hour}, nil)
	_, b := socketPair(t, Config{KeepAlive: 50 * time.Millisecond}, nil)
	d, _ := connPair(t, a, b)
	time.Sleep(time.Second)
	if err := d.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("kept-alive connection: %v", err)
	}
	// Without keep-alives from the peer the connection times out.
	_, c := socketPair(t, Config{KeepAlive: time.Hour}, nil)
	d2, _ := connPair(t, a, c)
	d2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := d2.Read(make([]byte, 1)); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("idle connection: %v, want ErrTimedOut", err)
	}
}

// TestZeroWindowSurvives pauses the reader long enough for many
// retransmission timeouts of the sender's probes; the connection must
// survive (the receiver answers every probe) and deliver everything.
func TestZeroWindowSurvives(t *testing.T) {
	cfg := Config{RecvBuffer: 16 << 10, SendBuffer: 64 << 10, MinRTO: 20 * time.Millisecond, MaxTimeouts: 2}
	a, b := socketPair(t, cfg, nil)
	d, acc := connPair(t, a, b)
	const n = 200 << 10
	errc := make(chan error, 1)
	go func() {
		d.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := d.Write(make([]byte, n))
		if err == nil {
			err = d.CloseWrite()
		}
		errc <- err
	}()
	waitFor(t, 10*time.Second, "the receive window to close", func() bool {
		acc.mu.Lock()
		defer acc.mu.Unlock()
		return acc.recv.window() == 0
	})
	time.Sleep(time.Second) // about ten timeouts of the 20 ms minimum, backed off
	acc.SetReadDeadline(time.Now().Add(time.Minute))
	got, err := io.ReadAll(acc)
	if err != nil || len(got) != n {
		t.Fatalf("read %d of %d bytes after the pause: %v", len(got), n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
