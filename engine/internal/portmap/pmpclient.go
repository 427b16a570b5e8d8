package portmap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// grant is what a gateway gave for one mapping.
type grant struct {
	External uint16        // external port
	Addr     netip.Addr    // external address, when the protocol says it
	Lease    time.Duration // 0: permanent (UPnP only)
}

// method is one way to ask a gateway for mappings (PCP, NAT-PMP, UPnP).
// Each call is bounded by its context.
type method interface {
	String() string
	externalAddr(ctx context.Context) (netip.Addr, error)
	mapPort(ctx context.Context, p Proto, internal, external uint16, lease time.Duration) (grant, error)
	unmap(ctx context.Context, p Proto, internal, external uint16) error
}

// dialFunc opens a connection like net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// roundTrip sends the request built by req (given our local address as the
// gateway sees it) to gw:5351 over a fresh connected UDP socket and waits
// for a datagram that accept takes (ok), resending after 250 ms, 500 ms,
// ... as RFC 6886 says, until ctx ends (ErrNoAnswer) or the gateway's
// host says the port is closed (ErrNoAnswer at once).
func roundTrip(ctx context.Context, dial dialFunc, gw netip.Addr, req func(local netip.Addr) []byte, accept func([]byte) (ok bool, err error)) error {
	conn, err := dial(ctx, "udp", netip.AddrPortFrom(gw, pmpPort).String())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	defer conn.Close()
	local := netip.Addr{}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		local = ua.AddrPort().Addr().Unmap()
	}
	msg := req(local)
	buf := make([]byte, 1100)
	rto := 250 * time.Millisecond
	for {
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("%w: %v", ErrNoAnswer, err)
		}
		until := time.Now().Add(rto)
		if d, ok := ctx.Deadline(); ok && d.Before(until) {
			until = d
		}
		_ = conn.SetReadDeadline(until)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ECONNREFUSED: the gateway's host says nobody listens.
				return fmt.Errorf("%w: %v", ErrNoAnswer, err)
			}
			ok, err := accept(buf[:n])
			if err != nil || ok {
				return err
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w within the deadline (%v)", ErrNoAnswer, ctx.Err())
		}
		rto *= 2
	}
}

// natPMP is the NAT-PMP method (RFC 6886).
type natPMP struct {
	gw   netip.Addr
	dial dialFunc
}

func (c *natPMP) String() string { return "NAT-PMP" }

func (c *natPMP) externalAddr(ctx context.Context) (netip.Addr, error) {
	var addr netip.Addr
	err := roundTrip(ctx, c.dial, c.gw, func(netip.Addr) []byte { return pmpExternalRequest() },
		func(b []byte) (bool, error) {
			a, err := parsePMP(b)
			if a.Op != pmpOpExternal && !errors.Is(err, ErrMalformed) {
				return false, nil // an answer to something else
			}
			addr = a.Addr
			return err == nil, err
		})
	return addr, err
}

func (c *natPMP) mapPort(ctx context.Context, p Proto, internal, external uint16, lease time.Duration) (grant, error) {
	var g grant
	op := uint8(pmpOpMapTCP)
	if p == UDP {
		op = pmpOpMapUDP
	}
	err := roundTrip(ctx, c.dial, c.gw, func(netip.Addr) []byte { return pmpMapRequest(p, internal, external, uint32(lease/time.Second)) },
		func(b []byte) (bool, error) {
			a, err := parsePMP(b)
			if errors.Is(err, ErrMalformed) {
				return false, err
			}
			if a.Op != op || (err == nil && a.Internal != internal) {
				return false, nil
			}
			if err != nil {
				return true, err
			}
			if lease > 0 && (a.External == 0 || a.Lifetime == 0) {
				return true, fmt.Errorf("%w: NAT-PMP granted port %d for %d s", ErrMalformed, a.External, a.Lifetime)
			}
			g = grant{External: a.External, Lease: time.Duration(a.Lifetime) * time.Second}
			return true, nil
		})
	return g, err
}

func (c *natPMP) unmap(ctx context.Context, p Proto, internal, _ uint16) error {
	_, err := c.mapPort(ctx, p, internal, 0, 0)
	return err
}

// pcp is the PCP method (RFC 6887), MAP opcode only.
type pcp struct {
	gw     netip.Addr
	dial   dialFunc
	nonces map[[2]uint16][12]byte // (proto, internal port): nonce of the mapping
}

func (c *pcp) String() string { return "PCP" }

// externalAddr is learned from MAP answers; PCP has no request for it.
func (c *pcp) externalAddr(context.Context) (netip.Addr, error) { return netip.Addr{}, nil }

func (c *pcp) nonce(p Proto, internal uint16) ([12]byte, error) {
	if c.nonces == nil {
		c.nonces = map[[2]uint16][12]byte{}
	}
	k := [2]uint16{uint16(p), internal}
	n, ok := c.nonces[k]
	if !ok {
		if _, err := rand.Read(n[:]); err != nil {
			return n, err
		}
		c.nonces[k] = n
	}
	return n, nil
}

func (c *pcp) mapPort(ctx context.Context, p Proto, internal, external uint16, lease time.Duration) (grant, error) {
	var g grant
	nonce, err := c.nonce(p, internal)
	if err != nil {
		return g, err
	}
	err = roundTrip(ctx, c.dial, c.gw, func(local netip.Addr) []byte {
		return pcpMapRequest(local, nonce, p, internal, external, uint32(lease/time.Second))
	}, func(b []byte) (bool, error) {
		a, err := parsePCP(b)
		if errors.Is(err, ErrMalformed) {
			return false, err
		}
		if err != nil {
			return true, err
		}
		if a.Nonce != nonce || a.Proto != p || a.Internal != internal {
			return false, nil
		}
		if lease > 0 && (a.External == 0 || a.Lifetime == 0) {
			return true, fmt.Errorf("%w: PCP granted port %d for %d s", ErrMalformed, a.External, a.Lifetime)
		}
		g = grant{External: a.External, Addr: a.ExternalAddr, Lease: time.Duration(a.Lifetime) * time.Second}
		return true, nil
	})
	return g, err
}

func (c *pcp) unmap(ctx context.Context, p Proto, internal, _ uint16) error {
	_, err := c.mapPort(ctx, p, internal, 0, 0)
	return err
}
