package enginetest

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer accepts connections and echoes them until they close; it
// stops in t.Cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dialProxy(t *testing.T, p *LatencyProxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	return c
}

// TestLatencyProxyDelaysRoundTrips checks that a ping-pong through the
// proxy takes at least two one-way delays (a lower bound only: a loaded
// machine may make it slower, never faster).
func TestLatencyProxyDelaysRoundTrips(t *testing.T) {
	const d = 40 * time.Millisecond
	p := StartLatencyProxy(t, LatencyConfig{Target: echoServer(t), Delay: d})
	start := time.Now()
	c := dialProxy(t, p)
	buf := make([]byte, 4)
	for i := range 5 {
		// The first exchange also pays for the TCP handshake.
		want := 2 * d
		if i == 0 {
			want = 4 * d
		} else {
			start = time.Now()
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < want {
			t.Fatalf("round trip %d took %v, want at least %v", i, rtt, want)
		}
		if string(buf) != "ping" {
			t.Fatalf("echo %q", buf)
		}
	}
}

// TestLatencyProxyKeepsThroughput sends many chunks through a proxy with a
// long delay: delaying each chunk from its arrival pipelines them, where
// sleeping per read would take at least chunks x delay (here 20 s). The
// bound, half of that, is far above the pipelined time (two delays plus
// the copying of 40 chunks): the delay dominates, not the machine's load
// (400 chunks at a tenth of the delay once took 8 s of copying on a
// loaded machine).
func TestLatencyProxyKeepsThroughput(t *testing.T) {
	const d = 500 * time.Millisecond
	p := StartLatencyProxy(t, LatencyConfig{Target: echoServer(t), Delay: d})
	c := dialProxy(t, p)
	const chunks = 40
	data := bytes.Repeat([]byte("0123456789abcdef"), chunks*proxyChunk/16)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, want the %d sent in order", len(got), len(data))
	}
	if el < 2*d {
		t.Fatalf("transfer took %v, less than one round trip", el)
	}
	if limit := chunks * d / 2; el > limit {
		t.Fatalf("transfer of %d chunks took %v: throughput collapsed (limit %v)", chunks, el, limit)
	}
	t.Logf("%d MiB echoed through 2 x %v in %v", len(data)>>20, d, el)
}

// TestLatencyProxyRateCap checks the token bucket: at 1 MB/s each way,
// 400 kB cannot cross in less than about 0.4 s (a lower bound only).
func TestLatencyProxyRateCap(t *testing.T) {
	const rate = 1_000_000
	p := StartLatencyProxy(t, LatencyConfig{Target: echoServer(t), DownRate: rate})
	c := dialProxy(t, p)
	data := make([]byte, 400_000)
	start := time.Now()
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(data) {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	// The bucket starts with one burst (10 ms) of tokens.
	if el, want := time.Since(start), 390*time.Millisecond; el < want {
		t.Fatalf("400 kB at 1 MB/s took %v, want at least %v", el, want)
	}
}

// TestLatencyProxyCloseEndsEverything closes a proxy with connections in
// the middle of transfers and checks that every goroutine of the proxy
// ends and the clients see their connections close.
func TestLatencyProxyCloseEndsEverything(t *testing.T) {
	p, err := NewLatencyProxy(LatencyConfig{Target: echoServer(t), Delay: time.Second, Buffer: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var cs []net.Conn
	for range 3 {
		c := dialProxy(t, p)
		cs = append(cs, c)
		// More than the delay line holds: the proxy's reader blocks.
		go func() { _, _ = c.Write(make([]byte, 16<<20)) }()
	}
	time.Sleep(100 * time.Millisecond)
	if proxyGoroutines() == "" {
		t.Fatal("no proxy goroutines while connections are open")
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("Close did not return:\n%s", proxyGoroutines())
	}
	// A goroutine that signalled its end may still be returning.
	for deadline := time.Now().Add(5 * time.Second); proxyGoroutines() != ""; {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%s", proxyGoroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range cs {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("client read after Close: %v", err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// proxyGoroutines returns the stacks of running goroutines in the proxy's
// methods.
func proxyGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*LatencyProxy)") && !strings.Contains(g, "TestLatencyProxyCloseEndsEverything") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestListenInNetns puts a proxy's listener in a network namespace: a
// client inside the namespace reaches the echo server outside through it,
// and the address is not open outside the namespace.
func TestListenInNetns(t *testing.T) {
	ns := NewNetns(t, 1)
	ln, err := ListenInNetns(ns.Name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := StartLatencyProxy(t, LatencyConfig{Listener: ln, Target: echoServer(t), Delay: 5 * time.Millisecond})
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s is open outside the namespace", p.Addr())
	}
	host, port, _ := net.SplitHostPort(p.Addr())
	script := "import socket; s = socket.create_connection(('" + host + "', " + port + "), 5); s.sendall(b'ping'); print(s.recv(4).decode())"
	p2 := Start(t, "nsenter", "--net=/run/netns/"+ns.Name, Python, "-c", script)
	if got := p2.WaitLine(t, "ping", 30*time.Second); got != "" {
		t.Fatalf("echo through the namespace: %q", got)
	}
}
