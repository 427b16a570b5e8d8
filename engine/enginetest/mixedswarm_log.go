package enginetest

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// PeerConn is one connection a client reported as established (its
// handshake completed), as parsed from the client's log.
type PeerConn struct {
	// Addr is the remote address: where the client dialed, or where an
	// incoming connection came from.
	Addr netip.AddrPort
	// Transport is "tcp" or "utp".
	Transport string
	// Punched is set when the connection went through a hole punched with
	// a relay's help (BEP 55).
	Punched bool
	// Outgoing is set when the client dialed.
	Outgoing bool
}

// String is "utp", "tcp", "utp punched", ..., with " in" for an incoming
// connection.
func (c PeerConn) String() string {
	s := c.Transport
	if c.Punched {
		s += " punched"
	}
	if !c.Outgoing {
		s += " in"
	}
	return s
}

// ParseSwarmfsPeerLine parses one line of `swarmfs -v` output (the text
// log format): ok is set for a "peer connected" record, which the engine
// logs once per completed handshake, e.g.
//
//	time=... level=DEBUG msg="peer connected" torrent=0a1b2c3d peer=100.64.0.3:6881 outgoing=true transport=utp punched=false ...
//
// Of a key given twice the first counts: the engine's own attributes come
// before the one the peer chose (client).
func ParseSwarmfsPeerLine(line string) (c PeerConn, ok bool) {
	if !strings.Contains(line, ` msg="peer connected" `) {
		return PeerConn{}, false
	}
	attrs := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if _, dup := attrs[k]; ok && !dup {
			attrs[k] = v
		}
	}
	ap, err := netip.ParseAddrPort(attrs["peer"])
	tr := attrs["transport"]
	if err != nil || (tr != "tcp" && tr != "utp") {
		return PeerConn{}, false
	}
	return PeerConn{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), Transport: tr,
		Punched: attrs["punched"] == "true", Outgoing: attrs["outgoing"] == "true"}, true
}

// ParseLTPeerLine parses one line of the libtorrent driver run with
// LTOptions.PeerLog: "peer HOST PORT utp|tcp punched|direct in|out".
func ParseLTPeerLine(line string) (c PeerConn, ok bool) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "peer" {
		return PeerConn{}, false
	}
	ip, err := netip.ParseAddr(f[1])
	if err != nil {
		return PeerConn{}, false
	}
	port, err := strconv.ParseUint(f[2], 10, 16)
	if err != nil {
		return PeerConn{}, false
	}
	if (f[3] != "tcp" && f[3] != "utp") || (f[4] != "punched" && f[4] != "direct") || (f[5] != "in" && f[5] != "out") {
		return PeerConn{}, false
	}
	return PeerConn{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Transport: f[3],
		Punched: f[4] == "punched", Outgoing: f[5] == "out"}, true
}

// Reach collects which of a mixed swarm's peers a client connected to: the
// first connection reported with each.
type Reach struct {
	sw    *MixedSwarm
	first map[string]PeerConn
	other int
}

// NewReach returns an empty Reach for the swarm.
func (sw *MixedSwarm) NewReach() *Reach {
	return &Reach{sw: sw, first: map[string]PeerConn{}}
}

// Add records c and returns the name of the swarm peer it is with ("" when
// its address is none of the swarm's: another client, counted apart).
func (r *Reach) Add(c PeerConn) string {
	name := r.sw.PeerOf(c.Addr.Addr())
	if name == "" {
		r.other++
		return ""
	}
	if _, seen := r.first[name]; !seen {
		r.first[name] = c
	}
	return name
}

// Len is the number of distinct swarm peers connected.
func (r *Reach) Len() int { return len(r.first) }

// Conn returns the first connection with the named peer.
func (r *Reach) Conn(name string) (PeerConn, bool) {
	c, ok := r.first[name]
	return c, ok
}

// Missed lists the swarm's peers not connected, in the swarm's order.
func (r *Reach) Missed() []string {
	var out []string
	for _, p := range r.sw.Peers {
		if _, ok := r.first[p.Name]; !ok {
			out = append(out, p.Name)
		}
	}
	return out
}

// NextLine returns the next line the process prints (stdout, or both
// streams for status programs), io.EOF once it exited and its output is
// read, or ctx's error. Lines it printed while nobody read are dropped
// beyond a buffer of 4096.
func (p *Proc) NextLine(ctx context.Context) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "", io.EOF
		}
		return line, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", p.Name, ctx.Err())
	}
}
