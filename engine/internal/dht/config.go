package dht

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// DefaultBootstrap lists the well-known public DHT routers used when
// Config.Bootstrap is nil.
var DefaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"router.utorrent.com:6881",
}

// Protocol constants of BEP 5.
const (
	// K is the bucket size and the number of closest nodes a lookup keeps.
	K = 8
	// Alpha is the number of queries a lookup keeps in flight.
	Alpha = 3
)

// Config configures a Node. The zero value is valid: a node on a random UDP
// port with a random id that bootstraps from DefaultBootstrap and keeps no
// state file.
type Config struct {
	// Addr is the UDP address to listen on; "" means ":0" (any port).
	// Ignored when Conn is set.
	Addr string
	// Network is "udp4" for an IPv4 node, "udp6" for an IPv6 node (BEP
	// 32: each family has its own DHT and routing table), or "" to let
	// Addr decide: an IPv4 address makes an IPv4 node, an IPv6 address an
	// IPv6 node, and a wildcard such as ":0" a node on one dual-stack
	// socket whose one table holds both families (answers still follow
	// BEP 32: nodes of the family asked for or queried over). With Conn,
	// it names Conn's family; "" then takes Conn's local address.
	Network string
	// Conn, when non-nil, is the socket the node uses instead of opening its
	// own. The node reads from it (it must not be read by anyone else) and
	// writes to it; Close does not close it but sets a past read deadline to
	// stop the reader.
	Conn net.PacketConn
	// NodeID is this node's id; zero means the id saved in StateFile, or a
	// random one.
	NodeID metainfo.Hash
	// Bootstrap lists host:port addresses of nodes to bootstrap from; nil
	// means DefaultBootstrap, an empty non-nil slice means none. Names are
	// resolved when a bootstrap runs, each with a 5 s timeout.
	Bootstrap []string
	// StateFile is where the node id and routing table are saved (atomically,
	// on Close and every StateInterval) and reloaded from on start; "" means
	// no state is kept.
	StateFile string
	// StateInterval is how often the state is saved; 0 means 10 minutes.
	StateInterval time.Duration
	// MaxQPS caps inbound packets per second from one source IP (burst of
	// twice that); 0 means 50.
	MaxQPS float64
	// MaxGlobalQPS caps inbound packets per second from all sources
	// together; 0 means 20 times MaxQPS.
	MaxGlobalQPS float64
	// AllowLoopback admits loopback node and peer addresses, which public
	// DHT nodes reject. Tests need it; false means reject.
	AllowLoopback bool
	// AllowPrivate admits private (RFC 1918, ULA) and link-local addresses;
	// false means reject.
	AllowPrivate bool
	// QueryTimeout is how long one attempt of a query waits for its answer;
	// 0 means 2 seconds.
	QueryTimeout time.Duration
	// QueryRetries is how many times a ping or announce_peer is resent
	// after a timeout (lookup queries are sent once: parallel queries cover
	// losses); 0 means 1, negative means none.
	QueryRetries int
	// RefreshInterval is how long a bucket may go unchanged before it is
	// refreshed, and how long a node stays good without being heard from;
	// 0 means 15 minutes (BEP 5).
	RefreshInterval time.Duration
	// TokenInterval is how often the announce token secret rotates (tokens
	// stay valid for two intervals); 0 means 5 minutes.
	TokenInterval time.Duration
	// PeerTTL is how long an announced peer is kept; 0 means 30 minutes.
	PeerTTL time.Duration
	// MaxNodes caps the routing table's size; 0 means 1000.
	MaxNodes int
	// MaxInfoHashes caps the info hashes in the peer store; 0 means 1000.
	MaxInfoHashes int
	// MaxPeersPerHash caps the peers stored per info hash; 0 means 100.
	MaxPeersPerHash int
	// Logger receives debug and warning logs; nil means silent.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = ":0"
	}
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = DefaultBootstrap
	}
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = 10 * time.Minute
	}
	if cfg.MaxQPS <= 0 {
		cfg.MaxQPS = 50
	}
	if cfg.MaxGlobalQPS <= 0 {
		cfg.MaxGlobalQPS = 20 * cfg.MaxQPS
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 2 * time.Second
	}
	switch {
	case cfg.QueryRetries == 0:
		cfg.QueryRetries = 1
	case cfg.QueryRetries < 0:
		cfg.QueryRetries = 0
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 15 * time.Minute
	}
	if cfg.TokenInterval <= 0 {
		cfg.TokenInterval = 5 * time.Minute
	}
	if cfg.PeerTTL <= 0 {
		cfg.PeerTTL = 30 * time.Minute
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = 1000
	}
	if cfg.MaxInfoHashes <= 0 {
		cfg.MaxInfoHashes = 1000
	}
	if cfg.MaxPeersPerHash <= 0 {
		cfg.MaxPeersPerHash = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Errors returned by the package.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("dht: node closed")
	// ErrTimeout is wrapped by the error of a query that got no answer.
	ErrTimeout = errors.New("dht: query timed out")
	// ErrNoNodes is wrapped when a lookup, bootstrap or announce reached no
	// node that answered.
	ErrNoNodes = errors.New("dht: no node answered")
	// ErrBadMessage is wrapped by every KRPC parse error.
	ErrBadMessage = errors.New("dht: malformed message")
	// ErrBusy is returned when too many queries are already outstanding.
	ErrBusy = errors.New("dht: too many queries in flight")
)

// Error is a KRPC error reply from a remote node (BEP 5 "e" message).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("dht: remote error %d: %s", e.Code, e.Msg) }

// KRPC error codes (BEP 5).
const (
	CodeGeneric  = 201
	CodeServer   = 202
	CodeProtocol = 203
	CodeMethod   = 204
)

// Stats is a snapshot of a node's counters.
type Stats struct {
	// Nodes is the number of nodes in the routing table; GoodNodes those
	// heard from within RefreshInterval; Buckets the number of buckets.
	Nodes, GoodNodes, Buckets int
	// InfoHashes and Peers count the peer store's contents.
	InfoHashes, Peers int
	// QueriesIn counts queries answered; QueriesOut queries sent (each
	// attempt); Responses replies received to our queries; Timeouts
	// attempts that got no answer.
	QueriesIn, QueriesOut, Responses, Timeouts int64
	// Dropped counts inbound packets dropped by the rate limits or a full
	// queue; Malformed packets that failed to parse.
	Dropped, Malformed int64
}

// validAddr reports whether a is a usable node or peer address under cfg.
func (cfg *Config) validAddr(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	if !a.IsValid() || a.Port() == 0 || !ip.IsValid() {
		return false
	}
	if ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	if ip.Is4() && ip.As4() == [4]byte{255, 255, 255, 255} {
		return false
	}
	if ip.IsLoopback() && !cfg.AllowLoopback {
		return false
	}
	if (ip.IsPrivate() || ip.IsLinkLocalUnicast()) && !cfg.AllowPrivate {
		return false
	}
	return true
}
