package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// BEP 15 constants.
const (
	udpProtocolID   = 0x41727101980
	actionConnect   = 0
	actionAnnounce  = 1
	actionError     = 3
	connIDLifetime  = time.Minute
	udpHeaderLen    = 8  // action + transaction id
	udpAnnounceMin  = 20 // header + interval + leechers + seeders
	udpAnnounceLen  = 98 // announce request size
	udpConnectLen   = 16 // connect request and response size
	udpMaxDatagram  = 64 << 10
	udpMaxErrorText = 1024
)

// errConnExpired makes announce reconnect: the connection id aged out
// while retransmitting.
var errConnExpired = errors.New("tracker: UDP connection id expired")

// udpClient is the Client's UDP side: one socket, a read loop that hands
// datagrams to waiters by transaction id, and the connection id cache.
type udpClient struct {
	c    *Client
	conn *net.UDPConn
	dead chan struct{} // closed when the read loop exits
	now  func() time.Time

	mu      sync.Mutex
	pending map[uint32]*udpWaiter
	conns   map[netip.AddrPort]connEntry
}

type udpWaiter struct {
	from netip.AddrPort // only datagrams from here count
	ch   chan []byte    // cap 1
}

type connEntry struct {
	id uint64
	at time.Time
}

// udpClient returns the Client's UDP side, opening the socket on first use
// or after the previous socket failed.
func (c *Client) udpClient() (*udpClient, error) {
	c.udpMu.Lock()
	defer c.udpMu.Unlock()
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	if c.udp != nil {
		select {
		case <-c.udp.dead:
		default:
			return c.udp, nil
		}
	}
	la, err := net.ResolveUDPAddr("udp", c.cfg.UDPListenAddr)
	if err != nil {
		return nil, fmt.Errorf("tracker: UDP listen address %q: %w", c.cfg.UDPListenAddr, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("tracker: UDP socket: %w", err)
	}
	uc := &udpClient{
		c:       c,
		conn:    conn,
		dead:    make(chan struct{}),
		now:     time.Now,
		pending: make(map[uint32]*udpWaiter),
		conns:   make(map[netip.AddrPort]connEntry),
	}
	if c.udp != nil {
		// Keep the connection ids of the failed socket's trackers: they
		// are tied to our address, not to the socket.
		c.udp.mu.Lock()
		for k, v := range c.udp.conns {
			uc.conns[k] = v
		}
		c.udp.mu.Unlock()
	}
	c.udp = uc
	go uc.readLoop()
	return uc, nil
}

func (uc *udpClient) close() error {
	err := uc.conn.Close()
	<-uc.dead // the read loop ends as soon as the socket is closed
	return err
}

// readLoop hands each datagram to the waiter of its transaction id when it
// comes from that waiter's tracker; everything else is dropped.
func (uc *udpClient) readLoop() {
	defer close(uc.dead)
	buf := make([]byte, udpMaxDatagram)
	for {
		n, from, err := uc.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				uc.c.log.Debug("UDP tracker socket failed", "err", err)
			}
			return
		}
		if n < udpHeaderLen {
			continue
		}
		txid := binary.BigEndian.Uint32(buf[4:8])
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		uc.mu.Lock()
		w := uc.pending[txid]
		uc.mu.Unlock()
		if w == nil || w.from != from {
			uc.c.log.Debug("UDP datagram dropped", "from", from, "txid", txid)
			continue
		}
		select {
		case w.ch <- append([]byte(nil), buf[:n]...):
		default: // a duplicate answer; the first one is being handled
		}
	}
}

// announce sends one BEP 15 announce: connect (or reuse a cached
// connection id), then announce, retransmitting on the backoff schedule.
func (uc *udpClient) announce(ctx context.Context, u *url.URL, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	addr, err := resolveUDP(ctx, u, req.Family)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", rawURL, err)
	}
	tries := 0 // timeouts so far; shared by every exchange of this announce
	retried := false
	for range 4 { // bounded: reconnects after expiry or a stale id
		id, at, fresh, err := uc.connect(ctx, addr, &tries)
		if err != nil {
			return nil, withURL(err, rawURL)
		}
		txid, w := uc.register(addr)
		data, err := uc.exchange(ctx, addr, w, announcePacket(id, txid, req), &tries, at.Add(connIDLifetime))
		uc.unregister(txid)
		if errors.Is(err, errConnExpired) {
			continue
		}
		if err != nil {
			return nil, withURL(err, rawURL)
		}
		resp, err := parseUDPAnnounce(data, txid, addr.Addr().Is6(), uc.c.cfg.MaxPeers)
		var ferr *FailureError
		if errors.As(err, &ferr) && !fresh && !retried {
			// The tracker may have forgotten a cached id (a restart):
			// connect again once before giving up.
			uc.forget(addr, id)
			retried = true
			continue
		}
		if err != nil {
			return nil, withURL(err, rawURL)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("%w: %s: connection id kept expiring", ErrNoResponse, rawURL)
}

// withURL puts the announce URL into an error.
func withURL(err error, rawURL string) error {
	var ferr *FailureError
	if errors.As(err, &ferr) {
		ferr.URL = rawURL
		return ferr
	}
	return fmt.Errorf("%w (%s)", err, rawURL)
}

// connect returns a connection id for addr, from the cache when it is less
// than a minute old (fresh = false), else from a connect exchange.
func (uc *udpClient) connect(ctx context.Context, addr netip.AddrPort, tries *int) (id uint64, at time.Time, fresh bool, err error) {
	uc.mu.Lock()
	e, ok := uc.conns[addr]
	uc.mu.Unlock()
	if ok && uc.now().Sub(e.at) < connIDLifetime {
		return e.id, e.at, false, nil
	}
	txid, w := uc.register(addr)
	defer uc.unregister(txid)
	pkt := make([]byte, udpConnectLen)
	binary.BigEndian.PutUint64(pkt[0:], udpProtocolID)
	binary.BigEndian.PutUint32(pkt[8:], actionConnect)
	binary.BigEndian.PutUint32(pkt[12:], txid)
	data, err := uc.exchange(ctx, addr, w, pkt, tries, time.Time{})
	if err != nil {
		return 0, time.Time{}, false, err
	}
	id, err = parseUDPConnect(data, txid)
	if err != nil {
		return 0, time.Time{}, false, err
	}
	at = uc.now()
	uc.mu.Lock()
	for k, e := range uc.conns { // keep the cache as small as the live ids
		if at.Sub(e.at) >= connIDLifetime {
			delete(uc.conns, k)
		}
	}
	uc.conns[addr] = connEntry{id: id, at: at}
	uc.mu.Unlock()
	return id, at, true, nil
}

// forget drops a cached connection id if it is still id.
func (uc *udpClient) forget(addr netip.AddrPort, id uint64) {
	uc.mu.Lock()
	if uc.conns[addr].id == id {
		delete(uc.conns, addr)
	}
	uc.mu.Unlock()
}

// register picks a transaction id that no exchange in flight uses and
// records a waiter for datagrams from addr carrying it.
func (uc *udpClient) register(addr netip.AddrPort) (uint32, *udpWaiter) {
	w := &udpWaiter{from: addr, ch: make(chan []byte, 1)}
	uc.mu.Lock()
	defer uc.mu.Unlock()
	for {
		txid := randUint32()
		if uc.pending[txid] == nil {
			uc.pending[txid] = w
			return txid, w
		}
	}
}

func (uc *udpClient) unregister(txid uint32) {
	uc.mu.Lock()
	delete(uc.pending, txid)
	uc.mu.Unlock()
}

// exchange sends pkt to addr and waits for the datagram that w receives,
// retransmitting after RetryBase*2^n. *tries counts timeouts; past
// UDPMaxRetries it returns ErrNoResponse. With validUntil set, a timeout
// after that instant returns errConnExpired instead of retransmitting.
func (uc *udpClient) exchange(ctx context.Context, addr netip.AddrPort, w *udpWaiter, pkt []byte, tries *int, validUntil time.Time) ([]byte, error) {
	for {
		if _, err := uc.conn.WriteToUDPAddrPort(pkt, addr); err != nil {
			select {
			case <-uc.dead:
				return nil, ErrClosed
			default:
			}
			return nil, fmt.Errorf("tracker: sending to %s: %w", addr, err)
		}
		timer := time.NewTimer(uc.c.cfg.UDPRetryBase << min(*tries, 8))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("tracker: waiting for %s: %w", addr, ctx.Err())
		case <-uc.dead:
			timer.Stop()
			return nil, ErrClosed
		case data := <-w.ch:
			timer.Stop()
			return data, nil
		case <-timer.C:
		}
		*tries++
		if *tries > uc.c.cfg.UDPMaxRetries {
			return nil, fmt.Errorf("%w: %s after %d tries", ErrNoResponse, addr, *tries)
		}
		if !validUntil.IsZero() && !uc.now().Before(validUntil) {
			return nil, errConnExpired
		}
		uc.c.log.Debug("UDP tracker retransmit", "addr", addr, "try", *tries)
	}
}

// resolveUDP finds the tracker's address of family f, preferring IPv4
// for FamilyAny. A tracker without an address of f gives ErrNoAddress.
func resolveUDP(ctx context.Context, u *url.URL, f Family) (netip.AddrPort, error) {
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("UDP tracker URL needs a port, got %q", u.Host)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !f.allows(a) {
			return netip.AddrPort{}, fmt.Errorf("%w: %s over %s", ErrNoAddress, a, f)
		}
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, f.network("ip"), host)
	if err != nil {
		var dnsErr *net.DNSError
		var addrErr *net.AddrError
		if f != FamilyAny && (errors.As(err, &addrErr) || errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			return netip.AddrPort{}, fmt.Errorf("%w: %q over %s: %w", ErrNoAddress, host, f, err)
		}
		return netip.AddrPort{}, err
	}
	addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool { return !f.allows(a) })
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: %q over %s", ErrNoAddress, host, f)
	}
	best := addrs[0].Unmap()
	for _, a := range addrs {
		if a.Unmap().Is4() {
			best = a.Unmap()
			break
		}
	}
	return netip.AddrPortFrom(best, uint16(port)), nil
}

// announcePacket builds a BEP 15 announce request.
func announcePacket(connID uint64, txid uint32, req AnnounceRequest) []byte {
	p := make([]byte, udpAnnounceLen)
	binary.BigEndian.PutUint64(p[0:], connID)
	binary.BigEndian.PutUint32(p[8:], actionAnnounce)
	binary.BigEndian.PutUint32(p[12:], txid)
	copy(p[16:36], req.InfoHash[:])
	copy(p[36:56], req.PeerID[:])
	binary.BigEndian.PutUint64(p[56:], uint64(max(req.Downloaded, 0)))
	binary.BigEndian.PutUint64(p[64:], uint64(max(req.Left, 0)))
	binary.BigEndian.PutUint64(p[72:], uint64(max(req.Uploaded, 0)))
	binary.BigEndian.PutUint32(p[80:], uint32(req.Event))
	// p[84:88]: IP address 0 = the sender's.
	binary.BigEndian.PutUint32(p[88:], req.Key)
	numWant := int32(-1)
	if req.NumWant > 0 {
		numWant = int32(min(req.NumWant, 1<<31-1))
	}
	binary.BigEndian.PutUint32(p[92:], uint32(numWant))
	binary.BigEndian.PutUint16(p[96:], req.Port)
	return p
}

// udpError returns the *FailureError of an error datagram (action 3).
func udpError(p []byte) error {
	msg := p[udpHeaderLen:]
	if len(msg) > udpMaxErrorText {
		msg = msg[:udpMaxErrorText]
	}
	return &FailureError{Reason: string(msg)}
}

// parseUDPConnect validates a connect response and returns its connection id.
func parseUDPConnect(p []byte, txid uint32) (uint64, error) {
	if err := checkUDPHeader(p, txid, actionConnect); err != nil {
		return 0, err
	}
	if len(p) < udpConnectLen {
		return 0, fmt.Errorf("%w: connect response of %d bytes", ErrBadResponse, len(p))
	}
	return binary.BigEndian.Uint64(p[8:16]), nil
}

// parseUDPAnnounce validates an announce response for txid; peers are 18
// bytes each when ipv6 (the tracker was reached over IPv6), else 6. At most
// maxPeers are kept (0 = no cap); a partial entry at the end is ignored.
func parseUDPAnnounce(p []byte, txid uint32, ipv6 bool, maxPeers int) (*AnnounceResponse, error) {
	if err := checkUDPHeader(p, txid, actionAnnounce); err != nil {
		return nil, err
	}
	if len(p) < udpAnnounceMin {
		return nil, fmt.Errorf("%w: announce response of %d bytes", ErrBadResponse, len(p))
	}
	if maxPeers <= 0 {
		maxPeers = int(^uint(0) >> 1)
	}
	r := &AnnounceResponse{
		Interval: seconds(int64(binary.BigEndian.Uint32(p[8:]))),
		Leechers: count(int64(binary.BigEndian.Uint32(p[12:]))),
		Seeders:  count(int64(binary.BigEndian.Uint32(p[16:]))),
	}
	ps := peerSet{max: maxPeers}
	if ipv6 {
		ps.addCompact(p[udpAnnounceMin:], 16)
	} else {
		ps.addCompact(p[udpAnnounceMin:], 4)
	}
	r.Peers = ps.list
	return r, nil
}

// checkUDPHeader checks a response's transaction id and action; the error
// action becomes a *FailureError.
func checkUDPHeader(p []byte, txid uint32, action uint32) error {
	if len(p) < udpHeaderLen {
		return fmt.Errorf("%w: datagram of %d bytes", ErrBadResponse, len(p))
	}
	if got := binary.BigEndian.Uint32(p[4:]); got != txid {
		return fmt.Errorf("%w: transaction id %#x, want %#x", ErrBadResponse, got, txid)
	}
	switch got := binary.BigEndian.Uint32(p[0:]); got {
	case action:
		return nil
	case actionError:
		return udpError(p)
	default:
		return fmt.Errorf("%w: action %d, want %d", ErrBadResponse, got, action)
	}
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
