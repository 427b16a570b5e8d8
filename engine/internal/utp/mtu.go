package utp

import "net/netip"

// Path MTU discovery. A connection starts with data packets of
// Config.MaxPayload bytes, which fit any common path. When the peer said
// in its handshake that it reads longer datagrams (extMaxDatagram), the
// sender probes for larger packets, as BEP 29 implementations do: one
// data packet at a time is sent at a size halfway between the largest
// known to arrive and the largest still possible (or at what is queued,
// when that is less but still a step larger); an acknowledged probe
// raises the packet size to it, one lost twice lowers the ceiling (and,
// not being a sign of congestion, leaves the window alone). The ceiling
// starts at what the peer reads, what the route to it carries (its
// interface MTU, asked of the kernel), Config.MaxProbePayload and a
// quarter of the windows. On loopback (MTU 65536) this grows packets from
// 1380 bytes to about 64 KiB within a few round trips; on an Ethernet
// path there is nothing worth probing for. A lost probe is sent again at
// its size, as libtorrent does: the kernel fragments it once ICMP told it
// the path's MTU (where those messages are filtered as well, a path
// narrower than the local interface loses the connection).

// probeStep is the smallest gap between the known and the largest
// possible payload still worth a probe.
const probeStep = 1024

// pathMTU is the packet size search of one connection's sending side. It
// is a plain value used under its connection's lock.
type pathMTU struct {
	size   int    // payload of new data packets, known to arrive
	ceil   int    // largest payload still possible
	probe  int    // payload of the probe in flight; 0 when none
	seq    uint16 // its sequence number
	strike int    // payload of a probe lost once, tried again before the ceiling comes down; 0 when none
}

func newPathMTU(size int) pathMTU { return pathMTU{size: size, ceil: size} }

// setCeiling sets the largest payload to search up to.
func (m *pathMTU) setCeiling(ceil int) { m.ceil = max(ceil, m.size) }

// next is the payload of the probe to send now, or 0 when none is due.
func (m *pathMTU) next() int {
	if m.probe != 0 || m.ceil-m.size < probeStep {
		return 0
	}
	return m.size + (m.ceil-m.size+1)/2
}

// sent records that a probe of size bytes (next's size, or less when
// less was queued) went out as packet seq.
func (m *pathMTU) sent(seq uint16, size int) { m.probe, m.seq = size, seq }

// arrived records the acknowledgement of packet seq; it reports whether
// that was the probe (the packet size grew).
func (m *pathMTU) arrived(seq uint16) bool {
	if m.probe == 0 || seq != m.seq {
		return false
	}
	m.size, m.probe, m.strike = max(m.size, m.probe), 0, 0
	return true
}

// lost records that packet seq was deemed lost; it reports whether that
// was the probe (whose loss says nothing about congestion). The first
// loss only earns the size a strike: the next probe tries it again, since
// on a loaded machine a probe may be counted lost for reasons of its own
// (a timeout, a full receive buffer). A second loss brings the ceiling
// down below the smaller of the two.
func (m *pathMTU) lost(seq uint16) bool {
	if m.probe == 0 || seq != m.seq {
		return false
	}
	if m.strike == 0 {
		m.strike, m.probe = m.probe, 0
		return true
	}
	m.ceil = max(min(m.probe, m.strike)-1, m.size)
	m.probe, m.strike = 0, 0
	return true
}

// probeCeiling is the largest payload worth trying towards peer, which
// reads datagrams of up to peerMax bytes: the least of that, what the
// route's MTU carries in one unfragmented datagram, the configured limit
// and a quarter of the windows (a packet must fit a window several
// times over). It is at most floor when the peer did not tell.
func probeCeiling(cfg *Config, peer netip.AddrPort, peerMax uint32, floor int) int {
	if peerMax == 0 || cfg.MaxProbePayload <= floor {
		return floor
	}
	ipHdr := 20
	if peer.Addr().Is6() {
		ipHdr = 40
	}
	ceil := min(int(min(peerMax, maxUDPPayload))-headerLen, cfg.MaxProbePayload,
		cfg.SendBuffer/4, cfg.RecvBuffer/4)
	if mtu := routeMTU(peer); mtu > 0 {
		ceil = min(ceil, mtu-ipHdr-8-headerLen)
	} else {
		ceil = floor // the route is unknown: stay safe
	}
	return max(ceil, floor)
}

// maxUDPPayload is the largest UDP payload of an IPv4 datagram.
const maxUDPPayload = 65507
