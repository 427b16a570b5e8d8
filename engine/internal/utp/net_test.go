package utp

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// lossyConn wraps a PacketConn and, driven by a seeded generator, drops,
// duplicates and reorders (holds one datagram back until the next is
// sent, or 2 ms) the datagrams written to it.
type lossyConn struct {
	net.PacketConn
	drop, dup, reorder float64

	mu   sync.Mutex // guards the fields below
	rng  *rand.Rand
	held []byte
	to   net.Addr
	gen  int // bumps each time held is replaced
	stat struct{ sent, dropped, duped, reordered int }
}

func newLossy(pc net.PacketConn, seed uint64, drop, dup, reorder float64) *lossyConn {
	return &lossyConn{PacketConn: pc, drop: drop, dup: dup, reorder: reorder, rng: rand.New(rand.NewPCG(seed, 1))}
}

func (l *lossyConn) WriteTo(b []byte, to net.Addr) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stat.sent++
	r := l.rng.Float64()
	switch {
	case r < l.drop:
		l.stat.dropped++
		return len(b), nil
	case r < l.drop+l.dup:
		l.stat.duped++
		l.PacketConn.WriteTo(b, to)
	case r < l.drop+l.dup+l.reorder && l.held == nil:
		l.stat.reordered++
		l.held, l.to = append([]byte(nil), b...), to
		l.gen++
		gen := l.gen
		time.AfterFunc(2*time.Millisecond, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.held != nil && l.gen == gen {
				l.PacketConn.WriteTo(l.held, l.to)
				l.held = nil
			}
		})
		return len(b), nil
	}
	n, err := l.PacketConn.WriteTo(b, to)
	if l.held != nil {
		l.PacketConn.WriteTo(l.held, l.to)
		l.held = nil
	}
	return n, err
}

// socketPair starts two sockets on loopback, each writing through wrap
// (nil for none), closed in t.Cleanup.
func socketPair(t testing.TB, cfg Config, wrap func(net.PacketConn, uint64) net.PacketConn) (a, b *Socket) {
	t.Helper()
	mk := func(seed uint64) *Socket {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var p net.PacketConn = pc
		if wrap != nil {
			p = wrap(pc, seed)
		}
		s := NewSocket(p, cfg)
		t.Cleanup(func() { s.Close() })
		return s
	}
	return mk(1), mk(2)
}

func addrOf(s *Socket) netip.AddrPort { return s.Addr().(*net.UDPAddr).AddrPort() }

// connPair dials b from a and returns both ends.
func connPair(t testing.TB, a, b *Socket) (dialed, accepted *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := b.Accept()
		ch <- res{c, err}
	}()
	d, err := a.Dial(ctx, addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { d.Close(); r.c.Close() })
	return d, r.c
}
