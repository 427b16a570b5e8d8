package utp

import (
	"net/netip"
	"syscall"
)

// routeMTU is the MTU of the route to peer as the kernel knows it (the
// interface's, or a smaller one learned from ICMP), read from a UDP socket
// connected to peer that sends nothing; 0 when unknown.
func routeMTU(peer netip.AddrPort) int {
	family, level, opt := syscall.AF_INET, syscall.IPPROTO_IP, syscall.IP_MTU
	var sa syscall.Sockaddr
	if peer.Addr().Is4() {
		sa = &syscall.SockaddrInet4{Port: int(peer.Port()), Addr: peer.Addr().As4()}
	} else {
		family, level, opt = syscall.AF_INET6, syscall.IPPROTO_IPV6, syscall.IPV6_MTU
		sa = &syscall.SockaddrInet6{Port: int(peer.Port()), Addr: peer.Addr().As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, sa); err != nil {
		return 0
	}
	mtu, err := syscall.GetsockoptInt(fd, level, opt)
	if err != nil {
		return 0
	}
	return mtu
}
