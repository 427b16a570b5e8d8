package utp

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// counter counts the bytes read from a connection until it fails.
func counter(r io.Reader, n *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		n.Add(int64(k))
		if err != nil {
			return
		}
	}
}

func writeForever(w io.Writer) {
	buf := make([]byte, 32<<10)
	for {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

// TestLedbatYieldsToTCP runs a uTP and a TCP transfer through one
// rate-limited router: namespaces A and B joined through a router
// namespace R whose interface towards B has a tbf qdisc of 32 Mbit/s with
// a 1000 KB drop-tail queue (250 ms), which a loss-based TCP (CUBIC)
// fills. uTP, seeing the queuing delay pass its 100 ms target, must leave
// most of the link to TCP. With a target above the queue's delay uTP
// competes like TCP and keeps a larger share: the control that shows the
// test can fail.
func TestLedbatYieldsToTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("utp: rate-limited link test skipped in -short mode")
	}
	net := newRoutedPair(t, "tbf rate 32mbit burst 16kb limit 1000kb")
	yielding := shareOfUTP(t, net, 100*time.Millisecond)
	competing := shareOfUTP(t, net, time.Second)
	t.Logf("uTP's share of the link beside TCP: %.2f with a 100 ms target, %.2f with a 1 s target", yielding, competing)
	if yielding > 0.15 {
		t.Errorf("uTP kept %.0f%% of the link beside TCP; LEDBAT should yield", 100*yielding)
	}
	if competing < 2*yielding || competing < 0.15 {
		t.Errorf("control: uTP with a 1 s target got %.0f%% of the link, not clearly more than LEDBAT's %.0f%%", 100*competing, 100*yielding)
	}
}

// shareOfUTP starts a uTP transfer from namespace A to B, lets it
// warm up, starts a TCP (CUBIC) transfer along the same path and returns
// uTP's share of the bytes delivered while TCP moves 12 MB.
func shareOfUTP(t *testing.T, rp *routedPair, target time.Duration) float64 {
	cfg := Config{TargetDelay: target}
	listen := func(ns, ip string) *Socket {
		var s *Socket
		rp.in(t, ns, func() error {
			pc, err := net.ListenPacket("udp4", ip+":0")
			if err == nil {
				s = NewSocket(pc, cfg)
			}
			return err
		})
		t.Cleanup(func() { s.Close() })
		return s
	}
	ud, ua := connPair(t, listen(rp.nsA, rp.addrA), listen(rp.nsB, rp.addrB))
	var utpBytes, tcpBytes atomic.Int64
	go writeForever(ud)
	go counter(ua, &utpBytes)

	var srv net.Listener
	rp.in(t, rp.nsB, func() (err error) {
		srv, err = net.Listen("tcp", rp.addrB+":0")
		return err
	})
	defer srv.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := srv.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
		counter(c, &tcpBytes)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitBytes := func(n *atomic.Int64, want int64, what string) {
		for n.Load() < want {
			if ctx.Err() != nil {
				t.Fatalf("%s: %d of %d bytes before the deadline", what, n.Load(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitBytes(&utpBytes, 3<<20, "uTP alone")
	// A loss-based TCP that fills the queue, as LEDBAT expects of TCP (this
	// machine defaults to BBR, which keeps queues short).
	var ccErr error
	d := net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			if err := rc.Control(func(fd uintptr) {
				ccErr = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, "cubic")
			}); err != nil {
				return err
			}
			return ccErr
		}}
	var tc net.Conn
	rp.in(t, rp.nsA, func() (err error) {
		tc, err = d.DialContext(ctx, "tcp", srv.Addr().String())
		return err
	})
	defer tc.Close()
	if c, ok := <-accepted; ok {
		defer c.Close()
	}
	go writeForever(tc)
	// Let TCP fill the queue, then measure.
	waitBytes(&tcpBytes, 4<<20, "TCP start")
	u0, t0 := utpBytes.Load(), tcpBytes.Load()
	waitBytes(&tcpBytes, t0+12<<20, "TCP beside uTP")
	u, tb := utpBytes.Load()-u0, tcpBytes.Load()-t0
	ud.Close()
	ua.Close()
	return float64(u) / float64(u+tb)
}
