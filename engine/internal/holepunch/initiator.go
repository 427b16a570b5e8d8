package holepunch

import (
	"net/netip"
	"slices"
	"time"
)

// InitiatorConfig configures an Initiator. The zero value is valid.
type InitiatorConfig struct {
	// Wait is how long a rendezvous may go unanswered (no connect, no
	// error, no connection) before it counts as failed; 0 means 30 s.
	Wait time.Duration
	// Backoff is the wait after a first failure before trying a target
	// again; it doubles with each failure. 0 means 2 minutes.
	Backoff time.Duration
	// MaxAttempts is how many rendezvous one target gets before it is
	// given up; 0 means 3.
	MaxAttempts int
	// PerMinute caps the rendezvous sent per minute in all; 0 means 10.
	PerMinute int
	// MaxTargets caps the targets remembered; 0 means 1000. When full,
	// the least recently touched target that is not pending is forgotten.
	MaxTargets int
	// MaxRelays caps the relays remembered per target (the most recent
	// ones); 0 means 4.
	MaxRelays int
}

// Outcome is where a target stands.
type Outcome uint8

// Outcomes.
const (
	Unknown Outcome = iota // no rendezvous yet
	Pending                // a rendezvous is out
	Punched                // a connection was made after a rendezvous
	Failed                 // the last rendezvous failed; may be retried
	GaveUp                 // no more rendezvous for this target
)

// String returns the outcome's name.
func (o Outcome) String() string {
	return [...]string{"unknown", "pending", "punched", "failed", "gave up"}[min(int(o), 4)]
}

// InitiatorStats counts an Initiator's work.
type InitiatorStats struct {
	Sent, Punched, Failed int
	Errors                map[ErrCode]int // error messages received, by code
}

// target is what the Initiator remembers of one unreachable peer.
type target struct {
	relays   []netip.AddrPort // relays that named it and support holepunch, newest last
	outcome  Outcome
	attempts int
	relay    netip.AddrPort // the relay of the pending or last rendezvous
	deadline time.Time      // while pending: when it counts as failed
	next     time.Time      // earliest next rendezvous
	lastErr  ErrCode
	touched  time.Time
}

// Initiator decides when to ask a relay for a rendezvous with a peer we
// cannot reach (BEP 55, the initiating peer's part), and remembers the
// outcome per peer. It is a plain type used by one goroutine.
//
// The torrent loop tells it which peers relays named in PEX (Learned, for
// relays that support ut_holepunch, naming peers flagged
// wire.PexHolepunch), which relays left (RelayGone), and how things went
// (DialFailed, Connected, OnError, Tick). DialFailed returns the
// rendezvous to send.
type Initiator struct {
	cfg     InitiatorConfig
	targets map[netip.AddrPort]*target
	sent    window
	stats   InitiatorStats
}

// NewInitiator returns an Initiator with cfg's defaults filled in.
func NewInitiator(cfg InitiatorConfig) *Initiator {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 2 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 10
	}
	if cfg.MaxTargets <= 0 {
		cfg.MaxTargets = 1000
	}
	if cfg.MaxRelays <= 0 {
		cfg.MaxRelays = 4
	}
	return &Initiator{cfg: cfg, targets: map[netip.AddrPort]*target{},
		stats: InitiatorStats{Errors: map[ErrCode]int{}}}
}

// Learned records that relay, a connected peer that announced
// ut_holepunch, named addr in a PEX message (call it only for peers the
// message flagged wire.PexHolepunch: others would be refused NoSupport).
func (in *Initiator) Learned(now time.Time, addr, relay netip.AddrPort) {
	addr, relay = canon(addr), canon(relay)
	if !usable(addr) || addr == relay {
		return
	}
	t := in.targets[addr]
	if t == nil {
		if !in.makeRoom() {
			return
		}
		t = &target{}
		in.targets[addr] = t
	}
	t.touched = now
	t.relays = slices.DeleteFunc(t.relays, func(r netip.AddrPort) bool { return r == relay })
	t.relays = append(t.relays, relay)
	if len(t.relays) > in.cfg.MaxRelays {
		t.relays = slices.Delete(t.relays, 0, len(t.relays)-in.cfg.MaxRelays)
	}
}

// makeRoom forgets the least recently touched target that is not pending
// when the map is full; false when every target is pending.
func (in *Initiator) makeRoom() bool {
	if len(in.targets) < in.cfg.MaxTargets {
		return true
	}
	var oldest netip.AddrPort
	var at time.Time
	found := false
	for a, t := range in.targets {
		if t.outcome != Pending && (!found || t.touched.Before(at)) {
			oldest, at, found = a, t.touched, true
		}
	}
	if found {
		delete(in.targets, oldest)
	}
	return found
}

// RelayGone forgets relay (it disconnected) as a way to every target.
func (in *Initiator) RelayGone(relay netip.AddrPort) {
	relay = canon(relay)
	for _, t := range in.targets {
		t.relays = slices.DeleteFunc(t.relays, func(r netip.AddrPort) bool { return r == relay })
	}
}

// DialFailed records that dialling addr failed (refused, timed out) and
// returns the rendezvous to send, if one is due: addr must have been
// named by a relay still connected, no rendezvous for it may be pending,
// its backoff must have passed, it must have attempts left, and the
// per-minute cap must allow one more. The newest relay is asked.
func (in *Initiator) DialFailed(now time.Time, addr netip.AddrPort) (Send, bool) {
	addr = canon(addr)
	t := in.targets[addr]
	if t == nil || len(t.relays) == 0 || t.outcome == Pending || t.outcome == GaveUp || now.Before(t.next) {
		return Send{}, false
	}
	if t.attempts >= in.cfg.MaxAttempts {
		t.outcome = GaveUp
		return Send{}, false
	}
	if !in.sent.allow(now, in.cfg.PerMinute) {
		return Send{}, false
	}
	t.attempts++
	t.outcome = Pending
	t.relay = t.relays[len(t.relays)-1]
	t.deadline = now.Add(in.cfg.Wait)
	t.touched = now
	in.stats.Sent++
	return Send{To: t.relay, Msg: Msg{Type: Rendezvous, Addr: addr}}, true
}

// Connected records that a connection to addr was made. After a
// rendezvous that is a punched hole; any connection also ends the need
// for one.
func (in *Initiator) Connected(now time.Time, addr netip.AddrPort) {
	t := in.targets[canon(addr)]
	if t == nil {
		return
	}
	if t.outcome == Pending {
		t.outcome = Punched
		in.stats.Punched++
	} else if t.outcome != Punched {
		// Reached without help: nothing to remember.
		delete(in.targets, canon(addr))
		return
	}
	t.attempts, t.touched = 0, now
}

// OnConnect records that relay sent us a connect message for addr (the
// answer to our rendezvous): the wait starts again for the dial it asks.
func (in *Initiator) OnConnect(now time.Time, relay netip.AddrPort, m Msg) {
	t := in.targets[canon(m.Addr)]
	if t != nil && t.outcome == Pending && t.relay == canon(relay) {
		t.deadline = now.Add(in.cfg.Wait)
	}
}

// OnError records an error message from relay about our rendezvous. A
// relay that is not connected to the target is dropped as its way, and the
// rendezvous goes to the next relay at once if there is one (returned);
// codes that no relay can fix (NoSupport, NoSelf, NoSuchPeer) give the
// target up.
func (in *Initiator) OnError(now time.Time, relay netip.AddrPort, m Msg) (Send, bool) {
	in.stats.Errors[m.Err]++
	t := in.targets[canon(m.Addr)]
	if t == nil || t.outcome != Pending || t.relay != canon(relay) {
		return Send{}, false
	}
	t.lastErr = m.Err
	t.touched = now
	switch m.Err {
	case NotConnected:
		t.relays = slices.DeleteFunc(t.relays, func(r netip.AddrPort) bool { return r == t.relay })
		t.outcome = Failed
		t.attempts-- // not the target's fault: another relay may try
		t.next = now
	case NoSupport, NoSelf, NoSuchPeer:
		t.outcome = GaveUp
	default:
		in.fail(t, now)
	}
	in.stats.Failed++
	if m.Err == NotConnected {
		return in.DialFailed(now, m.Addr)
	}
	return Send{}, false
}

// fail ends a pending rendezvous as failed and sets the backoff.
func (in *Initiator) fail(t *target, now time.Time) {
	t.outcome = Failed
	t.next = now.Add(in.cfg.Backoff << min(t.attempts-1, 10))
	if t.attempts >= in.cfg.MaxAttempts {
		t.outcome = GaveUp
	}
}

// Tick ends the rendezvous that waited longer than Wait as failed; the
// loop calls it now and then.
func (in *Initiator) Tick(now time.Time) {
	for _, t := range in.targets {
		if t.outcome == Pending && !now.Before(t.deadline) {
			in.fail(t, now)
			in.stats.Failed++
		}
	}
}

// Outcome returns where addr stands and the error code of the last error
// message about it.
func (in *Initiator) Outcome(addr netip.AddrPort) (Outcome, ErrCode) {
	t := in.targets[canon(addr)]
	if t == nil {
		return Unknown, NoError
	}
	return t.outcome, t.lastErr
}

// Stats returns a copy of the counters.
func (in *Initiator) Stats() InitiatorStats {
	s := in.stats
	s.Errors = make(map[ErrCode]int, len(in.stats.Errors))
	for k, v := range in.stats.Errors {
		s.Errors[k] = v
	}
	return s
}
