package ratelimit

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
	}
	if server == nil {
		client.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestRealRateOnLoopback moves 4 MiB each way over two loopback TCP
// connections that share one 1 MiB/s upload and one 1 MiB/s download
// limiter, on the real clock. This is the one test where a rate is the
// point: the cap must hold within 10% (the bucket's burst and one read's
// debt are the only slack); a loaded machine may be slower, so the lower
// bound is loose.
func TestRealRateOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("ratelimit: real-time transfer skipped in -short mode")
	}
	const (
		rate    = 1 << 20
		perConn = 2 << 20
		conns   = 2
	)
	up, _ := New(Config{Rate: rate})
	down, _ := New(Config{Rate: rate})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var upBytes, downBytes int64
	var upEnd, downEnd time.Time
	var errs []error
	note := func(bytes *int64, end *time.Time, n int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		*bytes += n
		if now := time.Now(); now.After(*end) {
			*end = now
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	start := time.Now()
	for range conns {
		raw, server := tcpPair(t)
		_ = raw.SetDeadline(start.Add(60 * time.Second))
		_ = server.SetDeadline(start.Add(60 * time.Second))
		c := Wrap(raw, up, down)
		wg.Add(4)
		go func() { // upload: client writes through the limiter
			defer wg.Done()
			buf := make([]byte, 16<<10)
			var n int64
			var err error
			for n < perConn && err == nil {
				var k int
				k, err = c.Write(buf)
				n += int64(k)
			}
			note(&upBytes, &upEnd, n, err)
		}()
		go func() { // the server receives the upload
			defer wg.Done()
			_, _ = io.CopyN(io.Discard, server, perConn)
		}()
		go func() { // download: the server sends as fast as it can
			defer wg.Done()
			_, _ = io.CopyN(server, zeroReader{}, perConn)
		}()
		go func() { // the client reads through the limiter
			defer wg.Done()
			n, err := io.CopyN(io.Discard, c, perConn)
			note(&downBytes, &downEnd, n, err)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("transfer failed: %v", errs)
	}
	check := func(dir string, bytes int64, end time.Time) {
		secs := end.Sub(start).Seconds()
		got := float64(bytes) / secs
		t.Logf("%s: %d B in %.2f s = %.0f B/s (cap %d)", dir, bytes, secs, got, rate)
		if got > 1.1*rate {
			t.Errorf("%s: %.0f B/s is more than 10%% above the %d B/s cap", dir, got, rate)
		}
		if got < 0.25*rate {
			t.Errorf("%s: %.0f B/s is far below the %d B/s cap", dir, got, rate)
		}
	}
	check("upload", upBytes, upEnd)
	check("download", downBytes, downEnd)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkConn compares a raw loopback TCP connection with the wrapper at
// an unlimited rate and at a high cap, writing 16 KiB messages.
func BenchmarkConn(b *testing.B) {
	high, _ := New(Config{Rate: MaxRate})
	unlimited, _ := New(Config{})
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"raw", func(c net.Conn) net.Conn { return c }},
		{"unlimited", func(c net.Conn) net.Conn { return Wrap(c, nil, unlimited) }},
		{"high-cap", func(c net.Conn) net.Conn { return Wrap(c, high, high) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw, server := tcpPair(b)
			c := bc.wrap(raw)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = io.Copy(io.Discard, server)
			}()
			buf := make([]byte, 16<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			raw.Close()
			<-done
		})
	}
}
