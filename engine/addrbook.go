package engine

import (
	"errors"
	"net/netip"
	"time"
)

// PeerSource says where a peer address came from.
type PeerSource uint8

// The sources of peer addresses.
const (
	SourceUnknown   PeerSource = iota // not known (an address no longer in the book)
	SourceUser                        // Torrent.AddPeers
	SourceOptions                     // AddOptions.Peers and a magnet's x.pe
	SourceTracker                     // a tracker announce
	SourceDHT                         // a DHT lookup
	SourcePex                         // ut_pex from a connected peer
	SourceIncoming                    // a peer that connected to us (its listen address)
	SourceLSD                         // local service discovery (BEP 14)
	SourceHolepunch                   // a relay's connect message (BEP 55)
)

// String returns the source's name as logs and Peers show it.
func (s PeerSource) String() string {
	switch s {
	case SourceUser:
		return "user"
	case SourceOptions:
		return "options"
	case SourceTracker:
		return "tracker"
	case SourceDHT:
		return "dht"
	case SourcePex:
		return "pex"
	case SourceIncoming:
		return "incoming"
	case SourceLSD:
		return "lsd"
	case SourceHolepunch:
		return "holepunch"
	}
	return "unknown"
}

// given reports whether the user gave the address: such addresses always
// get into the book.
func (s PeerSource) given() bool { return s == SourceUser || s == SourceOptions }

// Caps on the known peer addresses of a torrent.
const (
	maxKnownPeers = 2000
	maxPexKnown   = maxKnownPeers / 2
)

// Blame for pieces that fail the hash check, per IP: a peer that sent a
// whole bad piece alone earns strikeSole, one that sent part of it
// strikeShared; each good piece it helped with takes one point off. An IP
// at banPoints is banned.
const (
	strikeSole   = 2
	strikeShared = 1
	banPoints    = 4
)

// candidate is a known peer address.
type candidate struct {
	source    PeerSource
	connected bool
	tried     time.Time
	fails     int
	queued    bool
	dialing   bool // a dial is in flight; do not dial it again
	// transport is the one that carried the last connection we dialed
	// (tried first next time); TransportUnknown until one worked.
	transport Transport
}

// addrBook holds a torrent's known peer addresses, the queue of those to
// dial, and the strikes and bans of IPs. It knows no sockets and no peers:
// the loop tells it what happened (Dialing, Connected, Failed, Gone) and
// asks it whom to dial next (NextDial). Used from the loop goroutine only.
type addrBook struct {
	self     netip.AddrPort // our own listen address, never added
	known    map[netip.AddrPort]*candidate
	pexKnown int // known addresses learned through ut_pex
	dialQ    []netip.AddrPort
	strikes  map[netip.Addr]int
	banned   map[netip.Addr]string
	// parole holds the IPs that shared a piece that failed its hash
	// check, until one sends a good piece alone.
	parole map[netip.Addr]bool
}

func newAddrBook(self netip.AddrPort) *addrBook {
	return &addrBook{
		self:    self,
		known:   make(map[netip.AddrPort]*candidate),
		strikes: make(map[netip.Addr]int),
		banned:  make(map[netip.Addr]string),
		parole:  make(map[netip.Addr]bool),
	}
}

// Add records addresses to dial and queues them. The set is capped at
// maxKnownPeers, and addresses learned through ut_pex at maxPexKnown of
// them, so that hostile peers cannot crowd out those from trackers and the
// DHT; addresses the user gives always get in, in place of an unconnected
// address learned otherwise. It returns the number of addresses added.
func (b *addrBook) Add(addrs []netip.AddrPort, source PeerSource) int {
	n := 0
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !a.IsValid() || a.Port() == 0 || a.Addr().IsUnspecified() || a == b.self {
			continue
		}
		if b.Banned(a.Addr()) {
			continue
		}
		if _, ok := b.known[a]; ok {
			continue
		}
		if source == SourcePex && b.pexKnown >= maxPexKnown {
			break
		}
		if len(b.known) >= maxKnownPeers && !(source.given() && b.evict()) {
			break
		}
		b.insert(a, &candidate{source: source})
		b.queue(a)
		n++
	}
	return n
}

func (b *addrBook) insert(a netip.AddrPort, c *candidate) {
	if c.source == SourcePex {
		b.pexKnown++
	}
	b.known[a] = c
}

// evict forgets one unconnected address to make room, preferring one
// learned through ut_pex, then one that failed to connect. It reports false
// when every known address is connected or being dialed.
func (b *addrBook) evict() bool {
	var victim netip.AddrPort
	best := -1
	for a, c := range b.known {
		if c.connected || c.dialing {
			continue
		}
		score := 0
		if c.source == SourcePex {
			score += 2
		}
		if c.fails > 0 {
			score++
		}
		if score > best {
			victim, best = a, score
			if score == 3 {
				break
			}
		}
	}
	if best < 0 {
		return false
	}
	b.forget(victim)
	return true
}

// forget drops a known address. A queued dial of it is skipped.
func (b *addrBook) forget(a netip.AddrPort) {
	if c := b.known[a]; c != nil && c.source == SourcePex {
		b.pexKnown--
	}
	delete(b.known, a)
}

func (b *addrBook) queue(a netip.AddrPort) {
	c := b.known[a]
	if c == nil || c.queued || c.connected {
		return
	}
	c.queued = true
	if c.source.given() {
		// The user's addresses go first: a flood of addresses from
		// elsewhere (PEX) must not delay them.
		b.dialQ = append([]netip.AddrPort{a}, b.dialQ...)
		return
	}
	b.dialQ = append(b.dialQ, a)
}

// NextDial takes the next address to dial off the queue: known, not
// connected, not being dialed, not banned. The caller either starts a dial
// (Dialing) or gives the address back (Unpop).
func (b *addrBook) NextDial() (netip.AddrPort, bool) {
	for len(b.dialQ) > 0 {
		a := b.dialQ[0]
		b.dialQ = b.dialQ[1:]
		c := b.known[a]
		if c == nil {
			continue
		}
		c.queued = false
		if c.connected || c.dialing || b.Banned(a.Addr()) {
			continue // a dial can take long (MSE, then plain): one at a time
		}
		return a, true
	}
	return netip.AddrPort{}, false
}

// Queued reports whether addresses wait in the dial queue.
func (b *addrBook) Queued() bool { return len(b.dialQ) > 0 }

// Unpop puts an address NextDial returned back at the head of the queue
// (no connection slot was free).
func (b *addrBook) Unpop(a netip.AddrPort) {
	c := b.known[a]
	if c == nil || c.queued {
		return
	}
	c.queued = true
	b.dialQ = append([]netip.AddrPort{a}, b.dialQ...)
}

// Dialing records that a dial of a started.
func (b *addrBook) Dialing(a netip.AddrPort, now time.Time) {
	if c := b.known[a]; c != nil {
		c.tried = now
		c.dialing = true
	}
}

// Failed records a dial of a that failed with err. An address that turned
// out to be ourselves is never dialed again.
func (b *addrBook) Failed(a netip.AddrPort, err error) {
	c := b.known[a]
	if c == nil {
		return
	}
	c.dialing = false
	c.fails++
	if errors.Is(err, errSelf) {
		c.fails = 100
	}
}

// DialDone records a dial of a that connected over tr; Connected follows
// when the loop takes the connection.
func (b *addrBook) DialDone(a netip.AddrPort, tr Transport) {
	if c := b.known[a]; c != nil {
		c.dialing = false
		c.transport = tr
	}
}

// Transport returns the transport that carried the last connection we
// dialed to a, or TransportUnknown.
func (b *addrBook) Transport(a netip.AddrPort) Transport {
	if c := b.known[a]; c != nil {
		return c.transport
	}
	return TransportUnknown
}

// Connected records a connection to a that we dialed.
func (b *addrBook) Connected(a netip.AddrPort) {
	if c := b.known[a]; c != nil {
		c.connected = true
		c.fails = 0
	}
}

// Listening records the listen address of a peer that connected to us: it
// is known and connected, so that we do not dial it too.
func (b *addrBook) Listening(a netip.AddrPort) {
	if c, ok := b.known[a]; ok {
		c.connected = true
	} else if len(b.known) < maxKnownPeers {
		b.insert(a, &candidate{source: SourceIncoming, connected: true})
	}
}

// Gone records that the connection to a ended.
func (b *addrBook) Gone(a netip.AddrPort, now time.Time) {
	if c := b.known[a]; c != nil && a.IsValid() {
		c.connected = false
		c.tried = now
	}
}

// Source returns where a came from, or SourceUnknown.
func (b *addrBook) Source(a netip.AddrPort) PeerSource {
	if c := b.known[a]; c != nil {
		return c.source
	}
	return SourceUnknown
}

// RequeueDue queues failed addresses again with backoff: 1 s after the
// first failure (a peer still starting up), then 5 s doubling up to about
// 5 minutes; addresses that failed more than 6 times stay out.
func (b *addrBook) RequeueDue(now time.Time) {
	for a, c := range b.known {
		if c.connected || c.queued || c.fails > 6 {
			continue
		}
		back := time.Second
		if c.fails > 1 {
			back = time.Duration(1<<min(c.fails-2, 6)) * 5 * time.Second
		}
		if now.Sub(c.tried) >= back {
			b.queue(a)
		}
	}
}

// RetryAll forgets past failures and queues every known address (resume).
func (b *addrBook) RetryAll() {
	for a, c := range b.known {
		c.fails = 0
		b.queue(a)
	}
}

// Len returns the number of known addresses and Unconnected those not
// connected.
func (b *addrBook) Len() int { return len(b.known) }

// Unconnected returns the number of known addresses not connected.
func (b *addrBook) Unconnected() int {
	n := 0
	for _, c := range b.known {
		if !c.connected {
			n++
		}
	}
	return n
}

// Has reports whether a is known.
func (b *addrBook) Has(a netip.AddrPort) bool {
	_, ok := b.known[a]
	return ok
}

// strike is one IP's share of the blame for a bad piece.
type strike struct {
	ip     netip.Addr
	points int  // its points after the strike
	banned bool // the strike banned it
}

// Blame records a bad piece against the IPs that sent its blocks and
// returns their points; IPs that reach banPoints are banned.
func (b *addrBook) Blame(ips []netip.Addr, reason string) []strike {
	w := strikeShared
	if len(ips) == 1 {
		w = strikeSole
	}
	out := make([]strike, 0, len(ips))
	for _, ip := range ips {
		b.strikes[ip] += w
		s := strike{ip: ip, points: b.strikes[ip]}
		if s.points >= banPoints {
			s.banned = b.Ban(ip, reason)
		}
		out = append(out, s)
	}
	return out
}

// Credit takes a point off the IPs that helped with a good piece.
func (b *addrBook) Credit(ips []netip.Addr) {
	for _, ip := range ips {
		if b.strikes[ip] > 0 {
			b.strikes[ip]--
		}
	}
}

// Ban bans ip and forgets its addresses. It reports false when ip was
// banned already.
func (b *addrBook) Ban(ip netip.Addr, reason string) bool {
	ip = ip.Unmap()
	if _, ok := b.banned[ip]; ok {
		return false
	}
	b.banned[ip] = reason
	delete(b.parole, ip)
	for a := range b.known {
		if a.Addr() == ip {
			b.forget(a)
		}
	}
	return true
}

// Parole puts ip on parole (it shared a piece that failed its hash check,
// and the liar among those who did is not known yet); it reports false
// when it was already. Banned IPs are not put on parole.
func (b *addrBook) Parole(ip netip.Addr) bool {
	if b.parole[ip] || b.Banned(ip) {
		return false
	}
	b.parole[ip] = true
	return true
}

// OnParole reports whether ip is on parole.
func (b *addrBook) OnParole(ip netip.Addr) bool { return b.parole[ip] }

// EndParole takes ip off parole (it sent a good piece alone); it reports
// whether it was on parole.
func (b *addrBook) EndParole(ip netip.Addr) bool {
	if !b.parole[ip] {
		return false
	}
	delete(b.parole, ip)
	return true
}

// Banned reports whether ip is banned.
func (b *addrBook) Banned(ip netip.Addr) bool {
	_, ok := b.banned[ip.Unmap()]
	return ok
}

// BannedCount returns how many IPs are banned.
func (b *addrBook) BannedCount() int { return len(b.banned) }

// BannedIPs returns the banned IPs.
func (b *addrBook) BannedIPs() []netip.Addr {
	out := make([]netip.Addr, 0, len(b.banned))
	for ip := range b.banned {
		out = append(out, ip)
	}
	return out
}
