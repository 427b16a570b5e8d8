package utp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the package.
var (
	// ErrReset says the peer reset the connection.
	ErrReset = errors.New("utp: connection reset by peer")
	// ErrRefused says the peer answered our SYN with RESET.
	ErrRefused = errors.New("utp: connection refused")
	// ErrTimedOut says the peer stopped answering.
	ErrTimedOut = errors.New("utp: connection timed out")
	// ErrTooManyConns says the socket has Config.MaxConns connections.
	ErrTooManyConns = errors.New("utp: too many connections")
	// ErrSocketClosed says the Socket was closed; it wraps net.ErrClosed.
	ErrSocketClosed = fmt.Errorf("utp: socket closed: %w", net.ErrClosed)
	// ErrConnClosed says the Conn was closed by us; it wraps net.ErrClosed.
	ErrConnClosed = fmt.Errorf("utp: use of closed connection: %w", net.ErrClosed)
)

// connKey names a connection: the peer's address and the connection id
// its packets carry (our receive id).
type connKey struct {
	addr netip.AddrPort
	id   uint16
}

// Socket runs uTP over one UDP socket, which it owns and may share with
// the DHT through PacketConn. One goroutine reads the socket and one runs
// the timers of every connection.
type Socket struct {
	pc     net.PacketConn
	cfg    Config
	log    *slog.Logger
	epoch  time.Time
	tsBase uint32
	pool   *bufPools
	other  *packetView
	done   chan struct{} // closed by Close
	lnDone chan struct{} // closed by the Listener's Close
	wake   chan struct{} // starts the timer loop when idle
	accept chan *Conn
	wg     sync.WaitGroup

	udp   *net.UDPConn // pc, when segmentation offload may be used
	noGSO atomic.Bool  // the kernel refused segmentation offload

	// Owned by the read goroutine: whether it learns when the socket is
	// drained, and the connections owing a deferred acknowledgement.
	drainAware bool
	deferred   []*Conn

	mu       sync.Mutex // guards the fields below
	conns    map[connKey]*Conn
	closed   bool
	lnClosed bool
	resets   tokenBucket
}

// tokenBucket allows rate events a second, in bursts of twice that.
type tokenBucket struct {
	rate   float64
	tokens float64
	at     time.Time
}

func (b *tokenBucket) allow(now time.Time) bool {
	b.tokens = min(b.tokens+now.Sub(b.at).Seconds()*b.rate, 2*b.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// NewSocket runs uTP over pc (normally a *net.UDPConn), which the Socket
// owns from now on: Close closes it. Packets whose first byte is not that
// of a uTP v1 packet are queued for PacketConn.
func NewSocket(pc net.PacketConn, cfg Config) *Socket {
	cfg = cfg.withDefaults()
	s := &Socket{
		pc:     pc,
		cfg:    cfg,
		log:    cfg.Logger,
		epoch:  time.Now(),
		tsBase: rand.Uint32(),
		pool:   newBufPools(headerLen+maxSackLen+2+cfg.MaxPayload, headerLen+cfg.MaxProbePayload),
		done:   make(chan struct{}),
		lnDone: make(chan struct{}),
		wake:   make(chan struct{}, 1),
		accept: make(chan *Conn, cfg.AcceptBacklog),
		conns:  make(map[connKey]*Conn),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.resets = tokenBucket{rate: cfg.ResetRate, tokens: 2 * cfg.ResetRate, at: s.epoch}
	if sb, ok := pc.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok && cfg.SocketBuffer > 0 {
		// Best effort: a burst of a full window must not overflow the
		// kernel's queue; the kernel caps what it grants.
		sb.SetReadBuffer(cfg.SocketBuffer)
		sb.SetWriteBuffer(cfg.SocketBuffer)
	}
	s.other = newPacketView(s, cfg.OtherQueue)
	if u, ok := pc.(*net.UDPConn); ok && gsoSupported {
		s.udp = u
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.timerLoop()
	return s
}

// Listen opens a UDP socket on address (host:port, network "udp", "udp4"
// or "udp6") and runs a Socket on it.
func Listen(network, address string, cfg Config) (*Socket, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return NewSocket(pc, cfg), nil
}

// Addr is the socket's local address.
func (s *Socket) Addr() net.Addr { return s.pc.LocalAddr() }

// Close resets every connection, stops the socket's goroutines and closes
// the UDP socket and PacketConn. It waits for the goroutines to end.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.abort(ErrSocketClosed)
	}
	close(s.done)
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

// NumConns is the number of connections the socket holds.
func (s *Socket) NumConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Dial opens a uTP connection to addr. It returns when the peer answered
// the SYN, or with ctx's error, ErrRefused or ErrTimedOut.
func (s *Socket) Dial(ctx context.Context, addr netip.AddrPort) (*Conn, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSocketClosed
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		return nil, ErrTooManyConns
	}
	var key connKey
	for {
		key = connKey{addr, uint16(rand.Uint32())}
		if s.conns[key] == nil {
			break
		}
	}
	c := newConn(s, key, key.id+1, false)
	s.conns[key] = c
	s.mu.Unlock()
	s.poke()
	c.mu.Lock()
	c.sendSynLocked(time.Now())
	c.mu.Unlock()
	select {
	case <-c.connected:
		return c, nil
	case <-c.done:
		return nil, c.endErr()
	case <-ctx.Done():
		c.abort(ctx.Err())
		return nil, ctx.Err()
	}
}

// DialContext is Dial with the signature of net.Dialer.DialContext;
// network must be "utp", "udp", "udp4" or "udp6".
func (s *Socket) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "utp", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("utp: dial: unsupported network %q", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("utp: dial: %w", err)
	}
	c, err := s.Dial(ctx, ap)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Accept waits for the next incoming connection. It fails once the
// socket or its Listener is closed.
func (s *Socket) Accept() (*Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.lnDone:
		return nil, ErrSocketClosed
	case <-s.done:
		return nil, ErrSocketClosed
	}
}

// poke starts the timer loop if it is waiting for a first connection.
func (s *Socket) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Socket) micro(t time.Time) uint32 {
	return uint32(t.Sub(s.epoch)/time.Microsecond) + s.tsBase
}

// writeTo sends one datagram; errors count as a lost packet.
func (s *Socket) writeTo(b []byte, to *net.UDPAddr) {
	if _, err := s.pc.WriteTo(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("utp: send", "to", to, "err", err)
	}
}

func (s *Socket) removeConn(c *Conn) {
	s.mu.Lock()
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
	}
	s.mu.Unlock()
}

func (s *Socket) lookupLocked(ap netip.AddrPort, p packet) *Conn {
	switch p.typ {
	case stSyn:
		// A repeated SYN finds the connection it opened.
		if c := s.conns[connKey{ap, p.connID + 1}]; c != nil && c.incoming && c.sendID == p.connID {
			return c
		}
		return nil
	case stReset:
		// Implementations differ on which id a RESET carries: accept ours
		// or the peer's.
		if c := s.conns[connKey{ap, p.connID}]; c != nil {
			return c
		}
		for _, id := range [2]uint16{p.connID + 1, p.connID - 1} {
			if c := s.conns[connKey{ap, id}]; c != nil && c.sendID == p.connID {
				return c
			}
		}
		return nil
	}
	return s.conns[connKey{ap, p.connID}]
}

func (s *Socket) acceptLocked(ap netip.AddrPort, p packet, now time.Time) *Conn {
	key := connKey{ap, p.connID + 1}
	if s.closed || s.lnClosed || len(s.conns) >= s.cfg.MaxConns || s.conns[key] != nil ||
		len(s.accept) == cap(s.accept) {
		s.resetLocked(ap, p, now)
		return nil
	}
	c := newConn(s, key, p.connID, true)
	c.mu.Lock()
	c.acceptSynLocked(p, now)
	c.mu.Unlock()
	s.conns[key] = c
	s.accept <- c // room checked above, under s.mu, the only sender
	return c
}

// resetLocked answers a packet for no known connection with RESET, at
// most Config.ResetRate a second.
func (s *Socket) resetLocked(ap netip.AddrPort, p packet, now time.Time) {
	if !s.resets.allow(now) {
		return
	}
	h := header{typ: stReset, connID: p.connID, ts: s.micro(now), seq: uint16(rand.Uint32()), ack: p.seq}
	var buf [headerLen]byte
	s.writeTo(appendPacket(buf[:0], h, nil, nil), net.UDPAddrFromAddrPort(ap))
}

// timerLoop runs every connection's timers each Tick while there are
// connections.
func (s *Socket) timerLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	var conns []*Conn
	for {
		s.mu.Lock()
		conns = conns[:0]
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if len(conns) == 0 {
			select {
			case <-s.done:
				return
			case <-s.wake:
				continue
			}
		}
		select {
		case <-s.done:
			return
		case now := <-t.C:
			for _, c := range conns {
				c.tick(now)
			}
		}
	}
}

// Listener is the net.Listener view of a Socket's incoming connections.
type Listener struct{ s *Socket }

var _ net.Listener = Listener{}

// Listener returns the socket's net.Listener view.
func (s *Socket) Listener() Listener { return Listener{s} }

// Accept waits for the next incoming connection.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.s.Accept()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops accepting connections (SYNs are answered by RESET from now
// on); accepted connections and the socket go on.
func (l Listener) Close() error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if !l.s.lnClosed {
		l.s.lnClosed = true
		close(l.s.lnDone)
	}
	return nil
}

// Addr is the socket's local address.
func (l Listener) Addr() net.Addr { return l.s.Addr() }
