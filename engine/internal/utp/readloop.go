package utp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// readLoop reads the socket until it is closed. On a real UDP socket it
// reads without blocking until the socket is drained and only then sends
// the acknowledgements it deferred (one per connection per burst, as
// libtorrent does); on any other PacketConn it acknowledges every second
// packet and leaves the rest to the timer.
func (s *Socket) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, maxDatagramLen)
	if sc, ok := s.pc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.drainAware = true
			s.readRaw(rc, buf)
			return
		}
	}
	errs := 0
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if s.readFailed(err, &errs) {
				return
			}
			continue
		}
		errs = 0
		if ap, ok := addrPortOf(from); ok {
			s.dispatch(buf[:n], ap, from, time.Now())
		}
	}
}

// readRaw reads with non-blocking receive calls inside the runtime's
// poller, flushing deferred acks whenever the socket runs dry. Where the
// kernel offers UDP receive offload (Linux UDP_GRO), one call may return
// several datagrams of one peer glued together, with their size in a
// control message; they are split again here.
func (s *Socket) readRaw(rc syscall.RawConn, buf []byte) {
	gro := enableGRO(rc)
	oob := make([]byte, 64)
	errs := 0
	for {
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				var (
					n, seg int
					sa     syscall.Sockaddr
					err    error
				)
				if gro {
					var oobn int
					n, oobn, _, sa, err = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_DONTWAIT)
					if err == nil {
						seg = groSegment(oob[:oobn])
					}
				} else {
					n, sa, err = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
				}
				switch {
				case err == syscall.EAGAIN:
					s.flushDeferredAcks()
					return false
				case err == syscall.EINTR:
					continue
				case err != nil:
					rerr = err
					return true
				}
				errs = 0
				var ap netip.AddrPort
				switch sa := sa.(type) {
				case *syscall.SockaddrInet4:
					ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
				case *syscall.SockaddrInet6:
					ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
				default:
					continue
				}
				now := time.Now()
				if seg <= 0 || seg >= n {
					s.dispatch(buf[:n], ap, nil, now)
					continue
				}
				for b := buf[:n]; len(b) > 0; {
					k := min(seg, len(b))
					s.dispatch(b[:k], ap, nil, now)
					b = b[k:]
				}
			}
		})
		if err == nil {
			err = rerr
		}
		s.flushDeferredAcks()
		if err != nil && s.readFailed(err, &errs) {
			return
		}
	}
}

// readFailed reports whether the read loop must end after err; transient
// errors (ICMP unreachable reported on the socket, for example) go on, a
// little slower when they repeat.
func (s *Socket) readFailed(err error, errs *int) bool {
	select {
	case <-s.done:
		return true
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		s.log.Debug("utp: socket closed under us", "err", err)
		return true
	}
	*errs++
	if *errs > 10 {
		select {
		case <-s.done:
			return true
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// dispatch hands a datagram to uTP or to the PacketConn view; from is the
// sender as the PacketConn gave it, or nil.
func (s *Socket) dispatch(b []byte, ap netip.AddrPort, from net.Addr, now time.Time) {
	if !isUTP(b) {
		if from == nil {
			from = net.UDPAddrFromAddrPort(ap)
		}
		s.other.deliver(b, from)
		return
	}
	s.handle(b, ap, now)
}

// flushDeferredAcks sends the acknowledgements deferred while packets
// kept arriving.
func (s *Socket) flushDeferredAcks() {
	for i, c := range s.deferred {
		c.sendDeferredAck()
		s.deferred[i] = nil
	}
	s.deferred = s.deferred[:0]
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
	}
	ap, err := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err == nil
}

// handle routes one uTP packet to its connection, opens a connection for
// a SYN, or answers RESET.
func (s *Socket) handle(b []byte, ap netip.AddrPort, now time.Time) {
	p, err := parsePacket(b)
	if err != nil {
		s.log.Debug("utp: dropped packet", "from", ap, "err", err)
		return
	}
	s.mu.Lock()
	c := s.lookupLocked(ap, p)
	if c == nil && p.typ == stSyn {
		c = s.acceptLocked(ap, p, now)
		s.mu.Unlock()
		if c != nil {
			s.poke()
		}
		return
	}
	if c == nil {
		if p.typ != stReset {
			s.resetLocked(ap, p, now)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if c.handle(p, now) {
		s.deferred = append(s.deferred, c)
	}
}
