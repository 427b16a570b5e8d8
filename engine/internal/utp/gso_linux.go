package utp

import (
	"encoding/binary"
	"syscall"
	"unsafe"
)

// udpSegment is the UDP_SEGMENT socket option of Linux 4.18 and later.
const udpSegment = 103

// gsoControl is the control message that asks the kernel to split a send
// into datagrams of seg bytes.
func gsoControl(seg int) []byte {
	b := make([]byte, syscall.CmsgSpace(2))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = syscall.IPPROTO_UDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[syscall.CmsgLen(0):], uint16(seg))
	return b
}

const gsoSupported = true

// udpGRO is the UDP_GRO socket option and control message of Linux 5.0
// and later.
const udpGRO = 104

// enableGRO turns on UDP receive offload on the socket and reports
// whether the kernel accepted it.
func enableGRO(rc syscall.RawConn) bool {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_UDP, udpGRO, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// groSegment is the size of the datagrams glued into one receive, from
// its control messages; 0 when the receive holds one datagram.
func groSegment(oob []byte) int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.IPPROTO_UDP && m.Header.Type == udpGRO && len(m.Data) >= 4 {
			return int(binary.NativeEndian.Uint32(m.Data))
		}
	}
	return 0
}
