package utp

import (
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// rawPeer speaks uTP by hand from a plain UDP socket.
type rawPeer struct {
	t  *testing.T
	pc net.PacketConn
	to net.Addr
}

func newRawPeer(t *testing.T, to net.Addr) *rawPeer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &rawPeer{t, pc, to}
}

func (r *rawPeer) send(h header, sack, payload []byte) {
	if _, err := r.pc.WriteTo(appendPacket(nil, h, sack, payload), r.to); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next packet, or false after d.
func (r *rawPeer) recv(d time.Duration) (packet, bool) {
	buf := make([]byte, 2000)
	r.pc.SetReadDeadline(time.Now().Add(d))
	n, _, err := r.pc.ReadFrom(buf)
	if err != nil {
		return packet{}, false
	}
	p, err := parsePacket(buf[:n])
	if err != nil {
		r.t.Fatalf("our socket sent a bad packet: %v", err)
	}
	return p, true
}

// TestHostilePeerStaysBounded opens a connection by hand and sends what a
// hostile peer might: data far ahead, a flood of out-of-order packets,
// acks of packets never sent, a flood of SYNs. Memory must stay within
// the configuration and the connection must go on working.
func TestHostilePeerStaysBounded(t *testing.T) {
	const recvBuf = 64 << 10
	s, _ := socketPair(t, Config{RecvBuffer: recvBuf, MaxConns: 8, AcceptBacklog: 4, ResetRate: 1000}, nil)
	r := newRawPeer(t, s.Addr())
	const id = 1000
	r.send(header{typ: stSyn, connID: id, seq: 500}, nil, nil)
	st, ok := r.recv(5 * time.Second)
	if !ok || st.typ != stState || st.connID != id || st.ack != 500 {
		t.Fatalf("answer to SYN: %+v %v", st, ok)
	}
	c, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := func(seq uint16, n int) {
		r.send(header{typ: stData, connID: id + 1, seq: seq, ack: st.seq - 1, wnd: 1 << 20}, nil, make([]byte, n))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		data(502+uint16(rng.IntN(3000)), 1+rng.IntN(1300)) // never fills 501: all held or dropped
	}
	data(501+40000, 100) // far ahead: dropped
	// An ack of packets we never sent is ignored.
	r.send(header{typ: stState, connID: id + 1, seq: 600, ack: st.seq + 1000, wnd: 1 << 20}, nil, nil)
	// A SYN flood from other connection ids: at most MaxConns in all.
	for i := range 100 {
		r.send(header{typ: stSyn, connID: uint16(5000 + 2*i), seq: 1}, nil, nil)
	}
	time.Sleep(200 * time.Millisecond)
	c.mu.Lock()
	held, ahead, slots := c.recv.buffered(), c.recv.ahead, len(c.recv.slots)
	c.mu.Unlock()
	if held > recvBuf || ahead > slots {
		t.Fatalf("holding %d bytes in %d packets; caps %d bytes, %d packets", held, ahead, recvBuf, slots)
	}
	if n := s.NumConns(); n > 8 {
		t.Fatalf("%d connections, MaxConns 8", n)
	}
	// The connection still works: fill the gap and read in order.
	data(501, 10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, err := c.Read(buf); err != nil || n < 10 {
		t.Fatalf("read after the flood: %d, %v", n, err)
	}
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	for {
		p, ok := r.recv(5 * time.Second)
		if !ok {
			t.Fatal("no data from our side after the flood")
		}
		if p.typ == stData && string(p.payload) == "still here" {
			break
		}
	}
}

// TestRepeatedSYN answers a SYN sent again (its answer was lost) with the
// same STATE, opening one connection only, and a RESET carrying either id
// of the connection ends it.
func TestRepeatedSYN(t *testing.T) {
	s, _ := socketPair(t, Config{}, nil)
	r := newRawPeer(t, s.Addr())
	r.send(header{typ: stSyn, connID: 7, seq: 40}, nil, nil)
	first, ok := r.recv(5 * time.Second)
	r.send(header{typ: stSyn, connID: 7, seq: 40}, nil, nil)
	second, ok2 := r.recv(5 * time.Second)
	if !ok || !ok2 || first.typ != stState || second.typ != stState || first.seq != second.seq || second.ack != 40 {
		t.Fatalf("answers %+v %+v", first, second)
	}
	if n := s.NumConns(); n != 1 {
		t.Fatalf("%d connections after a repeated SYN", n)
	}
	c, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// libtorrent resets with our receive id, libutp may use its own: 7 is
	// the peer's receive id, 8 ours.
	r.send(header{typ: stReset, connID: 7, seq: 41, ack: first.seq}, nil, nil)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("read after RESET: %v", err)
	}
}
