package holepunch

import (
	"net/netip"
	"time"
)

// Transport is a way to dial a peer.
type Transport uint8

// Transports.
const (
	UTP Transport = iota // BEP 29 over UDP: what BEP 55 asks for
	TCP                  // TCP simultaneous open, which some NATs let through
)

// String returns "utp" or "tcp".
func (t Transport) String() string {
	if t == UTP {
		return "utp"
	}
	return "tcp"
}

// TargetConfig configures a Target. The zero value is valid.
type TargetConfig struct {
	// Transports are the ways to dial, tried at once in this order; nil
	// means uTP then TCP. A client without uTP passes []Transport{TCP}.
	Transports []Transport
	// Attempts is how many times each transport dials (holes open when
	// both sides' packets have left; a first SYN may be lost); 0 means 3.
	Attempts int
	// Every is the pause between attempts; 0 means 1 s.
	Every time.Duration
	// PerRelay caps the connect messages acted on per relay IP per
	// minute; 0 means 10. Total caps them in all; 0 means 30.
	PerRelay, Total int
	// Dedup is how long a second connect to the same address is ignored
	// while the dial of the first has not been reported Done (a relay
	// may be asked twice at once, by each side); 0 means 10 s.
	Dedup time.Duration
	// HoleTTL is how long after a punch dial ended a connection with its
	// address still counts as punched (it passes the holes the punch
	// opened in both NATs, which stay open while packets flow, and for
	// a while after); 0 means 2 minutes.
	HoleTTL time.Duration
	// MaxTracked caps the relay IPs, recent addresses and holes tracked;
	// 0 means 1024.
	MaxTracked int
}

// Dial is what the torrent loop must do for a connect message: dial Addr
// now, bypassing its dial queue and half-open limit, over each of
// Transports at once (uTP first), Attempts times Every apart, stopping
// when one connects. The connection counts as punched.
type Dial struct {
	Addr       netip.AddrPort
	Transports []Transport
	Attempts   int
	Every      time.Duration
}

// ConnView is the target policy's read-only view of the torrent, given by
// the torrent loop.
type ConnView interface {
	// Connected reports whether we already have a connection to addr.
	Connected(addr netip.AddrPort) bool
	// Banned reports whether addr's peer is banned.
	Banned(addr netip.AddrPort) bool
	// IsSelf reports whether addr is one of our own addresses.
	IsSelf(addr netip.AddrPort) bool
}

// Target decides what to do with connect messages (BEP 55, the part of
// the target and of the initiator once the relay answered). It is a plain
// type used by one goroutine.
type Target struct {
	cfg    TargetConfig
	relays windows
	total  window
	recent map[netip.AddrPort]time.Time // connects acted on, not Done
	holes  map[netip.AddrPort]time.Time // when each punch dial was Done
}

// NewTarget returns a Target with cfg's defaults filled in.
func NewTarget(cfg TargetConfig) *Target {
	if cfg.Transports == nil {
		cfg.Transports = []Transport{UTP, TCP}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.PerRelay <= 0 {
		cfg.PerRelay = 10
	}
	if cfg.Total <= 0 {
		cfg.Total = 30
	}
	if cfg.Dedup <= 0 {
		cfg.Dedup = 10 * time.Second
	}
	if cfg.HoleTTL <= 0 {
		cfg.HoleTTL = 2 * time.Minute
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1024
	}
	return &Target{cfg: cfg, relays: windows{max: cfg.MaxTracked},
		recent: map[netip.AddrPort]time.Time{}, holes: map[netip.AddrPort]time.Time{}}
}

// Connect decides on a connect message m received at now from the peer
// at relay. It dials unless m is not a connect, names a local address
// while the relay is not local itself (a public peer must not steer us at
// our LAN), names us, a peer we are connected to or a banned one, repeats
// a connect of the last Dedup, or a rate limit is reached.
func (t *Target) Connect(now time.Time, relay netip.AddrPort, m Msg, v ConnView) (Dial, bool) {
	addr := canon(m.Addr)
	if m.Type != Connect || !usable(addr) || (local(addr.Addr()) && !local(relay.Addr())) {
		return Dial{}, false
	}
	if v.IsSelf(addr) || v.Connected(addr) || v.Banned(addr) {
		return Dial{}, false
	}
	if at, ok := t.recent[addr]; ok && now.Sub(at) < t.cfg.Dedup {
		return Dial{}, false
	}
	if !allowAll(now, []*window{&t.total, t.relays.get(relay.Addr().Unmap(), now)}, []int{t.cfg.Total, t.cfg.PerRelay}) {
		return Dial{}, false
	}
	if len(t.recent) >= t.cfg.MaxTracked {
		for a, at := range t.recent {
			if now.Sub(at) >= t.cfg.Dedup {
				delete(t.recent, a)
			}
		}
	}
	if len(t.recent) < t.cfg.MaxTracked {
		t.recent[addr] = now
	}
	return Dial{Addr: addr, Transports: append([]Transport(nil), t.cfg.Transports...),
		Attempts: t.cfg.Attempts, Every: t.cfg.Every}, true
}

// Done records at now that the dial of a connect for addr ended
// (connected or not): a later connect for addr, the answer to a new
// rendezvous, is acted on again, and for HoleTTL a connection with addr
// counts as punched (see Punched).
func (t *Target) Done(now time.Time, addr netip.AddrPort) {
	addr = canon(addr)
	delete(t.recent, addr)
	if len(t.holes) >= t.cfg.MaxTracked {
		for a, at := range t.holes {
			if now.Sub(at) >= t.cfg.HoleTTL {
				delete(t.holes, a)
			}
		}
	}
	if len(t.holes) < t.cfg.MaxTracked {
		t.holes[addr] = now
	}
}

// Punched reports whether a connection with addr made at now passes
// through holes a punch opened: a dial for a connect message for addr is
// under way (acted on within Dedup and not Done; a connection from addr
// that comes in meanwhile is the other side's half of the same punch), or
// ended less than HoleTTL ago.
func (t *Target) Punched(now time.Time, addr netip.AddrPort) bool {
	addr = canon(addr)
	if at, ok := t.recent[addr]; ok && now.Sub(at) < t.cfg.Dedup {
		return true
	}
	at, ok := t.holes[addr]
	return ok && now.Sub(at) < t.cfg.HoleTTL
}
