package utp

import (
	"net"
	"os"
	"sync"
	"time"
)

// packetView is the net.PacketConn through which the DHT (or anything
// else sharing the UDP socket) reads the datagrams that are not uTP and
// writes its own.
type packetView struct {
	s         *Socket
	q         chan datagram
	rdl       deadline
	closeOnce sync.Once
	closed    chan struct{}
}

type datagram struct {
	b    []byte
	from net.Addr
}

var _ net.PacketConn = (*packetView)(nil)

func newPacketView(s *Socket, n int) *packetView {
	v := &packetView{s: s, q: make(chan datagram, n), closed: make(chan struct{})}
	v.rdl.init()
	return v
}

// PacketConn returns the view of the socket for the DHT: ReadFrom returns
// the datagrams that are not uTP (at most Config.OtherQueue wait; more
// are dropped, as a full socket buffer would), WriteTo sends on the shared
// socket, SetReadDeadline works (a past deadline stops a reader), and
// Close closes only the view. Every call returns the same view.
func (s *Socket) PacketConn() net.PacketConn { return s.other }

func (v *packetView) deliver(b []byte, from net.Addr) {
	if expired(v.closed) {
		return
	}
	select {
	case v.q <- datagram{append([]byte(nil), b...), from}:
	default:
	}
}

// ReadFrom returns the next datagram that is not uTP.
func (v *packetView) ReadFrom(p []byte) (int, net.Addr, error) {
	if expired(v.rdl.wait()) {
		return 0, nil, os.ErrDeadlineExceeded
	}
	select {
	case d := <-v.q:
		return copy(p, d.b), d.from, nil
	case <-v.rdl.wait():
		return 0, nil, os.ErrDeadlineExceeded
	case <-v.closed:
		return 0, nil, ErrSocketClosed
	case <-v.s.done:
		return 0, nil, ErrSocketClosed
	}
}

// WriteTo sends b to addr on the shared socket.
func (v *packetView) WriteTo(b []byte, addr net.Addr) (int, error) {
	if expired(v.closed) {
		return 0, ErrSocketClosed
	}
	return v.s.pc.WriteTo(b, addr)
}

// Close closes the view; the socket and its connections go on.
func (v *packetView) Close() error {
	v.closeOnce.Do(func() { close(v.closed) })
	return nil
}

// LocalAddr is the shared socket's address.
func (v *packetView) LocalAddr() net.Addr { return v.s.Addr() }

// SetDeadline sets the read deadline (writes to UDP do not block).
func (v *packetView) SetDeadline(t time.Time) error { return v.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom fail with os.ErrDeadlineExceeded after t.
func (v *packetView) SetReadDeadline(t time.Time) error { v.rdl.set(t); return nil }

// SetWriteDeadline does nothing: writes to UDP do not block.
func (v *packetView) SetWriteDeadline(time.Time) error { return nil }
