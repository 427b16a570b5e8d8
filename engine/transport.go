package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/utp"
)

// Transport is what carries a peer connection.
type Transport uint8

// The transports.
const (
	TransportUnknown Transport = iota
	TransportTCP               // a TCP connection
	TransportUTP               // a uTP (BEP 29) connection over the client's UDP socket
)

// String returns the transport's name as flags, logs and Peers show it.
func (t Transport) String() string {
	switch t {
	case TransportTCP:
		return "tcp"
	case TransportUTP:
		return "utp"
	}
	return "unknown"
}

// ParseTransports parses a comma-separated list of transport names
// ("utp,tcp"), as the --transport flag takes it.
func ParseTransports(s string) ([]Transport, error) {
	var out []Transport
	for _, name := range strings.Split(s, ",") {
		var t Transport
		switch strings.TrimSpace(strings.ToLower(name)) {
		case "tcp":
			t = TransportTCP
		case "utp":
			t = TransportUTP
		default:
			return nil, fmt.Errorf("engine: transport %q: want tcp or utp", name)
		}
		if !hasTransport(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func hasTransport(ts []Transport, t Transport) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// utpHeadStart is how long an outgoing uTP connection attempt runs alone
// before a TCP attempt joins it, for a peer whose transport is not known
// yet: libtorrent and µTorrent try uTP first. A peer that answers the uTP
// SYN at all is still reached over uTP (its answer comes a round trip
// after the SYN, before TCP's, which starts later); a peer without uTP
// costs the head start, so it is short: RFC 8305's connection attempt
// delay (with 500 ms it was half of the 1 s a video should take to
// start playing from peers 80 ms away).
const utpHeadStart = 250 * time.Millisecond

// dialer opens transport connections to peers: TCP, and uTP through the
// client's UDP sockets. Its fields are set once in New; it is safe for
// concurrent use.
type dialer struct {
	local netip.Addr // the listen IP when bound to one; TCP leaves from it
	tcp   bool       // TCP may be used
	utp4  *utp.Socket
	utp6  *utp.Socket // nil when uTP is off or the family has no socket
	// wrap, when not nil, wraps every connection right after it is
	// established, before any handshake byte: the client's rate limiters.
	wrap func(net.Conn) net.Conn
}

// utpFor returns the uTP socket for a's family, or nil.
func (d *dialer) utpFor(a netip.Addr) *utp.Socket {
	if a.Unmap().Is4() {
		return d.utp4
	}
	return d.utp6
}

// order returns the transports to try for addr, first the one to start
// with: prefer when it worked before, else uTP.
func (d *dialer) order(addr netip.AddrPort, prefer Transport) []Transport {
	var ts []Transport
	if d.utpFor(addr.Addr()) != nil {
		ts = append(ts, TransportUTP)
	}
	if d.tcp {
		ts = append(ts, TransportTCP)
	}
	if len(ts) == 2 && prefer == TransportTCP {
		ts[0], ts[1] = ts[1], ts[0]
	}
	return ts
}

// connect opens a transport connection to addr. The first transport of
// order starts alone; the second joins when the first fails or, when the
// first is uTP and the peer's transport is not known (prefer is
// TransportUnknown), after utpHeadStart. The first connection established
// wins and the others are closed.
func (d *dialer) connect(ctx context.Context, addr netip.AddrPort, prefer Transport) (net.Conn, Transport, error) {
	ts := d.order(addr, prefer)
	if len(ts) == 0 {
		return nil, TransportUnknown, fmt.Errorf("engine: no transport enabled for %v", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	type result struct {
		conn net.Conn
		tr   Transport
		err  error
	}
	results := make(chan result, len(ts))
	start := func(tr Transport) {
		go func() {
			c, err := d.dialOne(ctx, addr, tr)
			results <- result{c, tr, err}
		}()
	}
	start(ts[0])
	started, pending := 1, 1
	var headStart <-chan time.Time
	if len(ts) > 1 && ts[0] == TransportUTP && prefer == TransportUnknown {
		t := time.NewTimer(utpHeadStart)
		defer t.Stop()
		headStart = t.C
	}
	var errs []error
	var won result
	for pending > 0 {
		select {
		case <-headStart:
			headStart = nil
			if started < len(ts) {
				start(ts[started])
				started++
				pending++
			}
			continue
		case r := <-results:
			pending--
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%v: %w", r.tr, r.err))
				if r.tr == TransportTCP && errors.Is(r.err, syscall.ECONNREFUSED) && won.conn == nil && pending > 0 {
					// The host answered and listens on no TCP port
					// there; a uTP peer would have answered our
					// earlier SYN by now. Give it one more head
					// start, not the whole dial timeout.
					t := time.AfterFunc(utpHeadStart, cancel)
					defer t.Stop()
				}
				if won.conn == nil && started < len(ts) {
					start(ts[started])
					started++
					pending++
				}
				continue
			}
			if won.conn != nil {
				r.conn.Close() // a late second connection
				continue
			}
			won = r
			cancel() // stop the other attempt; it is drained below
		}
	}
	if won.conn != nil {
		return won.conn, won.tr, nil
	}
	return nil, TransportUnknown, errors.Join(errs...)
}

// dialOne opens one connection to addr over tr.
func (d *dialer) dialOne(ctx context.Context, addr netip.AddrPort, tr Transport) (net.Conn, error) {
	if tr == TransportUTP {
		s := d.utpFor(addr.Addr())
		if s == nil {
			return nil, fmt.Errorf("engine: no uTP socket for %v", addr)
		}
		return s.Dial(ctx, addr)
	}
	nd := net.Dialer{Timeout: dialTimeout}
	if d.local.IsValid() && d.local.Is4() == addr.Addr().Unmap().Is4() {
		nd.LocalAddr = &net.TCPAddr{IP: d.local.AsSlice()}
	}
	return nd.DialContext(ctx, "tcp", addr.String())
}
