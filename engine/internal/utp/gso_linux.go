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
