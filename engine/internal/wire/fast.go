package wire

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"slices"
)

// DefaultAllowedFast is the allowed-fast set size BEP 6 suggests (k = 10).
const DefaultAllowedFast = 10

// AllowedFastSet returns the k pieces (fewer if the torrent has fewer) that
// a peer at ip may request from us while choked, by the algorithm of BEP 6:
// the IPv4 address masked to its /24, followed by the info hash, is hashed
// with SHA-1 repeatedly and every 4-byte word of each digest, modulo
// numPieces, adds a piece not already chosen. IPv4-mapped IPv6 addresses
// count as IPv4; other IPv6 addresses, which BEP 6 does not cover, are
// masked to their /48 as libtorrent does. The order is the algorithm's.
func AllowedFastSet(ip netip.Addr, infoHash [20]byte, numPieces, k int) []uint32 {
	if numPieces <= 0 || k <= 0 {
		return nil
	}
	k = min(k, numPieces)
	ip = ip.Unmap()
	var x []byte
	if ip.Is4() {
		a := ip.As4()
		a[3] = 0
		x = append(make([]byte, 0, 36), a[:]...)
	} else {
		a := ip.As16()
		clear(a[6:])
		x = append(make([]byte, 0, 36), a[:]...)
	}
	x = append(x, infoHash[:]...)
	set := make([]uint32, 0, k)
	// Each round yields up to 5 candidates; duplicates become rarer as the
	// set fills, but bound the rounds anyway against tiny numPieces.
	for round := 0; len(set) < k && round < 64*k+64; round++ {
		sum := sha1.Sum(x)
		x = sum[:]
		for i := 0; i < 5 && len(set) < k; i++ {
			idx := binary.BigEndian.Uint32(x[4*i:]) % uint32(numPieces)
			if !slices.Contains(set, idx) {
				set = append(set, idx)
			}
		}
	}
	return set
}
