package utp

// recvWindow is the receiving half of a connection: the in-order bytes
// not yet read, the packets that arrived ahead of a gap, and the end of
// stream. Memory is capped by capacity: a packet that would take the
// buffered bytes past it is dropped (the peer sends it again once we
// advertise room). It is a plain value used under its connection's lock.
type recvWindow struct {
	ack      uint16 // newest sequence number received in order
	q        byteQueue
	capacity int
	pool     *bufPools

	slots      []inSlot // ring indexed by seq & (len-1)
	ahead      int      // packets held in slots
	aheadBytes int

	eof     bool   // a FIN arrived
	eofSeq  uint16 // its sequence number
	eofDone bool   // everything up to the FIN arrived
}

type inSlot struct {
	buf []byte
	ok  bool
}

// insertResult says what became of an incoming data packet.
type insertResult int

const (
	inOrder    insertResult = iota // appended to the readable bytes
	outOfOrder                     // held until the gap before it fills
	duplicate                      // already had it
	dropped                        // no room or too far ahead
)

// newRecvWindow holds at most capacity bytes and reorders at most
// maxAhead packets (rounded up to a power of two).
func newRecvWindow(capacity, maxAhead int, pool *bufPools) recvWindow {
	n := 16
	for n < maxAhead {
		n *= 2
	}
	return recvWindow{capacity: capacity, pool: pool, slots: make([]inSlot, n), q: byteQueue{limit: capacity}}
}

// buffered is the number of payload bytes held, readable or not.
func (r *recvWindow) buffered() int { return r.q.len() + r.aheadBytes }

// window is the free space we advertise to the peer.
func (r *recvWindow) window() int { return max(r.capacity-r.buffered(), 0) }

// readable reports whether Read has bytes or the end of stream to return.
func (r *recvWindow) readable() bool { return r.q.len() > 0 || r.eofDone }

// insert takes a data packet's payload (copied as needed).
func (r *recvWindow) insert(seq uint16, payload []byte) insertResult {
	if r.eof && !seqLess(seq, r.eofSeq) {
		return dropped
	}
	d := int(uint16(seq - r.ack))
	switch {
	case d == 0 || d >= 0x8000:
		return duplicate
	case d >= len(r.slots):
		return dropped
	}
	if r.buffered()+len(payload) > r.capacity {
		return dropped
	}
	if d > 1 {
		s := &r.slots[int(seq)&(len(r.slots)-1)]
		if s.ok {
			return duplicate
		}
		s.ok = true
		s.buf = append(r.pool.get(len(payload)), payload...)
		r.ahead++
		r.aheadBytes += len(payload)
		return outOfOrder
	}
	r.q.write(payload)
	r.ack = seq
	for r.ahead > 0 {
		s := &r.slots[int(r.ack+1)&(len(r.slots)-1)]
		if !s.ok {
			break
		}
		r.q.write(s.buf)
		r.aheadBytes -= len(s.buf)
		r.ahead--
		r.pool.put(s.buf)
		*s = inSlot{}
		r.ack++
	}
	r.checkEOF()
	return inOrder
}

// fin records the end of stream at seq; it reports false for a FIN that
// contradicts an earlier one (ignored).
func (r *recvWindow) fin(seq uint16) bool {
	if r.eof {
		return seq == r.eofSeq
	}
	if d := uint16(seq - r.ack); d == 0 || d >= 0x8000 || int(d) > len(r.slots) {
		return false
	}
	r.eof, r.eofSeq = true, seq
	// Packets held past the FIN are never read; release frees them.
	r.checkEOF()
	return true
}

func (r *recvWindow) checkEOF() {
	if r.eof && !r.eofDone && r.ack+1 == r.eofSeq {
		r.ack = r.eofSeq
		r.eofDone = true
	}
}

// sack builds the selective ack bitmask for the packets held ahead of the
// gap into dst and returns it (nil when none is held).
func (r *recvWindow) sack(dst *[maxSackLen]byte) []byte {
	if r.ahead == 0 {
		return nil
	}
	clear(dst[:])
	last := -1
	for i := range min(maxSackLen*8, len(r.slots)-2) {
		if r.slots[int(r.ack+2+uint16(i))&(len(r.slots)-1)].ok {
			dst[i/8] |= 1 << (i % 8)
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	n := (last/8 + 4) / 4 * 4
	return dst[:n]
}

// read moves readable bytes into p.
func (r *recvWindow) read(p []byte) int { return r.q.read(p) }

// release frees every buffer.
func (r *recvWindow) release() {
	r.releaseAhead()
	r.q.release()
}

// releaseAhead frees the packets held ahead of a gap.
func (r *recvWindow) releaseAhead() {
	for i := range r.slots {
		if r.slots[i].ok {
			r.pool.put(r.slots[i].buf)
		}
		r.slots[i] = inSlot{}
	}
	r.ahead, r.aheadBytes = 0, 0
}
