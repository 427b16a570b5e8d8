//go:build !linux

package utp

import "net/netip"

// routeMTU is 0 where the kernel is not asked: packets stay at
// Config.MaxPayload.
func routeMTU(netip.AddrPort) int { return 0 }
