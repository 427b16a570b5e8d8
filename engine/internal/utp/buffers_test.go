package utp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

func newTestWindow(first uint16, n int) *sendWindow {
	w := &sendWindow{}
	w.reset(first)
	for i := range n {
		op := &outPacket{size: 100, tx: 1, flying: true, sentAt: time.Unix(int64(i), 0)}
		w.push(op)
		w.flight += op.size
	}
	return w
}

func TestSendWindowAckAcrossWrap(t *testing.T) {
	w := newTestWindow(65530, 10) // 65530 .. 3
	var done []uint16
	acked := w.ackUpTo(1, func(op *outPacket) { done = append(done, op.seq) })
	if acked != 800 || len(done) != 8 || done[7] != 1 || w.first != 2 || len(w.out) != 2 {
		t.Fatalf("acked %d, done %v, first %d, left %d", acked, done, w.first, len(w.out))
	}
	if w.flight != 200 || w.bytes != 200 {
		t.Fatalf("flight %d bytes %d, want 200", w.flight, w.bytes)
	}
	if got := w.ackUpTo(65000, func(*outPacket) {}); got != 0 {
		t.Fatalf("an old ack acknowledged %d bytes", got)
	}
}

func TestSendWindowSackMarksLost(t *testing.T) {
	w := newTestWindow(65534, 8) // 65534 .. 5; ack 65533 acknowledges none
	// Selectively ack 0, 1 and 2 (bit i stands for ack+2+i: 65535 is i=0).
	sack := []byte{0b1110, 0, 0, 0}
	var marked []uint16
	acked, lost := w.applySack(65533, sack, func(op *outPacket) { marked = append(marked, op.seq) })
	if acked != 300 || len(marked) != 3 || marked[0] != 0 {
		t.Fatalf("acked %d marked %v", acked, marked)
	}
	// 65534 and 65535 have three acked packets after them.
	var ls []uint16
	for _, p := range lost {
		ls = append(ls, p.seq)
	}
	if len(ls) != 2 || ls[0] != 65535 || ls[1] != 65534 {
		t.Fatalf("lost %v, want 65535, 65534", ls)
	}
	if w.flight != 500 {
		t.Fatalf("flight %d after sack, want 500", w.flight)
	}
	// Once resent, they count as lost again only when a packet sent after
	// the resend is acknowledged.
	for _, p := range lost {
		p.sentAt = time.Unix(100, 0)
	}
	if _, lost := w.applySack(65533, []byte{0b11110}, func(*outPacket) {}); len(lost) != 0 {
		t.Fatalf("resent packets lost again by an ack of older packets: %d", len(lost))
	}
	w.at(4).sentAt = time.Unix(101, 0)
	if _, lost := w.applySack(65533, []byte{0b111110}, func(*outPacket) {}); len(lost) != 2 {
		t.Fatalf("resent packets not lost again after a later packet arrived: %d", len(lost))
	}
	// A cumulative ack over sacked packets does not count them twice.
	if got := w.ackUpTo(3, func(*outPacket) {}); got != 200 {
		t.Fatalf("cumulative ack after sack acknowledged %d, want 200", got)
	}
}

func TestRecvWindowReorderAndSack(t *testing.T) {
	r := newRecvWindow(10000, 64, newBufPools(2000, 0))
	r.ack = 65533
	p := func(seq uint16) []byte { return bytes.Repeat([]byte{byte(seq)}, 10) }
	if got := r.insert(65535, p(65535)); got != outOfOrder {
		t.Fatalf("insert ahead: %v", got)
	}
	if got := r.insert(1, p(1)); got != outOfOrder {
		t.Fatalf("insert ahead: %v", got)
	}
	if got := r.insert(1, p(1)); got != duplicate {
		t.Fatalf("insert twice: %v", got)
	}
	var buf [maxSackLen]byte
	sack := r.sack(&buf)
	// Bits for 65535 (i=0) and 1 (i=2).
	if len(sack) != 4 || sack[0] != 0b101 {
		t.Fatalf("sack %x", sack)
	}
	if r.window() != 10000-20 {
		t.Fatalf("window %d", r.window())
	}
	if got := r.insert(65534, p(65534)); got != inOrder || r.ack != 65535 {
		t.Fatalf("fill the first gap: %v, ack %d", got, r.ack)
	}
	if got := r.insert(0, p(0)); got != inOrder || r.ack != 1 {
		t.Fatalf("fill the second gap: %v, ack %d", got, r.ack)
	}
	if r.sack(&buf) != nil {
		t.Fatal("sack with nothing held ahead")
	}
	out := make([]byte, 100)
	n := r.read(out)
	want := append(append(append(p(65534), p(65535)...), p(0)...), p(1)...)
	if !bytes.Equal(out[:n], want) {
		t.Fatalf("read %x", out[:n])
	}
	if got := r.insert(65000, p(0)); got != duplicate {
		t.Fatalf("old packet: %v", got)
	}
	if got := r.insert(r.ack+64, p(0)); got != dropped {
		t.Fatalf("packet past the reorder ring: %v", got)
	}
}

func TestRecvWindowCapacityAndFin(t *testing.T) {
	r := newRecvWindow(25, 16, newBufPools(2000, 0))
	r.ack = 10
	if r.insert(11, make([]byte, 20)) != inOrder {
		t.Fatal("first packet")
	}
	if r.insert(12, make([]byte, 10)) != dropped {
		t.Fatal("a packet past the capacity was taken")
	}
	if !r.fin(14) {
		t.Fatal("fin refused")
	}
	if r.fin(15) {
		t.Fatal("a second, different FIN was taken")
	}
	if r.insert(14, []byte{1}) != dropped || r.insert(15, []byte{1}) != dropped {
		t.Fatal("data at or after the FIN was taken")
	}
	r.read(make([]byte, 20))
	r.insert(13, []byte{2})
	if r.eofDone {
		t.Fatal("EOF before the gap filled")
	}
	r.insert(12, []byte{1})
	if !r.eofDone || r.ack != 14 {
		t.Fatalf("eofDone %v ack %d after the last gap filled", r.eofDone, r.ack)
	}
	if !r.readable() {
		t.Fatal("not readable at EOF")
	}
}

// TestByteQueueRing checks the queue against a plain slice through
// writes, reads and takes of random sizes that wrap around its ring and
// make it grow.
func TestByteQueueRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	q := byteQueue{limit: 100000}
	var model []byte
	next := byte(0)
	for i := range 20000 {
		switch rng.IntN(3) {
		case 0:
			p := make([]byte, rng.IntN(min(9000, 100000-len(model))+1))
			for j := range p {
				p[j] = next
				next++
			}
			q.write(p)
			model = append(model, p...)
		case 1:
			p := make([]byte, rng.IntN(9000))
			n := q.read(p)
			if n != min(len(p), len(model)) || !bytes.Equal(p[:n], model[:n]) {
				t.Fatalf("step %d: read %d bytes, want %d matching", i, n, min(len(p), len(model)))
			}
			model = model[n:]
		case 2:
			n := rng.IntN(q.len() + 1)
			got := q.appendTo([]byte{1, 2}, n)
			if !bytes.Equal(got[2:], model[:n]) {
				t.Fatalf("step %d: appendTo(%d) differs", i, n)
			}
			model = model[n:]
		}
		if q.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", i, q.len(), len(model))
		}
		if len(q.b) > 100000 {
			t.Fatalf("step %d: ring of %d bytes past its limit", i, len(q.b))
		}
	}
}
