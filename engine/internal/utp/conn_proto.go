package utp

import "time"

// handle processes one packet for the connection, on the read goroutine.
// It reports whether the connection now owes an acknowledgement that the
// socket should send once it is drained.
func (c *Conn) handle(p packet, now time.Time) (deferAck bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == stateDone {
		return
	}
	switch p.typ {
	case stReset:
		if c.st == stateSynSent {
			c.finishLocked(ErrRefused)
		} else {
			c.finishLocked(ErrReset)
		}
		return false
	case stSyn:
		// Our answer to the SYN was lost: answer again.
		if c.incoming {
			c.sendSynAnswerLocked(now)
		}
		return false
	}
	if c.st == stateSynSent {
		if p.ack != c.send.first {
			return false
		}
		// The answer's seq_nr is the first the peer will send.
		c.recv.ack = p.seq - 1
		c.st = stateConnected
		c.peerMTU = p.maxDatagram
		close(c.connected)
	}
	if seqLess(c.send.next-1, p.ack) {
		return false // acknowledges what we never sent: forged or broken
	}
	c.timer.lastRecv = now
	// The peer answers: timeouts in a row (a lost probe of a closed
	// window, say) do not mean it is gone.
	c.timer.timeouts = 0
	c.reply = c.s.micro(now) - p.ts
	c.send.peerWnd = int(min(p.wnd, 1<<30))
	if p.tsDiff != 0 {
		c.cc.addDelaySample(p.tsDiff, now)
	}
	c.processAckLocked(p, now)

	ackNow := false // out of order, duplicate or FIN: acknowledge at once
	switch p.typ {
	case stData:
		if len(p.payload) == 0 {
			break
		}
		if c.closed {
			if !seqLess(c.recv.ack, p.seq) {
				ackNow = true // a resend of what we had: ack it again
				break
			}
			// New data nobody will read: tell the peer.
			c.sendResetLocked(now)
			c.finishLocked(ErrConnClosed)
			return false
		}
		switch c.recv.insert(p.seq, p.payload) {
		case inOrder:
			// Packets in order are acknowledged once the socket is
			// drained (or every second one when the socket cannot tell),
			// or by data we send, or at the latest by the next tick.
			c.timer.ackPending++
			ackNow = c.recv.ahead > 0
			notify(c.readReady)
		default:
			ackNow = true
		}
	case stFin:
		if c.recv.fin(p.seq) {
			notify(c.readReady)
		}
		ackNow = true
	}
	if c.writerWaits {
		notify(c.writeReady) // it sends (see Conn.writerWaits)
	} else {
		c.flushLocked(now)
	}
	if c.st == stateConnected {
		switch {
		case ackNow || c.timer.ackPending >= maxDeferredAcks:
			c.sendStateLocked(now)
		case c.timer.ackPending == 0:
		case !c.s.drainAware:
			if c.timer.ackPending >= 2 {
				c.sendStateLocked(now)
			}
		case !c.timer.deferred:
			c.timer.deferred = true
			deferAck = true
		}
	}
	c.maybeFinishLocked()
	return deferAck
}

// maxDeferredAcks is the most packets in order acknowledged by one ack.
const maxDeferredAcks = 32

// processAckLocked applies the packet's cumulative and selective acks:
// frees acknowledged packets, samples the round trip, feeds the congestion
// controller and resends packets found lost.
func (c *Conn) processAckLocked(p packet, now time.Time) {
	w := &c.send
	prevFlight := w.flight
	var minRTT time.Duration = -1
	done := func(op *outPacket) {
		if op.tx == 1 {
			d := now.Sub(op.sentAt)
			if minRTT < 0 || d < minRTT {
				minRTT = d
			}
		}
		if op.resend {
			op.resend = false
			c.send.resends--
		}
		if op.fin {
			c.send.finAcked = true
		}
		if op.probe {
			op.probe = false
			if c.mtu.arrived(op.seq) {
				c.cc.setMSS(c.mtu.size)
			}
		}
	}
	acked := 0
	progress := false
	if seqLess(w.lastAcked(), p.ack) {
		acked = w.ackUpTo(p.ack, func(op *outPacket) {
			done(op)
			c.s.pool.put(op.buf)
			op.buf = nil
		})
		progress = true
		c.send.dupAcks = 0
		c.timer.timeouts = 0
	} else if p.typ == stState && p.ack == w.lastAcked() && len(w.out) > 0 {
		c.send.dupAcks++
	}
	var lost []*outPacket
	if p.sack != nil && len(w.out) > 0 && p.ack == w.lastAcked() {
		var a int
		a, lost = w.applySack(p.ack, p.sack, done)
		acked += a
	}
	if c.send.dupAcks >= dupAckLimit && len(w.out) > 0 && !w.out[0].fast && w.out[0].tx > 0 {
		lost = append(lost, w.out[0])
	}
	for _, op := range lost {
		if op.resend || op.sacked {
			continue
		}
		op.fast = true
		if !c.probeLostLocked(op) {
			c.cc.onLoss(op.seq, w.next)
		}
		c.markResendLocked(op)
	}
	if minRTT >= 0 {
		c.rtt.sample(minRTT)
	}
	if acked > 0 {
		c.cc.onAck(acked, prevFlight)
		notify(c.writeReady)
	}
	if progress {
		c.timer.rtoAt = time.Time{}
		if len(w.out) > 0 {
			c.timer.rtoAt = now.Add(c.rtt.rto)
		}
	}
}

// probeLostLocked reports whether op, deemed lost, was a path MTU probe,
// whose loss lowers the probing ceiling and says nothing about congestion.
func (c *Conn) probeLostLocked(op *outPacket) bool {
	if !op.probe {
		return false
	}
	op.probe = false
	return c.mtu.lost(op.seq)
}

func (c *Conn) markResendLocked(op *outPacket) {
	if op.resend || op.sacked {
		return
	}
	op.resend = true
	c.send.resends++
	c.send.land(op)
}

// flushLocked sends what the congestion and peer windows allow: lost
// packets first, then new data from the queue, then our FIN once Close
// was called and everything before it went out. The packets of one flush
// leave in one batch (see Socket.writeBatch).
func (c *Conn) flushLocked(now time.Time) {
	if c.st != stateConnected {
		return
	}
	c.batch = c.batch[:0]
	defer c.sendBatchLocked()
	w := &c.send
	win := min(c.cc.window(), c.send.peerWnd)
	if c.send.resends > 0 {
		for _, op := range w.out {
			if !op.resend {
				continue
			}
			if w.flight > 0 && w.flight+op.size > win {
				return
			}
			op.resend = false
			c.send.resends--
			c.prepareLocked(op, now)
		}
	}
	if c.peerMTU != 0 && c.send.queue.len() > 0 {
		c.mtu.setCeiling(probeCeiling(&c.s.cfg, c.key.addr, c.peerMTU, c.mtu.size))
		c.peerMTU = 0
	}
	for c.send.queue.len() > 0 && len(w.out) < maxOutPackets {
		n := min(c.mtu.size, c.send.queue.len())
		probe := false
		// A probe takes what is queued, up to the size the search wants:
		// a sender whose writes are smaller (the engine writes a block
		// at a time) still grows its packets to their size.
		if p := min(c.mtu.next(), c.send.queue.len()); p >= c.mtu.size+probeStep && c.probeFitsLocked(p) {
			n, probe = p, true
		}
		if room := win - w.flight; room < n && !probe {
			if w.flight > 0 || room <= 0 {
				return
			}
			n = room // a small peer window with nothing in flight
		}
		h := header{typ: stData, connID: c.sendID, seq: w.next}
		op := &outPacket{buf: c.send.queue.appendTo(appendPacket(c.s.pool.get(headerLen+n), h, nil, nil), n), size: n, probe: probe}
		w.push(op)
		if probe {
			c.mtu.sent(op.seq, n)
		}
		c.prepareLocked(op, now)
		notify(c.writeReady)
	}
	if (c.closed || c.wclosed) && !c.send.finSent && c.send.queue.len() == 0 && len(w.out) < maxOutPackets {
		h := header{typ: stFin, connID: c.sendID, seq: w.next}
		op := &outPacket{buf: appendPacket(c.s.pool.get(headerLen), h, nil, nil), fin: true}
		w.push(op)
		c.send.finSent = true
		c.prepareLocked(op, now)
	}
}

// probeFitsLocked reports whether a probe of n bytes may go now: where
// a packet of the current size would (so a probe may pass the congestion
// window by the difference: with a backlog the window opens a few
// packets at a time and would seldom have room for a far larger one),
// within the peer's window, and within a congestion window that could
// hold it.
func (c *Conn) probeFitsLocked(n int) bool {
	w := &c.send
	cwnd := c.cc.window()
	return cwnd-w.flight >= c.mtu.size && w.peerWnd-w.flight >= n && cwnd >= n
}

// transmitLocked sends op alone, stamped with the current time, window
// and ack.
func (c *Conn) transmitLocked(op *outPacket, now time.Time) {
	c.batch = c.batch[:0]
	c.prepareLocked(op, now)
	c.sendBatchLocked()
}

// prepareLocked stamps op with the current time, window and ack, counts it
// in flight and adds it to the batch to send.
func (c *Conn) prepareLocked(op *outPacket, now time.Time) {
	wnd := c.recv.window()
	stampHeader(op.buf, c.s.micro(now), c.reply, uint32(wnd), c.recv.ack)
	op.sentAt = now
	op.tx++
	if !op.flying && !op.sacked {
		op.flying = true
		c.send.flight += op.size
	}
	c.batch = append(c.batch, op.buf)
	c.timer.ackPending = 0
	c.timer.lastSend = now
	c.advert = wnd
	if c.timer.rtoAt.IsZero() {
		c.timer.rtoAt = now.Add(c.rtt.rto)
	}
}

func (c *Conn) sendBatchLocked() {
	if len(c.batch) > 0 {
		c.s.writeBatch(c.batch, c.raddr)
		clear(c.batch)
		c.batch = c.batch[:0]
	}
}

// tick runs the connection's timers: delayed acks, retransmission
// timeouts, zero-window probes, keep-alives, idle timeout and linger.
func (c *Conn) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == stateDone {
		return
	}
	cfg := &c.s.cfg
	t := &c.timer
	if c.closed && now.After(c.lingerEnd) && !c.lingerEnd.IsZero() {
		if !c.send.finAcked {
			c.sendResetLocked(now)
		}
		c.finishLocked(ErrConnClosed)
		return
	}
	if now.Sub(t.lastRecv) > cfg.IdleTimeout {
		c.sendResetLocked(now)
		c.finishLocked(ErrTimedOut)
		return
	}
	if t.ackPending > 0 && c.st == stateConnected {
		c.sendStateLocked(now)
	}
	w := &c.send
	if !t.rtoAt.IsZero() && !now.Before(t.rtoAt) {
		if len(w.out) == 0 {
			t.rtoAt = time.Time{}
		} else {
			c.timeoutLocked(now)
			if c.st == stateDone {
				return
			}
		}
	}
	if c.st != stateConnected {
		return
	}
	// Zero-window probe: the peer's window is too small for anything and
	// nothing in flight will bring an update.
	if len(w.out) == 0 && c.send.queue.len() > 0 && c.send.peerWnd < min(c.send.queue.len(), cfg.MaxPayload) &&
		now.Sub(t.lastSend) >= c.rtt.rto {
		c.send.peerWnd = cfg.MaxPayload
		c.flushLocked(now)
	}
	if now.Sub(t.lastSend) >= cfg.KeepAlive {
		c.sendStateLocked(now)
	}
}

// timeoutLocked handles a retransmission timeout: back off, shrink the
// window to its minimum and resend everything not acknowledged.
func (c *Conn) timeoutLocked(now time.Time) {
	t := &c.timer
	t.timeouts++
	limit := c.s.cfg.MaxTimeouts
	if c.st == stateSynSent {
		limit = synRetries
	}
	if t.timeouts >= limit {
		c.sendResetLocked(now)
		c.finishLocked(ErrTimedOut)
		return
	}
	c.rtt.backoff()
	c.cc.onTimeout(c.send.next)
	// Only the oldest packet is known lost; a probe sent after it (a
	// timeout on a loaded machine, say) is judged when it is acknowledged
	// or found lost later.
	if len(c.send.out) > 0 {
		c.probeLostLocked(c.send.out[0])
	}
	for _, op := range c.send.out {
		op.fast = false
		c.markResendLocked(op)
	}
	t.rtoAt = now.Add(c.rtt.rto)
	if c.st == stateSynSent {
		op := c.send.out[0]
		op.resend = false
		c.send.resends--
		c.transmitLocked(op, now)
		return
	}
	c.flushLocked(now)
}
