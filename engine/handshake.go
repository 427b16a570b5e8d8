package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/mse"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Timeouts of the peer protocol.
const (
	handshakeTimeout = 10 * time.Second
	// incomingHandshakeTimeout bounds the handshakes of an incoming
	// connection (MSE and BitTorrent): a peer that connects to us is
	// ready to talk, and a socket that says nothing must not hold a slot.
	incomingHandshakeTimeout = 5 * time.Second
	dialTimeout              = 8 * time.Second
	keepAliveEvery           = 2 * time.Minute
	idleTimeout              = 3 * time.Minute
	writeTimeout             = 60 * time.Second
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
	// crypto is the MSE method of the connection; 0 for plain BitTorrent.
	crypto mse.Method
	// transport carries the connection.
	transport Transport
	// punched is set on a connection dialed for a BEP 55 rendezvous.
	punched bool
}

// cryptoName names the connection's encryption for logs.
func (h handshakeResult) cryptoName() string {
	if h.crypto == 0 {
		return "none"
	}
	return "mse " + h.crypto.String()
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

// dialPeer connects to addr over a transport of d (prefer first when it
// is known to work) and runs the initiating side of a handshake,
// encrypted or not as enc says: with EncryptionPrefer an MSE handshake
// offering RC4 and plaintext is tried first and, when the peer does not
// complete it (it hangs up on bytes that are not a BitTorrent handshake),
// a plain connection second, over the transport that connected.
func dialPeer(ctx context.Context, d *dialer, addr netip.AddrPort, prefer Transport, ih metainfo.Hash, peerID [20]byte, dht bool, enc EncryptionPolicy) (net.Conn, handshakeResult, error) {
	switch enc {
	case EncryptionOff:
		return dialOnce(ctx, d, addr, prefer, ih, peerID, dht, 0)
	case EncryptionRequire:
		return dialOnce(ctx, d, addr, prefer, ih, peerID, dht, mse.RC4)
	}
	conn, hs, err := dialOnce(ctx, d, addr, prefer, ih, peerID, dht, mse.RC4|mse.Plaintext)
	var failed *mseFailure
	if err == nil || !errors.As(err, &failed) || ctx.Err() != nil {
		return conn, hs, err
	}
	return dialOnce(ctx, d, addr, failed.transport, ih, peerID, dht, 0)
}

// mseFailure is the error of an outgoing MSE handshake (after which a
// plain connection may be tried).
type mseFailure struct {
	err       error
	transport Transport // what carried the connection
}

func (e *mseFailure) Error() string { return "engine: encrypted handshake: " + e.err.Error() }
func (e *mseFailure) Unwrap() error { return e.err }

// dialOnce connects to addr and runs the initiating side of a handshake:
// plain when provide is 0, else MSE offering provide with our BitTorrent
// handshake as the initial payload.
func dialOnce(ctx context.Context, d *dialer, addr netip.AddrPort, prefer Transport, ih metainfo.Hash, peerID [20]byte, dht bool, provide mse.Method) (net.Conn, handshakeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+handshakeTimeout)
	defer cancel()
	conn, tr, err := d.connect(ctx, addr, prefer)
	if err != nil {
		return nil, handshakeResult{}, err
	}
	if d.wrap != nil {
		conn = d.wrap(conn) // charged from the first byte (rate limits)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	ours := ourHandshake(ih, peerID, dht)
	pc := conn
	if provide == 0 {
		if err := wire.WriteHandshake(conn, ours); err != nil {
			conn.Close()
			return nil, handshakeResult{}, err
		}
	} else {
		rw, method, err := mse.InitiateHandshake(conn, ih, wire.AppendHandshake(nil, ours), provide)
		if err != nil {
			conn.Close()
			return nil, handshakeResult{}, &mseFailure{err, tr}
		}
		pc = &streamConn{Conn: conn, r: rw, w: rw, crypto: method}
	}
	h, err := wire.ReadHandshake(pc)
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
	hs := fromWire(h)
	hs.transport = tr
	if sc, ok := pc.(*streamConn); ok {
		hs.crypto = sc.crypto
	}
	return pc, hs, nil
}

// streamConn is a connection whose bytes pass through r and w (an MSE
// stream, or a buffered reader that looked at the first bytes); deadlines,
// addresses and Close are those of the TCP connection beneath.
type streamConn struct {
	net.Conn
	r      io.Reader
	w      io.Writer
	crypto mse.Method // 0: plain
}

func (c *streamConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// openIncoming looks at the first 20 bytes of an incoming connection. A
// plain BitTorrent handshake passes (unless encryption is required);
// anything else is taken for an MSE handshake (unless encryption is off),
// which it runs, finding the torrent with lookup. It returns the connection
// to read the BitTorrent handshake from and, for MSE, the info hash it
// named.
func openIncoming(conn net.Conn, enc EncryptionPolicy, lookup func([20]byte) ([20]byte, bool)) (*streamConn, metainfo.Hash, error) {
	br := bufio.NewReader(conn)
	head, err := br.Peek(1 + len(wire.Protocol))
	if err != nil {
		return nil, metainfo.Hash{}, fmt.Errorf("engine: reading the first bytes: %w", err)
	}
	if head[0] == byte(len(wire.Protocol)) && string(head[1:]) == wire.Protocol {
		if enc == EncryptionRequire {
			return nil, metainfo.Hash{}, errors.New("engine: plain connection refused (encryption required)")
		}
		return &streamConn{Conn: conn, r: br, w: conn}, metainfo.Hash{}, nil
	}
	if enc == EncryptionOff {
		return nil, metainfo.Hash{}, errors.New("engine: not a plain BitTorrent handshake, and encryption is off")
	}
	// Like libtorrent, select plaintext when offered both unless
	// encryption is required: RC4 costs a core per 400 MB/s or so.
	accept, prefer := mse.RC4|mse.Plaintext, mse.Plaintext
	if enc == EncryptionRequire {
		accept, prefer = mse.RC4, mse.RC4
	}
	rw, skey, method, ia, err := mse.ReceiveHandshake(bufReadWriter{br, conn}, lookup, accept, prefer)
	if err != nil {
		return nil, metainfo.Hash{}, fmt.Errorf("engine: encrypted handshake: %w", err)
	}
	var r io.Reader = rw
	if len(ia) > 0 {
		r = io.MultiReader(bytes.NewReader(ia), rw)
	}
	return &streamConn{Conn: conn, r: r, w: rw, crypto: method}, skey, nil
}

// bufReadWriter reads through a buffered reader and writes to the
// connection.
type bufReadWriter struct {
	*bufio.Reader
	w io.Writer
}

func (b bufReadWriter) Write(p []byte) (int, error) { return b.w.Write(p) }
