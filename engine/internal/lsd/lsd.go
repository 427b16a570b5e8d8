package lsd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Errors of the package.
var (
	// ErrMalformed is wrapped by ParseAnnounce for a datagram that is not a
	// valid BT-SEARCH announce.
	ErrMalformed = errors.New("lsd: malformed announce")
	// ErrNoSocket is returned by New when no multicast socket could be
	// opened on any interface.
	ErrNoSocket = errors.New("lsd: no multicast socket")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("lsd: closed")
)

// Config configures an LSD instance. The zero value of every field but
// Port means the default written beside it.
type Config struct {
	// Port is the BitTorrent listen port announced. Required.
	Port uint16
	// Interfaces names the interfaces to announce and listen on; nil means
	// every interface that is up, multicast-capable and not loopback.
	Interfaces []string
	// NoIPv6 leaves out the IPv6 group; NoIPv4 the IPv4 group.
	NoIPv6, NoIPv4 bool
	// Interval is how often one torrent is announced again; zero means 5
	// minutes (BEP 14).
	Interval time.Duration
	// Gap is the least time between two announce messages, the global cap
	// (each message carries every torrent due, up to 24); zero means 1
	// minute, BEP 14's limit. The first message goes out at once.
	Gap time.Duration
	// PeerBuffer is the capacity of the Peers channel; peers found while it
	// is full are dropped. Zero means 64.
	PeerBuffer int
	// Logger receives debug logs; nil means silent.
	Logger *slog.Logger
}

// Torrent is one torrent the client takes part in.
type Torrent struct {
	InfoHash [20]byte
	// Private torrents (BEP 27) are never announced and their peers are
	// never reported.
	Private bool
}

// Peer is a peer found on the local network.
type Peer struct {
	InfoHash [20]byte
	// Addr is the announce's source address with the announced port.
	Addr netip.AddrPort
}

// LSD announces torrents on the local network and reports the peers that
// others announce. Its methods may be called from any goroutine.
type LSD struct {
	cfg    Config
	log    *slog.Logger
	cookie string
	socks  []*sock
	peers  chan Peer
	setc   chan [][20]byte
	recv   chan received
	done   chan struct{}
	wg     sync.WaitGroup

	closeOnce sync.Once
}

// sock is one multicast socket: a group joined on one interface.
type sock struct {
	conn *net.UDPConn
	host string // GroupV4 or GroupV6, the Host header and destination
	dst  *net.UDPAddr
	ifi  string
}

// received is an announce read by a socket goroutine.
type received struct {
	from netip.Addr
	a    Announce
}

// New opens the multicast sockets, joins the groups on the interfaces and
// starts the instance with no torrents. It opens every socket in the
// calling goroutine before it returns, so a caller in another network
// namespace (a test) can run New there. It fails with ErrNoSocket (with the
// reasons) when no socket could be opened.
func New(cfg Config) (*LSD, error) {
	if cfg.Port == 0 {
		return nil, errors.New("lsd: no port")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Gap <= 0 {
		cfg.Gap = time.Minute
	}
	if cfg.PeerBuffer <= 0 {
		cfg.PeerBuffer = 64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var c [8]byte
	if _, err := rand.Read(c[:]); err != nil {
		return nil, fmt.Errorf("lsd: cookie: %w", err)
	}
	l := &LSD{
		cfg: cfg, log: log, cookie: hex.EncodeToString(c[:]),
		peers: make(chan Peer, cfg.PeerBuffer),
		setc:  make(chan [][20]byte),
		recv:  make(chan received, 64),
		done:  make(chan struct{}),
	}
	ifis, err := interfaces(cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ifi := range ifis {
		for _, g := range []struct {
			network, host string
			skip          bool
		}{{"udp4", GroupV4, cfg.NoIPv4}, {"udp6", GroupV6, cfg.NoIPv6}} {
			if g.skip {
				continue
			}
			s, err := openSock(g.network, g.host, ifi)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", g.host, ifi.Name, err))
				continue
			}
			l.socks = append(l.socks, s)
		}
	}
	if len(l.socks) == 0 {
		if len(errs) == 0 {
			return nil, fmt.Errorf("%w: no up, multicast-capable, non-loopback interface", ErrNoSocket)
		}
		return nil, fmt.Errorf("%w: %w", ErrNoSocket, errors.Join(errs...))
	}
	for _, err := range errs {
		log.Debug("lsd: socket not opened", "err", err)
	}
	for _, s := range l.socks {
		l.wg.Add(1)
		go l.read(s)
	}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// interfaces resolves names, or picks the default set for nil.
func interfaces(names []string) ([]net.Interface, error) {
	if names != nil {
		out := make([]net.Interface, 0, len(names))
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, fmt.Errorf("lsd: interface %s: %w", n, err)
			}
			out = append(out, *ifi)
		}
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("lsd: interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out, nil
}

// openSock joins group host on ifi with a socket that shares the port with
// other instances and sees its own messages (Go turns multicast loopback
// off; another instance on this host must hear us).
func openSock(network, host string, ifi net.Interface) (*sock, error) {
	dst, err := net.ResolveUDPAddr(network, host)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenMulticastUDP(network, &ifi, dst)
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			if network == "udp4" {
				err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 1)
			} else {
				err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_LOOP, 1)
			}
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("multicast loopback: %w", err)
	}
	return &sock{conn: c, host: host, dst: dst, ifi: ifi.Name}, nil
}

// Peers delivers the peers others announce for torrents in the current
// set (never our own announces, never private torrents). It is closed by
// Close.
func (l *LSD) Peers() <-chan Peer { return l.peers }

// Cookie is the cookie this instance puts in its announces.
func (l *LSD) Cookie() string { return l.cookie }

// SetTorrents replaces the set of torrents to announce and to accept peers
// for; private torrents in ts are left out. A torrent new to the set is
// announced as soon as the global gap allows. It returns ErrClosed after
// Close.
func (l *LSD) SetTorrents(ts []Torrent) error {
	hashes := make([][20]byte, 0, len(ts))
	for _, t := range ts {
		if !t.Private {
			hashes = append(hashes, t.InfoHash)
		}
	}
	select {
	case l.setc <- hashes:
		return nil
	case <-l.done:
		return ErrClosed
	}
}

// Close stops announcing, closes the sockets, waits for the goroutines and
// closes Peers. It is safe to call more than once.
func (l *LSD) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		for _, s := range l.socks {
			s.conn.Close()
		}
		l.wg.Wait()
		close(l.peers)
	})
	return nil
}

// read parses datagrams from s and hands valid foreign announces to run.
func (l *LSD) read(s *sock) {
	defer l.wg.Done()
	buf := make([]byte, MaxMessage+1)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Debug("lsd: read", "iface", s.ifi, "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-l.done:
				return
			}
			continue
		}
		a, err := ParseAnnounce(buf[:n])
		if err != nil {
			l.log.Debug("lsd: ignored datagram", "from", from, "err", err)
			continue
		}
		if a.Cookie == l.cookie {
			continue
		}
		select {
		case l.recv <- received{from: from.Addr().Unmap(), a: a}:
		case <-l.done:
			return
		default: // the loop is behind: drop rather than queue without bound
		}
	}
}

// run owns the schedule: it sends announces when due and turns received
// announces into peers.
func (l *LSD) run() {
	defer l.wg.Done()
	sch := newSchedule(l.cfg.Interval, l.cfg.Gap)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	arm := func() {
		at, ok := sch.next()
		d := time.Hour
		if ok {
			d = max(time.Until(at), 0)
		}
		timer.Reset(d)
	}
	for {
		select {
		case <-l.done:
			return
		case hashes := <-l.setc:
			sch.set(hashes)
			arm()
		case r := <-l.recv:
			for _, h := range r.a.InfoHashes {
				if !sch.has(h) {
					continue
				}
				p := Peer{InfoHash: h, Addr: netip.AddrPortFrom(r.from, r.a.Port)}
				select {
				case l.peers <- p:
				default:
					l.log.Debug("lsd: peer dropped, Peers is full", "peer", p.Addr)
				}
			}
		case <-timer.C:
			now := time.Now()
			if due := sch.due(now, hashesPerMessage); len(due) > 0 {
				l.send(due)
				sch.sent(now, due)
			}
			arm()
		}
	}
}

// send multicasts one announce of hashes on every socket.
func (l *LSD) send(hashes [][20]byte) {
	for _, s := range l.socks {
		msg := formatAnnounce(s.host, l.cfg.Port, l.cookie, hashes)
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := s.conn.WriteToUDP(msg, s.dst); err != nil {
			l.log.Debug("lsd: announce not sent", "iface", s.ifi, "group", s.host, "err", err)
		}
	}
}
