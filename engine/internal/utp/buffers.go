package utp

import (
	"sync"
	"time"
)

// byteQueue is a FIFO of bytes in a ring buffer that grows as needed (by
// doubling, up to limit when one is set) and is reused once drained, so
// bytes are copied in once and out once, never moved within it.
type byteQueue struct {
	b     []byte // the ring; len(b) is its capacity
	r, n  int    // offset of the first byte, number of bytes
	limit int    // the most bytes the queue is expected to hold; 0 for no hint
}

func (q *byteQueue) len() int { return q.n }

func (q *byteQueue) write(p []byte) {
	if q.n+len(p) > len(q.b) {
		q.grow(q.n + len(p))
	}
	w := q.r + q.n
	if w >= len(q.b) {
		w -= len(q.b)
	}
	k := copy(q.b[w:], p)
	copy(q.b, p[k:])
	q.n += len(p)
}

// grow makes room for need bytes, keeping the queued ones in order.
func (q *byteQueue) grow(need int) {
	size := 2 * len(q.b)
	if q.limit > 0 {
		size = min(size, q.limit)
	}
	nb := make([]byte, max(size, need, 4096))
	n := q.read(nb[:q.n])
	q.b, q.r, q.n = nb, 0, n
}

// read moves up to len(p) bytes into p.
func (q *byteQueue) read(p []byte) int {
	n := min(len(p), q.n)
	k := copy(p[:n], q.b[q.r:])
	copy(p[k:n], q.b)
	q.discard(n)
	return n
}

// appendTo appends the first n queued bytes to dst and removes them.
func (q *byteQueue) appendTo(dst []byte, n int) []byte {
	end := q.r + n
	if end <= len(q.b) {
		dst = append(dst, q.b[q.r:end]...)
	} else {
		dst = append(dst, q.b[q.r:]...)
		dst = append(dst, q.b[:end-len(q.b)]...)
	}
	q.discard(n)
	return dst
}

func (q *byteQueue) discard(n int) {
	q.r += n
	if q.r >= len(q.b) {
		q.r -= len(q.b)
	}
	q.n -= n
	if q.n == 0 {
		q.r = 0
	}
}

// release drops the storage.
func (q *byteQueue) release() { q.b, q.r, q.n = nil, 0, 0 }

// bufPool holds packet-sized buffers for outgoing packets and out-of-order
// payloads, so a busy connection allocates nothing per packet.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any { b := make([]byte, 0, size); return &b }
	return bp
}

func (bp *bufPool) get() []byte { return (*bp.p.Get().(*[]byte))[:0] }

func (bp *bufPool) put(b []byte) {
	if cap(b) != bp.size {
		return
	}
	b = b[:0]
	bp.p.Put(&b)
}

// bufPools holds the packet buffers of a socket: small ones for packets
// of up to Config.MaxPayload and, when path MTU discovery may grow
// packets beyond it, large ones for the rest.
type bufPools struct{ small, large *bufPool }

func newBufPools(small, large int) *bufPools {
	p := &bufPools{small: newBufPool(small)}
	if large > small {
		p.large = newBufPool(large)
	}
	return p
}

// get returns an empty buffer with room for n bytes (from a pool when
// one fits).
func (p *bufPools) get(n int) []byte {
	switch {
	case n <= p.small.size:
		return p.small.get()
	case p.large != nil && n <= p.large.size:
		return p.large.get()
	}
	return make([]byte, 0, n)
}

// put gives b back to the pool it came from, if any.
func (p *bufPools) put(b []byte) {
	if p.large != nil && cap(b) == p.large.size {
		p.large.put(b)
		return
	}
	p.small.put(b)
}

// outPacket is a sent packet kept until it is acknowledged.
type outPacket struct {
	buf    []byte // the encoded packet, header first
	seq    uint16
	size   int // payload bytes
	sentAt time.Time
	tx     int  // transmissions so far
	sacked bool // selectively acknowledged
	resend bool // lost: send again when the window allows
	flying bool // counted in the sender's flight
	fast   bool // already resent for duplicate or selective acks
	fin    bool
	probe  bool // a path MTU probe whose fate is not known yet
}

// sendWindow is the sending half of a connection: the bytes written and
// not yet sent, and the sequence of packets sent and not yet
// acknowledged, oldest first: out[i] has sequence number first+i. It is a
// plain value used under its connection's lock.
type sendWindow struct {
	out    []*outPacket
	first  uint16 // sequence number of out[0]; next when out is empty
	next   uint16 // sequence number of the next packet
	flight int    // payload bytes counted in flight
	bytes  int    // payload bytes held in out

	queue    byteQueue // written, not yet packetized
	resends  int       // packets in out marked resend
	dupAcks  int       // duplicate acks in a row
	peerWnd  int       // the peer's advertised window
	finSent  bool
	finAcked bool
}

func (w *sendWindow) reset(seq uint16) { w.first, w.next = seq, seq }

// lastAcked is the newest cumulatively acknowledged sequence number.
func (w *sendWindow) lastAcked() uint16 { return w.first - 1 }

func (w *sendWindow) push(p *outPacket) {
	p.seq = w.next
	w.next++
	w.out = append(w.out, p)
	w.bytes += p.size
}

func (w *sendWindow) at(seq uint16) *outPacket {
	i := int(uint16(seq - w.first))
	if i >= len(w.out) {
		return nil
	}
	return w.out[i]
}

func (w *sendWindow) land(p *outPacket) {
	if p.flying {
		p.flying = false
		w.flight -= p.size
	}
}

// ackUpTo removes the packets up to and including ack and calls done for
// each (to sample the round trip and free the buffer). It returns the
// payload bytes newly acknowledged.
func (w *sendWindow) ackUpTo(ack uint16, done func(*outPacket)) int {
	n := int(uint16(ack-w.first)) + 1
	if n > len(w.out) {
		return 0
	}
	acked := 0
	for _, p := range w.out[:n] {
		if !p.sacked {
			acked += p.size
		}
		w.land(p)
		w.bytes -= p.size
		done(p)
	}
	clear(w.out[:n])
	w.out = w.out[n:]
	if len(w.out) == 0 {
		w.out = w.out[:0:0]
	}
	w.first += uint16(n)
	return acked
}

// applySack marks the packets a selective ack names as received (calling
// done for each newly marked one) and returns the payload bytes newly
// acknowledged and the packets now deemed lost: unacknowledged ones not
// already queued for resending, with at least dupAckLimit acknowledged
// packets after them, and last sent before the newest packet this ack
// covers was sent (so a resent packet is deemed lost again only when
// something sent after the resend has arrived).
func (w *sendWindow) applySack(ack uint16, sack []byte, done func(*outPacket)) (acked int, lost []*outPacket) {
	top := -1
	var newest time.Time
	for i := range len(sack) * 8 {
		if sack[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		p := w.at(ack + 2 + uint16(i))
		if p == nil {
			break
		}
		top = i
		if p.sentAt.After(newest) {
			newest = p.sentAt
		}
		if !p.sacked {
			p.sacked = true
			w.land(p)
			acked += p.size
			done(p)
		}
	}
	if top < 0 {
		return acked, nil
	}
	count := 0
	for i := int(uint16(ack+2-w.first)) + top; i >= 0 && i < len(w.out); i-- {
		p := w.out[i]
		if p.sacked {
			count++
			continue
		}
		if count >= dupAckLimit && !p.resend && p.tx > 0 && p.sentAt.Before(newest) {
			lost = append(lost, p)
		}
	}
	return acked, lost
}

// dupAckLimit is the number of duplicate or later acknowledgements that
// mark a packet lost (fast retransmit).
const dupAckLimit = 3
