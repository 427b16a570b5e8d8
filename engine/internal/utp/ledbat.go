package utp

import "time"

// ledbat is the congestion controller of one connection (RFC 6817 as BEP
// 29 applies it): the window grows while the measured queuing delay is
// below the target and shrinks when it is above (multiplicatively, as in
// LEDBAT++), so uTP yields to TCP on a shared bottleneck. It adds slow
// start until the first loss or until the queuing delay reaches half the
// target, halves the window on loss (once per window of data) and drops
// it to its minimum on a timeout. It is a plain value used under its
// connection's lock.
type ledbat struct {
	target   uint32 // target queuing delay, microseconds
	gain     int    // most bytes the window grows by per round trip
	mss      int    // largest payload of one packet
	minWnd   int    // the window never drops below this
	maxWnd   int    // nor grows above this
	cwnd     int    // congestion window, bytes
	ssthresh int
	slow     bool // in slow start

	base    baseDelay
	recent  [3]uint32 // the latest one-way delay samples
	nrecent int
	// lossSeq is the sequence number sent last when the window was last
	// cut: losses of packets up to it belong to the same event.
	lossSeq uint16
	cut     bool // lossSeq is valid
}

func newLedbat(target time.Duration, gain, mss, maxWnd int) ledbat {
	return ledbat{
		target:   uint32(target / time.Microsecond),
		gain:     gain,
		mss:      mss,
		minWnd:   2 * mss,
		maxWnd:   maxWnd,
		cwnd:     2 * mss,
		ssthresh: maxWnd,
		slow:     true,
	}
}

// window is the number of payload bytes that may be in flight.
func (l *ledbat) window() int { return l.cwnd }

// queuingDelay is the current delay above the base delay, microseconds.
func (l *ledbat) queuingDelay() uint32 {
	if l.nrecent == 0 {
		return 0
	}
	cur := l.recent[0]
	for _, s := range l.recent[1:min(l.nrecent, len(l.recent))] {
		if int32(s-cur) < 0 {
			cur = s
		}
	}
	b, ok := l.base.min()
	if !ok || int32(cur-b) < 0 {
		return 0
	}
	return cur - b
}

// addDelaySample records a one-way delay sample (the peer's timestamp
// difference: its clock offset plus the path delay) taken at now.
func (l *ledbat) addDelaySample(sample uint32, now time.Time) {
	l.base.add(sample, now)
	l.recent[l.nrecent%len(l.recent)] = sample
	l.nrecent++
	if l.nrecent >= 2*len(l.recent) {
		l.nrecent = len(l.recent)
	}
}

// onAck adjusts the window for acked newly acknowledged payload bytes;
// flight is the number of bytes that were in flight before the ack.
//
// Below the target the window grows by at most gain bytes per round trip,
// in proportion to the distance from the target (RFC 6817, BEP 29). Above
// it the window shrinks multiplicatively, by the fraction the delay
// exceeds the target per round trip (at most half), as LEDBAT++ does:
// BEP 29's linear decrease of a few kilobytes per round trip would take
// tens of seconds to give back a large window to a TCP flow.
func (l *ledbat) onAck(acked, flight int) {
	if acked <= 0 {
		return
	}
	qd := l.queuingDelay()
	if l.slow && qd > l.target/2 {
		l.slow = false
		l.ssthresh = l.cwnd
	}
	if qd > l.target {
		frac := min(float64(qd-l.target)/float64(l.target), 0.5)
		l.cwnd -= int(frac * float64(acked))
		l.slow = false
		l.clamp()
		return
	}
	// An application-limited sender must not grow a window it does not use.
	if flight+2*l.mss < l.cwnd {
		return
	}
	if l.slow && l.cwnd < l.ssthresh {
		l.cwnd += acked
	} else {
		off := int64(l.target) - int64(qd) // in (0, target]
		delta := int64(l.gain) * off * int64(acked) / int64(l.target) / int64(l.cwnd)
		if delta == 0 && off > 0 {
			delta = 1
		}
		l.cwnd += int(delta)
		l.slow = false
	}
	l.clamp()
}

// onLoss halves the window for a loss of packet seq, once per window of
// data: next is the sequence number the connection would send next.
func (l *ledbat) onLoss(seq, next uint16) {
	if l.cut && !seqLess(l.lossSeq, seq) {
		return
	}
	l.cut, l.lossSeq = true, next-1
	l.cwnd /= 2
	l.slow = false
	l.ssthresh = max(l.cwnd, l.minWnd)
	l.clamp()
}

// onTimeout drops the window to its minimum and restarts slow start up to
// half the old window.
func (l *ledbat) onTimeout(next uint16) {
	l.ssthresh = max(l.cwnd/2, l.minWnd)
	l.cwnd = l.minWnd
	l.slow = true
	l.cut, l.lossSeq = true, next-1
}

// setMSS follows the packet size as path MTU discovery grows it: the
// window's floor stays two packets and its ceiling at least four.
func (l *ledbat) setMSS(mss int) {
	l.mss = mss
	l.minWnd = 2 * mss
	l.maxWnd = max(l.maxWnd, 4*mss)
	l.clamp()
}

func (l *ledbat) clamp() {
	l.cwnd = min(max(l.cwnd, l.minWnd), l.maxWnd)
}

// baseDelay keeps the minimum delay sample of each of the last
// baseHistory minutes; their minimum is the base delay (RFC 6817's
// BASE_HISTORY of 10 minutes), which follows route changes and forgets a
// clock that drifted.
type baseDelay struct {
	mins  [baseHistory]uint32
	n     int       // buckets in use
	start time.Time // when the newest bucket began
}

const baseHistory = 10

func (b *baseDelay) add(s uint32, now time.Time) {
	if b.n == 0 {
		b.mins[0], b.n, b.start = s, 1, now
		return
	}
	if now.Sub(b.start) >= time.Minute {
		copy(b.mins[1:], b.mins[:baseHistory-1])
		b.mins[0], b.start = s, now
		b.n = min(b.n+1, baseHistory)
		return
	}
	if int32(s-b.mins[0]) < 0 {
		b.mins[0] = s
	}
}

// min is the base delay; ok is false before the first sample.
func (b *baseDelay) min() (uint32, bool) {
	if b.n == 0 {
		return 0, false
	}
	m := b.mins[0]
	for _, s := range b.mins[1:b.n] {
		if int32(s-m) < 0 {
			m = s
		}
	}
	return m, true
}

// rttEstimator is the RFC 6298 round-trip estimator with exponential
// backoff of the retransmission timeout.
type rttEstimator struct {
	srtt, rttvar time.Duration
	rto          time.Duration
	minRTO       time.Duration
	maxRTO       time.Duration
	has          bool
}

func newRTT(initial, minRTO, maxRTO time.Duration) rttEstimator {
	return rttEstimator{rto: initial, minRTO: minRTO, maxRTO: maxRTO}
}

// sample records the round trip time of a packet sent once.
func (r *rttEstimator) sample(d time.Duration) {
	if d < 0 {
		return
	}
	if !r.has {
		r.srtt, r.rttvar, r.has = d, d/2, true
	} else {
		diff := r.srtt - d
		if diff < 0 {
			diff = -diff
		}
		r.rttvar = (3*r.rttvar + diff) / 4
		r.srtt = (7*r.srtt + d) / 8
	}
	r.rto = min(max(r.srtt+4*r.rttvar, r.minRTO), r.maxRTO)
}

// backoff doubles the timeout after a retransmission timeout.
func (r *rttEstimator) backoff() { r.rto = min(2*r.rto, r.maxRTO) }
