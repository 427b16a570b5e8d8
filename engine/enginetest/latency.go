package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// LatencyConfig configures a LatencyProxy.
type LatencyConfig struct {
	// Listen is the address to listen on; empty means "127.0.0.1:0".
	Listen string
	// Listener, when set, is accepted on instead of listening on Listen
	// (for instance one made by ListenInNetns); Close closes it.
	Listener net.Listener
	// Target is the address every accepted connection is forwarded to.
	Target string
	// Delay is the one-way delay added in each direction, so a round trip
	// through the proxy takes 2*Delay more. Zero adds none.
	Delay time.Duration
	// UpRate caps the bytes per second from the clients to the target and
	// DownRate those from the target to the clients, shared by all the
	// proxy's connections (one token bucket per direction). Zero means
	// no cap.
	UpRate, DownRate int64
	// Buffer is the most bytes held in the delay line of one direction of
	// one connection. It must cover the bandwidth-delay product or it caps
	// throughput at Buffer/Delay. Zero means 8 MiB.
	Buffer int64
}

// LatencyProxy is an in-process TCP proxy that delays every chunk of bytes
// by Delay from the time it arrived, in both directions, preserving order:
// it adds latency without capping throughput to one chunk per delay. A new
// connection also pays the round trip of TCP's handshake: nothing passes
// before 2*Delay after the accept.
// Optional token buckets cap each direction's rate. Close ends every
// goroutine it started.
type LatencyProxy struct {
	cfg  LatencyConfig
	ln   net.Listener
	up   *bucket
	down *bucket
	ctx  context.Context // ends at Close
	stop context.CancelFunc
	done <-chan struct{} // ctx.Done()
	wg   sync.WaitGroup

	connsMu sync.Mutex // guards conns and closed
	conns   map[net.Conn]struct{}
	closed  bool
}

// proxyChunk is the most bytes read from a socket at once.
const proxyChunk = 64 << 10

// errProxyClosed ends a pipe when the proxy closes.
var errProxyClosed = errors.New("enginetest: latency proxy closed")

// NewLatencyProxy starts a proxy; Close it when done.
func NewLatencyProxy(cfg LatencyConfig) (*LatencyProxy, error) {
	if cfg.Target == "" {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, errors.New("enginetest: latency proxy needs a target")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 8 << 20
	}
	cfg.Buffer = max(cfg.Buffer, proxyChunk)
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("enginetest: latency proxy: %w", err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &LatencyProxy{
		cfg: cfg, ln: ln, up: newBucket(cfg.UpRate), down: newBucket(cfg.DownRate),
		ctx: ctx, stop: stop, done: ctx.Done(), conns: make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// StartLatencyProxy is NewLatencyProxy for tests: it fails t on error and
// closes the proxy in t.Cleanup.
func StartLatencyProxy(t testing.TB, cfg LatencyConfig) *LatencyProxy {
	t.Helper()
	p, err := NewLatencyProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr returns the address the proxy listens on ("ip:port").
func (p *LatencyProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, closes every connection and waits until every
// goroutine of the proxy has returned.
func (p *LatencyProxy) Close() error {
	p.connsMu.Lock()
	if p.closed {
		p.connsMu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	for c := range p.conns {
		c.Close()
	}
	p.connsMu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track records c so that Close closes it; it reports false (and closes
// c) when the proxy is already closed.
func (p *LatencyProxy) track(c net.Conn) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *LatencyProxy) untrack(c net.Conn) {
	p.connsMu.Lock()
	delete(p.conns, c)
	p.connsMu.Unlock()
	c.Close()
}

func (p *LatencyProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed (Close) or broken: either way no more clients
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.serve(c, time.Now())
	}
}

// serve dials the target for client c, accepted at time at, and runs both
// directions. The client's connect returned at once, where over a real
// path it takes a round trip: no byte may leave before at + 2*Delay, when
// the client would have been connected, so a chunk is due at the later of
// its arrival and that time, plus Delay.
func (p *LatencyProxy) serve(c net.Conn, at time.Time) {
	defer p.wg.Done()
	defer p.untrack(c)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", p.cfg.Target)
	cancel()
	if err != nil {
		return
	}
	if !p.track(t) {
		return
	}
	defer p.untrack(t)
	var wg sync.WaitGroup
	wg.Add(2)
	fail := func() { c.Close(); t.Close() }
	open := at.Add(2 * p.cfg.Delay)
	go func() { defer wg.Done(); p.pipe(c, t, p.up, open, fail) }()
	go func() { defer wg.Done(); p.pipe(t, c, p.down, open, fail) }()
	wg.Wait()
}

// delayed is a chunk in a delay line with the time it may leave.
type delayed struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst through a delay line: a reader stamps each chunk
// with its arrival time plus Delay, a writer sends it at that time (and
// after the rate bucket allows it). At src's end it half-closes dst; on an
// error it calls fail, which closes both sockets.
func (p *LatencyProxy) pipe(src, dst net.Conn, b *bucket, open time.Time, fail func()) {
	line := make(chan delayed, 1024)
	space := make(chan struct{}, 1)
	var mu sync.Mutex // guards held
	var held int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		failed := false
		for ch := range line {
			if !failed {
				if err := p.sleepUntil(ch.due); err != nil {
					failed = true
				} else if err := p.send(dst, ch.b, b); err != nil {
					failed = true
				}
				if failed {
					fail() // the reader's next Read fails and ends the line
				}
			}
			mu.Lock()
			held -= int64(len(ch.b))
			mu.Unlock()
			select {
			case space <- struct{}{}:
			default:
			}
		}
	}()
	eof := p.readInto(src, line, &mu, &held, space, open)
	close(line)
	<-writerDone
	if !eof {
		fail()
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite() // pass the end of the stream on, after the delay
	}
}

// readInto reads src into the delay line until src ends (true) or fails
// or the proxy closes (false).
func (p *LatencyProxy) readInto(src net.Conn, line chan<- delayed, mu *sync.Mutex, held *int64, space <-chan struct{}, open time.Time) bool {
	buf := make([]byte, proxyChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			at := time.Now()
			if at.Before(open) {
				at = open
			}
			ch := delayed{b: append([]byte(nil), buf[:n]...), due: at.Add(p.cfg.Delay)}
			if !p.reserve(mu, held, int64(n), space) {
				return false
			}
			select {
			case line <- ch:
			case <-p.done:
				return false
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// reserve waits until n more bytes fit in the delay line and counts them.
func (p *LatencyProxy) reserve(mu *sync.Mutex, held *int64, n int64, space <-chan struct{}) bool {
	for {
		mu.Lock()
		if *held == 0 || *held+n <= p.cfg.Buffer {
			*held += n
			mu.Unlock()
			return true
		}
		mu.Unlock()
		select {
		case <-space:
		case <-p.done:
			return false
		}
	}
}

// sleepUntil waits until t or until the proxy closes.
func (p *LatencyProxy) sleepUntil(t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-p.done:
		return errProxyClosed
	}
}

// send writes data to dst in slices that the bucket allows.
func (p *LatencyProxy) send(dst net.Conn, data []byte, b *bucket) error {
	for len(data) > 0 {
		n := len(data)
		if b != nil {
			n = min(n, b.burst)
			if err := p.sleepUntil(b.take(time.Now(), n)); err != nil {
				return err
			}
		}
		if _, err := dst.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// bucket is a token bucket shared by the connections of one direction.
type bucket struct {
	rate  float64 // bytes per second
	burst int     // most bytes sent at once

	mu     sync.Mutex // guards tokens and last
	tokens float64
	last   time.Time
}

// newBucket returns a bucket for rate bytes/s, or nil for no cap.
func newBucket(rate int64) *bucket {
	if rate <= 0 {
		return nil
	}
	// 10 ms of data, at least 1 KiB and at most a chunk: small enough
	// that the rate is smooth, large enough that writes stay efficient.
	burst := int(min(max(rate/100, 1<<10), proxyChunk))
	return &bucket{rate: float64(rate), burst: burst, tokens: float64(burst)}
}

// take reserves n tokens at now and returns when they are available: a
// reservation may drive the bucket negative, and the caller waits until
// the returned time.
func (b *bucket) take(now time.Time, n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.rate, float64(b.burst))
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return now
	}
	return now.Add(time.Duration(-b.tokens / b.rate * float64(time.Second)))
}

// ListenInNetns listens on addr inside the network namespace
// /run/netns/name (see NewNetns). Connections accepted on it live in that
// namespace, while those the process dials stay in its own, so a
// LatencyProxy given this listener joins the two: a client confined to
// the namespace reaches servers outside it only through the proxy.
func ListenInNetns(name, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(name, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("enginetest: listen on %s in netns %s: %w", addr, name, err)
	}
	return ln, nil
}
