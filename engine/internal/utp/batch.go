package utp

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// Batched sending: the packets one flush produces go out together. On
// Linux with a *net.UDPConn, runs of equal-sized datagrams (the last may
// be shorter) leave in one sendmsg with UDP generic segmentation offload
// (UDP_SEGMENT), which the kernel splits into ordinary datagrams; the
// peer sees no difference. Where that is unavailable, or the kernel
// refuses it once, each datagram is sent on its own.

const (
	maxGSOSegments = 64    // the kernel's limit per call
	maxGSOBytes    = 65000 // below the 64 KiB datagram limit, headers included
)

var gsoBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxGSOBytes); return &b }}

// writeBatch sends bufs, in order, to one peer.
func (s *Socket) writeBatch(bufs [][]byte, to *net.UDPAddr) {
	if s.udp == nil || s.noGSO.Load() || len(bufs) == 1 {
		for _, b := range bufs {
			s.writeTo(b, to)
		}
		return
	}
	for i := 0; i < len(bufs); {
		seg := len(bufs[i])
		j, total := i+1, seg
		for j < len(bufs) && j-i < maxGSOSegments && total+len(bufs[j]) <= maxGSOBytes && len(bufs[j]) <= seg {
			total += len(bufs[j])
			j++
			if len(bufs[j-1]) < seg {
				break // a shorter datagram ends a run
			}
		}
		if j-i == 1 || !s.sendGSO(bufs[i:j], seg, to) {
			for _, b := range bufs[i:j] {
				s.writeTo(b, to)
			}
		}
		i = j
	}
}

// sendGSO sends bufs, all seg bytes long but the last, in one call; it
// reports false when the send failed (and turns segmentation offload off
// for good when the kernel refuses it).
func (s *Socket) sendGSO(bufs [][]byte, seg int, to *net.UDPAddr) bool {
	bp := gsoBufs.Get().(*[]byte)
	defer gsoBufs.Put(bp)
	b := (*bp)[:0]
	for _, p := range bufs {
		b = append(b, p...)
	}
	*bp = b
	if _, _, err := s.udp.WriteMsgUDP(b, gsoControl(seg), to); err != nil {
		if gsoRefused(err) && !s.noGSO.Swap(true) {
			s.log.Debug("utp: UDP segmentation offload refused, sending datagrams one by one", "err", err)
		}
		return false
	}
	return true
}

// gsoRefused reports whether err says the kernel or the device cannot
// segment (rather than, say, a full buffer or an unreachable peer).
func gsoRefused(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EINVAL, syscall.EIO, syscall.EOPNOTSUPP, syscall.ENOPROTOOPT:
		return true
	}
	return false
}
