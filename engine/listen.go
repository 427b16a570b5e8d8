package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/swarmfs/swarmfs/engine/internal/utp"
)

// sockets are a client's listening sockets, all on one port: the TCP
// listener (dual-stack when the listen host is a wildcard) and one UDP
// socket per family, each a uTP socket whose other datagrams (KRPC) go
// to the DHT node of that family.
type sockets struct {
	tcp  net.Listener // nil when TCP is off
	udp4 *utp.Socket  // nil when the client has no IPv4 UDP socket
	udp6 *utp.Socket  // nil when it has no IPv6 UDP socket
	port uint16
}

// openAttempts bounds the retries of openSockets when the port the
// system gave the TCP listener is taken for UDP.
const openAttempts = 8

// openSockets opens the sockets of cfg.ListenAddr: TCP when TCP is a
// transport, UDP when uTP is one or the DHT shares the port. On a
// wildcard host both families get a UDP socket; the IPv6 one is optional
// (a host without IPv6). When uTP is not a transport the UDP sockets
// carry only the DHT: their listeners are closed, so uTP SYNs are
// answered with RESET.
func openSockets(cfg Config, log *slog.Logger) (*sockets, error) {
	host, portStr, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("engine: listen address %q: %w", cfg.ListenAddr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("engine: listen address %q: bad port", cfg.ListenAddr)
	}
	for attempt := 1; ; attempt++ {
		s, err := openSocketsOn(cfg, log, host, uint16(port))
		if err == nil || port != 0 || attempt == openAttempts || !errors.Is(err, errUDPTaken) {
			return s, err
		}
	}
}

// errUDPTaken says that the UDP port of the TCP listener was taken.
var errUDPTaken = errors.New("engine: UDP port taken")

func openSocketsOn(cfg Config, log *slog.Logger, host string, port uint16) (*sockets, error) {
	s := &sockets{port: port}
	useTCP := hasTransport(cfg.transports(), TransportTCP)
	useUTP := hasTransport(cfg.transports(), TransportUTP)
	if useTCP {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("engine: listen: %w", err)
		}
		s.tcp = ln
		s.port = ln.Addr().(*net.TCPAddr).AddrPort().Port()
	}
	if !useUTP && (cfg.NoDHT || cfg.DHTAddr != "") {
		return s, nil
	}
	ip, err := netip.ParseAddr(host)
	wild := host == "" || (err == nil && ip.IsUnspecified())
	ucfg := utp.Config{Logger: log.With("part", "utp")}
	open := func(network, h string) (*utp.Socket, error) {
		us, err := utp.Listen(network, net.JoinHostPort(h, strconv.Itoa(int(s.port))), ucfg)
		if err != nil {
			return nil, err
		}
		s.port = us.Addr().(*net.UDPAddr).AddrPort().Port()
		if !useUTP {
			us.Listener().Close()
		}
		return us, nil
	}
	taken := func(err error) error {
		s.close()
		if s.tcp != nil && port == 0 {
			return fmt.Errorf("%w: %w", errUDPTaken, err)
		}
		return fmt.Errorf("engine: listen: %w", err)
	}
	switch {
	case wild && (host == "" || ip.Is6()):
		if s.udp4, err = open("udp4", "0.0.0.0"); err != nil {
			return nil, taken(err)
		}
		if s.udp6, err = open("udp6", "::"); err != nil {
			log.Info("no IPv6 UDP socket; uTP and the DHT run on IPv4 only", "err", err)
		}
	case wild || ip.Unmap().Is4():
		if s.udp4, err = open("udp4", host); err != nil {
			return nil, taken(err)
		}
	default:
		if s.udp6, err = open("udp6", host); err != nil {
			return nil, taken(err)
		}
	}
	return s, nil
}

// addr returns the address the client listens on: the TCP listener's,
// else the first UDP socket's.
func (s *sockets) addr() netip.AddrPort {
	var ap netip.AddrPort
	switch {
	case s.tcp != nil:
		ap = s.tcp.Addr().(*net.TCPAddr).AddrPort()
	case s.udp4 != nil:
		ap = s.udp4.Addr().(*net.UDPAddr).AddrPort()
	case s.udp6 != nil:
		ap = s.udp6.Addr().(*net.UDPAddr).AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// utpSockets returns the UDP sockets that accept uTP connections.
func (s *sockets) utpSockets(cfg Config) []*utp.Socket {
	if !hasTransport(cfg.transports(), TransportUTP) {
		return nil
	}
	var out []*utp.Socket
	for _, u := range []*utp.Socket{s.udp4, s.udp6} {
		if u != nil {
			out = append(out, u)
		}
	}
	return out
}

// closeListeners stops accepting connections; the UDP sockets stay open
// for the connections and the DHT until close.
func (s *sockets) closeListeners() {
	if s.tcp != nil {
		s.tcp.Close()
	}
	for _, u := range []*utp.Socket{s.udp4, s.udp6} {
		if u != nil {
			u.Listener().Close()
		}
	}
}

// close closes every socket.
func (s *sockets) close() {
	s.closeListeners()
	for _, u := range []*utp.Socket{s.udp4, s.udp6} {
		if u != nil {
			u.Close()
		}
	}
}
