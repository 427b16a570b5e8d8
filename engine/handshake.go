package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Timeouts of the peer protocol.
const (
	handshakeTimeout = 10 * time.Second
	dialTimeout      = 8 * time.Second
	keepAliveEvery   = 2 * time.Minute
	idleTimeout      = 3 * time.Minute
	writeTimeout     = 60 * time.Second
)

// errSelf is returned when a handshake shows that we connected to ourselves.
var errSelf = errors.New("engine: connected to ourselves")

// handshakeResult is what the remote side told us in its handshake.
type handshakeResult struct {
	infoHash metainfo.Hash
	peerID   [20]byte
	fast     bool
	ext      bool
	dht      bool
}

func fromWire(h wire.Handshake) handshakeResult {
	return handshakeResult{
		infoHash: h.InfoHash, peerID: h.PeerID,
		fast: h.SupportsFast(), ext: h.SupportsExtended(), dht: h.SupportsDHT(),
	}
}

func ourHandshake(ih metainfo.Hash, peerID [20]byte, dht bool) wire.Handshake {
	h := wire.NewHandshake(ih, peerID)
	h.SetDHT(dht)
	return h
}

// acceptHandshake runs the listener side of a handshake on conn: read up to
// the info hash, ask known whether we serve it, answer, read the peer id.
func acceptHandshake(conn net.Conn, peerID [20]byte, dht bool, known func(metainfo.Hash) bool) (handshakeResult, error) {
	reserved, ih, err := wire.ReadHandshakeStart(conn)
	if err != nil {
		return handshakeResult{}, err
	}
	if !known(ih) {
		return handshakeResult{}, fmt.Errorf("engine: incoming handshake for unknown info hash %x", ih)
	}
	if err := wire.WriteHandshake(conn, ourHandshake(ih, peerID, dht)); err != nil {
		return handshakeResult{}, err
	}
	id, err := wire.ReadPeerID(conn)
	if err != nil {
		return handshakeResult{}, err
	}
	if id == peerID {
		return handshakeResult{}, errSelf
	}
	return fromWire(wire.Handshake{Reserved: reserved, InfoHash: ih, PeerID: id}), nil
}

// dialPeer connects to addr and runs the initiating side of a handshake.
func dialPeer(ctx context.Context, local netip.Addr, addr netip.AddrPort, ih metainfo.Hash, peerID [20]byte, dht bool) (net.Conn, handshakeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+handshakeTimeout)
	defer cancel()
	d := net.Dialer{Timeout: dialTimeout}
	if local.IsValid() && local.Is4() == addr.Addr().Is4() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, handshakeResult{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := wire.WriteHandshake(conn, ourHandshake(ih, peerID, dht)); err != nil {
		conn.Close()
		return nil, handshakeResult{}, err
	}
	h, err := wire.ReadHandshake(conn)
	if err != nil {
		conn.Close()
		return nil, handshakeResult{}, err
	}
	if h.InfoHash != ih {
		conn.Close()
		return nil, handshakeResult{}, fmt.Errorf("engine: peer answered with info hash %x", h.InfoHash)
	}
	if h.PeerID == peerID {
		conn.Close()
		return nil, handshakeResult{}, errSelf
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, fromWire(h), nil
}
