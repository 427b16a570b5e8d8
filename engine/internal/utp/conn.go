package utp

import (
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// connState is where a connection is in its life.
type connState int

const (
	stateSynSent   connState = iota // dialed, waiting for the answer to our SYN
	stateConnected                  // open (possibly closing: see Conn.closed)
	stateDone                       // ended; removed from the socket
)

func (s connState) String() string {
	switch s {
	case stateSynSent:
		return "syn-sent"
	case stateConnected:
		return "connected"
	case stateDone:
		return "done"
	}
	return "?"
}

// Conn is one uTP connection. It implements net.Conn: reads and writes
// may run on two goroutines at once, and deadlines work as on TCP.
type Conn struct {
	s        *Socket
	key      connKey // peer address and our receive id
	raddr    *net.UDPAddr
	sendID   uint16
	incoming bool

	readReady  chan struct{} // cap 1: bytes, EOF or an error arrived
	writeReady chan struct{} // cap 1: send buffer room or an error
	connected  chan struct{} // closed when the handshake completes
	done       chan struct{} // closed when the connection ends
	rdl, wdl   deadline

	mu        sync.Mutex // guards the fields below
	st        connState
	err       error // why the connection ended
	closed    bool  // Close was called: FIN queued, no more reads or writes
	wclosed   bool  // CloseWrite was called: FIN queued, no more writes
	lingerEnd time.Time
	send      sendWindow
	recv      recvWindow
	cc        ledbat
	mtu       pathMTU
	peerMTU   uint32 // the datagram size the peer's handshake allowed; 0 once applied
	rtt       rttEstimator
	timer     connTimer
	reply     uint32 // timestamp difference we send back
	advert    int    // window we last advertised
	sackBuf   [maxSackLen]byte
	ctrlBuf   []byte
	batch     [][]byte // packets of the flush in progress
	// writerWaits says a Write is blocked for send buffer room: the read
	// goroutine wakes it to send what an acknowledgement allows, rather
	// than sending itself, so that sending and receiving run in parallel.
	writerWaits bool
}

// connTimer holds a connection's timer state, run by the socket's tick.
type connTimer struct {
	rtoAt      time.Time // retransmission timeout; zero when nothing is in flight
	timeouts   int       // in a row
	ackPending int       // data packets received and not acknowledged
	deferred   bool      // on the socket's list of deferred acks
	lastRecv   time.Time
	lastSend   time.Time
}

var _ net.Conn = (*Conn)(nil)

func newConn(s *Socket, key connKey, sendID uint16, incoming bool) *Conn {
	cfg := s.cfg
	now := time.Now()
	c := &Conn{
		s:          s,
		key:        key,
		raddr:      net.UDPAddrFromAddrPort(key.addr),
		sendID:     sendID,
		incoming:   incoming,
		readReady:  make(chan struct{}, 1),
		writeReady: make(chan struct{}, 1),
		connected:  make(chan struct{}),
		done:       make(chan struct{}),
		recv:       newRecvWindow(cfg.RecvBuffer, max(16, cfg.RecvBuffer/1000), s.pool),
		cc:         newLedbat(cfg.TargetDelay, cfg.Gain, cfg.MaxPayload, max(cfg.SendBuffer, 4*cfg.MaxPayload)),
		rtt:        newRTT(initialRTO, cfg.MinRTO, maxRTO),
		mtu:        newPathMTU(cfg.MaxPayload),
	}
	c.send.peerWnd = cfg.MaxPayload
	c.send.queue.limit = cfg.SendBuffer
	c.rdl.init()
	c.wdl.init()
	c.timer.lastRecv, c.timer.lastSend = now, now
	return c
}

// sendSynLocked starts a dialed connection.
func (c *Conn) sendSynLocked(now time.Time) {
	c.send.reset(uint16(rand.Uint32()))
	h := header{typ: stSyn, connID: c.key.id, seq: c.send.next}
	op := &outPacket{buf: appendHandshake(c.s.pool.get(0), h, maxDatagramLen-1)}
	c.send.push(op)
	c.transmitLocked(op, now)
}

// acceptSynLocked answers the SYN that opened an incoming connection.
func (c *Conn) acceptSynLocked(p packet, now time.Time) {
	c.recv.ack = p.seq
	c.send.reset(uint16(rand.Uint32()))
	c.send.peerWnd = max(int(p.wnd), c.s.cfg.MaxPayload) // libtorrent's SYN says 0
	c.reply = c.s.micro(now) - p.ts
	c.st = stateConnected
	c.peerMTU = p.maxDatagram
	close(c.connected)
	c.sendSynAnswerLocked(now)
}

// LocalAddr is the socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.s.Addr() }

// RemoteAddr is the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline makes Read fail with os.ErrDeadlineExceeded after t.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.set(t); return nil }

// SetWriteDeadline makes Write fail with os.ErrDeadlineExceeded after t.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// Read reads received bytes; it returns io.EOF after the peer's FIN.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if expired(c.rdl.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, ErrConnClosed
		case c.recv.q.len() > 0:
			if len(p) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			n := c.recv.read(p)
			c.maybeUpdateWindowLocked(time.Now())
			if c.recv.readable() {
				notify(c.readReady)
			}
			c.mu.Unlock()
			return n, nil
		case c.recv.eofDone:
			c.mu.Unlock()
			return 0, io.EOF
		case c.st == stateDone:
			c.mu.Unlock()
			return 0, c.err
		}
		c.mu.Unlock()
		select {
		case <-c.readReady:
		case <-c.rdl.wait():
		case <-c.done:
		}
	}
}

// Write queues b and sends as much as the windows allow, blocking while
// the send buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	n := 0
	for {
		c.mu.Lock()
		if c.writerWaits {
			// The read goroutine left the sending to us.
			c.writerWaits = false
			c.flushLocked(time.Now())
		}
		switch {
		case expired(c.wdl.wait()):
			c.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		case c.closed || c.wclosed:
			c.mu.Unlock()
			return n, ErrConnClosed
		case c.st == stateDone:
			c.mu.Unlock()
			return n, c.err
		}
		if room := c.s.cfg.SendBuffer - c.send.queue.len() - c.send.bytes; room > 0 && n < len(b) {
			k := min(room, len(b)-n)
			c.send.queue.write(b[n : n+k])
			n += k
			c.flushLocked(time.Now())
		}
		if n == len(b) {
			c.mu.Unlock()
			return n, nil
		}
		c.writerWaits = true
		c.mu.Unlock()
		select {
		case <-c.writeReady:
		case <-c.wdl.wait():
		case <-c.done:
		}
	}
}

// Close ends the connection without blocking, like TCP: written data and
// a FIN go on being sent in the background for at most Config.Linger,
// after which the connection is reset. Unread received data, or data
// arriving after Close, resets the connection at once.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrConnClosed
	}
	c.closed = true
	notify(c.readReady)
	notify(c.writeReady)
	switch {
	case c.st == stateDone:
		return nil
	case c.st == stateSynSent || c.recv.buffered() > 0:
		c.sendResetLocked(time.Now())
		c.finishLocked(ErrConnClosed)
		return nil
	}
	now := time.Now()
	c.lingerEnd = now.Add(c.s.cfg.Linger)
	c.flushLocked(now)
	c.maybeFinishLocked()
	return nil
}

// CloseWrite sends a FIN after the data written so far; reads go on
// until the peer's FIN. Close is still needed to free the connection.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.wclosed {
		return ErrConnClosed
	}
	c.wclosed = true
	notify(c.writeReady)
	c.flushLocked(time.Now())
	return nil
}

// abort ends the connection at once with err, telling the peer by RESET.
func (c *Conn) abort(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != stateDone {
		c.sendResetLocked(time.Now())
		c.finishLocked(err)
	}
}

// endErr is why the connection ended.
func (c *Conn) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// maybeFinishLocked ends a closed connection once its FIN is acknowledged
// and the peer's FIN arrived.
func (c *Conn) maybeFinishLocked() {
	if c.closed && c.send.finAcked && c.recv.eofDone {
		c.finishLocked(ErrConnClosed)
	}
}

// finishLocked ends the connection: waiters wake with err, buffers are
// freed and the socket forgets it.
func (c *Conn) finishLocked(err error) {
	if c.st == stateDone {
		return
	}
	c.st = stateDone
	c.err = err
	close(c.done)
	c.rdl.stop()
	c.wdl.stop()
	for _, op := range c.send.out {
		c.s.pool.put(op.buf)
	}
	c.send.out = nil
	c.send.bytes, c.send.flight = 0, 0
	c.send.queue.release()
	if c.closed {
		c.recv.release()
	} else {
		// Keep bytes already in order for Read after a FIN; drop the rest.
		c.recv.releaseAhead()
	}
	c.s.removeConn(c)
	c.s.log.Debug("utp: connection ended", "peer", c.key.addr, "id", c.key.id, "err", err)
}

func (c *Conn) sendResetLocked(now time.Time) {
	h := header{typ: stReset, connID: c.sendID, ts: c.s.micro(now), tsDiff: c.reply, seq: c.send.next, ack: c.recv.ack}
	c.ctrlBuf = appendPacket(c.ctrlBuf[:0], h, nil, nil)
	c.s.writeTo(c.ctrlBuf, c.raddr)
}

// sendStateLocked sends an acknowledgement with our window and, when
// packets arrived out of order, a selective ack.
func (c *Conn) sendStateLocked(now time.Time) {
	wnd := c.recv.window()
	h := header{typ: stState, connID: c.sendID, ts: c.s.micro(now), tsDiff: c.reply,
		wnd: uint32(wnd), seq: c.send.next, ack: c.recv.ack}
	c.ctrlBuf = appendPacket(c.ctrlBuf[:0], h, c.recv.sack(&c.sackBuf), nil)
	c.s.writeTo(c.ctrlBuf, c.raddr)
	c.timer.ackPending = 0
	c.timer.lastSend = now
	c.advert = wnd
}

// sendSynAnswerLocked sends the STATE that answers the peer's SYN: an
// acknowledgement that also says how long a datagram we read.
func (c *Conn) sendSynAnswerLocked(now time.Time) {
	h := header{typ: stState, connID: c.sendID, ts: c.s.micro(now), tsDiff: c.reply,
		wnd: uint32(c.recv.window()), seq: c.send.next, ack: c.recv.ack}
	c.ctrlBuf = appendHandshake(c.ctrlBuf[:0], h, maxDatagramLen-1)
	c.s.writeTo(c.ctrlBuf, c.raddr)
	c.timer.ackPending = 0
	c.timer.lastSend = now
	c.advert = int(h.wnd)
}

// sendDeferredAck sends the acknowledgement deferred until the socket was
// drained, unless one went out meanwhile.
func (c *Conn) sendDeferredAck() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer.deferred = false
	if c.timer.ackPending > 0 && c.st == stateConnected {
		c.sendStateLocked(time.Now())
	}
}

// maybeUpdateWindowLocked tells the peer about window freed by Read when
// it was nearly closed or a quarter of the buffer opened.
func (c *Conn) maybeUpdateWindowLocked(now time.Time) {
	if c.st != stateConnected {
		return
	}
	wnd := c.recv.window()
	mss := c.s.cfg.MaxPayload
	if (c.advert < 2*mss && wnd >= 2*mss) || wnd-c.advert >= c.s.cfg.RecvBuffer/4 {
		c.sendStateLocked(now)
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func expired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
