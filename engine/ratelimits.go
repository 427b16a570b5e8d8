package engine

import (
	"fmt"
	"net"

	"github.com/swarmfs/swarmfs/engine/internal/picker"
	"github.com/swarmfs/swarmfs/engine/internal/ratelimit"
)

// Rate limits: the Client owns one upload and one download token bucket
// (internal/ratelimit), made always so that SetRateLimits can turn them on
// at run time; an unlimited bucket costs an atomic load per read or write.
// Every peer connection is wrapped right after dial and accept, before any
// handshake, so protocol bytes are charged like payload; whoever wires a
// second transport (uTP, internal/utp) wraps its connections with
// Client.wrapConn at the same points, so that both share the buckets. Web
// seeds' HTTP connections are wrapped too (webseed.Config.WrapConn); they
// read in the Normal class. Within the
// download cap the bytes a reader waits for come first: a connection
// reads in the Urgent class while its peer has requests of ours for Now
// pieces outstanding. Within the upload cap our protocol messages (our
// requests among them) go before the blocks we serve: a write carrying no
// block is Urgent.

// PerTorrentConns is the default of Config.MaxConnsPerTorrent for a
// client-wide limit of maxConns connections: a quarter of it, at least 10
// (but never more than maxConns).
func PerTorrentConns(maxConns int) int {
	return min(maxConns, max(maxConns/4, 10))
}

// newLimiters returns the client's upload and download limiters.
func newLimiters(up, down int64) (*ratelimit.Limiter, *ratelimit.Limiter, error) {
	lu, err := ratelimit.New(ratelimit.Config{Rate: up})
	if err != nil {
		return nil, nil, fmt.Errorf("engine: upload rate %d: %w", up, err)
	}
	ld, err := ratelimit.New(ratelimit.Config{Rate: down})
	if err != nil {
		return nil, nil, fmt.Errorf("engine: download rate %d: %w", down, err)
	}
	return lu, ld, nil
}

// SetRateLimits changes the upload and download caps of the whole client,
// in bytes per second (0: unlimited). Connections in progress follow at
// once.
func (c *Client) SetRateLimits(up, down int64) error {
	if up < 0 || up > ratelimit.MaxRate || down < 0 || down > ratelimit.MaxRate {
		return fmt.Errorf("engine: rate limits %d, %d: %w", up, down, ratelimit.ErrRate)
	}
	if err := c.up.SetRate(up); err != nil {
		return fmt.Errorf("engine: upload rate: %w", err)
	}
	if err := c.down.SetRate(down); err != nil {
		return fmt.Errorf("engine: download rate: %w", err)
	}
	c.log.Info("rate limits set", "up", up, "down", down)
	return nil
}

// RateLimits returns the upload and download caps in bytes per second (0:
// unlimited).
func (c *Client) RateLimits() (up, down int64) { return c.up.Rate(), c.down.Rate() }

// wrapConn charges conn's writes and reads to the client's limiters.
func (c *Client) wrapConn(conn net.Conn) net.Conn {
	return ratelimit.Wrap(conn, c.up, c.down)
}

// limitedConn finds the rate-limited connection beneath conn (through an
// MSE or buffered streamConn), or nil.
func limitedConn(conn net.Conn) *ratelimit.Conn {
	for {
		switch c := conn.(type) {
		case *ratelimit.Conn:
			return c
		case *streamConn:
			conn = c.Conn
		default:
			return nil
		}
	}
}

// updateReadClasses makes the connections of peers that owe us blocks of
// Now pieces read in the Urgent class, and the others in the Normal one.
// It runs after each step of the loop, only while a download cap is set.
func (ls *loopState) updateReadClasses() {
	if ls.pk == nil || !ls.t.c.down.Limited() {
		return
	}
	for p := range ls.conns.peers {
		if p.lim == nil {
			continue
		}
		urgent := false
		for r := range p.reqSent {
			if ls.pk.Priority(r.Piece) == picker.Now {
				urgent = true
				break
			}
		}
		if urgent == p.urgent {
			continue
		}
		p.urgent = urgent
		if urgent {
			p.lim.SetReadClass(ratelimit.Urgent)
		} else {
			p.lim.SetReadClass(ratelimit.Normal)
		}
	}
}
