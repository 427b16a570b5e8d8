package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/dht"
	"github.com/swarmfs/swarmfs/engine/internal/mse"
	"github.com/swarmfs/swarmfs/engine/internal/portmap"
	"github.com/swarmfs/swarmfs/engine/internal/ratelimit"
	"github.com/swarmfs/swarmfs/engine/internal/tracker"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Config configures a Client. The zero value is valid.
type Config struct {
	// ListenAddr is the listen address of TCP, uTP and the DHT (one TCP
	// listener and one UDP socket per family, all on one port); "" means
	// ":0" (any port, both families).
	ListenAddr string
	// Transports are the transports peer connections may use, outgoing
	// and incoming; nil means uTP and TCP (uTP tried first, as libtorrent
	// does). See Transport.
	Transports []Transport
	// CacheDir is the root of the piece cache; "" means cache.DefaultDir().
	CacheDir string
	// CacheSize caps the bytes kept in the cache for all torrents; 0 means
	// unlimited.
	CacheSize int64
	// MaxConns is the number of peer connections of the whole client
	// (all torrents, dials in flight included); 0 means 200.
	MaxConns int
	// MaxConnsPerTorrent is the number of connected peers of one torrent;
	// 0 derives it from MaxConns (see PerTorrentConns); it is never more
	// than MaxConns.
	MaxConnsPerTorrent int
	// MaxUploadRate and MaxDownloadRate cap the bytes per second the
	// client sends to and receives from all peers of all torrents,
	// payload and protocol bytes alike; 0 means unlimited. SetRateLimits
	// changes them at run time.
	MaxUploadRate, MaxDownloadRate int64
	// NoUpload never unchokes a peer and serves no piece: the client only
	// downloads (it still answers the protocol and keeps connections).
	NoUpload bool
	// UploadSlots is the number of unchoked peers per torrent; 0 means 4.
	UploadSlots int
	// MaxReadahead caps each reader's window in bytes; 0 means 64 MiB.
	MaxReadahead int64
	// NoDHT turns the DHT node off.
	NoDHT bool
	// DHTBootstrap lists "host:port" DHT routers; nil means the well-known
	// public routers.
	DHTBootstrap []string
	// DHTAddr is the UDP address of the DHT node; "" means the client's
	// UDP sockets (the DHT shares them with uTP).
	DHTAddr string
	// Encryption is the Message Stream Encryption (MSE/PE) policy: "" means
	// EncryptionPrefer; see EncryptionPolicy for the others.
	Encryption EncryptionPolicy
	// NoLSD turns local service discovery (BEP 14) off; it is off too
	// when ListenAddr is a loopback address.
	NoLSD bool
	// NoPortMapping turns off asking the home router (PCP, NAT-PMP, UPnP
	// IGD) to forward the listen port; it is off too when ListenAddr is a
	// loopback address.
	NoPortMapping bool
	// WebSeedConns is the most HTTP connections (and fetches in flight)
	// per web seed of a torrent; 0 means 2.
	WebSeedConns int
	// Logger receives debug and error logs; nil means silent.
	Logger *slog.Logger

	// portmap, when not nil, is the base configuration of the port
	// mapper (tests set the gateway and the host's sockets).
	portmap *portmap.Config
}

// transports returns cfg.Transports or its default.
func (cfg Config) transports() []Transport {
	if cfg.Transports == nil {
		return []Transport{TransportUTP, TransportTCP}
	}
	return cfg.Transports
}

// EncryptionPolicy says when peer connections use Message Stream
// Encryption, the obfuscated handshake and RC4 stream that libtorrent,
// Transmission, aria2 and µTorrent speak.
type EncryptionPolicy string

// The encryption policies.
const (
	// EncryptionPrefer, the default: outgoing connections try MSE
	// offering RC4 and plaintext (the peer picks) and, when the peer does
	// not complete the MSE handshake, connect again in plain BitTorrent;
	// incoming connections may be plain or MSE, where we select plaintext
	// when the peer offers both (as libtorrent does: the handshake is
	// obfuscated, the data is not; RC4 costs CPU) and RC4 when it offers
	// only RC4.
	EncryptionPrefer EncryptionPolicy = "prefer"
	// EncryptionRequire: every connection, outgoing or incoming, is MSE
	// with RC4; plain peers and peers offering only plaintext are refused.
	EncryptionRequire EncryptionPolicy = "require"
	// EncryptionOff: MSE is never used; outgoing connections are plain and
	// incoming MSE handshakes are refused.
	EncryptionOff EncryptionPolicy = "off"
)

// Defaults used when a Config field is zero.
const (
	DefaultMaxConns = 200
	// DefaultMaxConnsPerTorrent is PerTorrentConns(DefaultMaxConns).
	DefaultMaxConnsPerTorrent = 50
	DefaultUploadSlots        = 4
	DefaultMaxReadahead       = 64 << 20
)

// Errors returned by the engine.
var (
	// ErrClosed is returned by operations on a closed Client or a removed Torrent.
	ErrClosed = errors.New("engine: closed")
	// ErrExists is returned when adding a torrent that is already added.
	ErrExists = errors.New("engine: torrent already added")
	// ErrNoInfo is returned by operations that need metadata a magnet
	// torrent does not have yet.
	ErrNoInfo = errors.New("engine: metadata not known yet")
)

// peerIDPrefix is the Azureus-style client prefix of our peer id.
const peerIDPrefix = "-SF0001-"

// Client is a BitTorrent client: one listen socket, a peer id, and any number
// of torrents. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	peerID [20]byte
	socks  *sockets
	dial   *dialer
	addr   netip.AddrPort
	budget *cache.Budget
	dht    *dht.Client
	lsd    *lsdFeed        // nil when LSD is off or found no interface
	mapper *portmap.Mapper // nil when port mapping is off

	trackers *tracker.Client
	// up and down are the client's rate limiters, shared by every peer
	// connection (see ratelimits.go); never nil.
	up, down *ratelimit.Limiter
	localIP  netip.Addr // the listen IP when bound to one; outgoing connections leave from it

	// connSem bounds the number of open peer connections of the client
	// (outgoing dials and handshakes, and peers).
	connSem chan struct{}
	// inSem bounds the incoming connections still in their handshake, so
	// that sockets that connect and send nothing cannot take the slots
	// outgoing dials need.
	inSem  chan struct{}
	closed chan struct{}
	wg     sync.WaitGroup

	mu        sync.Mutex
	torrents  map[metainfo.Hash]*Torrent
	isClosed  bool
	closeOnce sync.Once
}

// New starts a Client listening on cfg.ListenAddr.
func New(cfg Config) (*Client, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":0"
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cache.DefaultDir()
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerTorrent <= 0 {
		cfg.MaxConnsPerTorrent = PerTorrentConns(cfg.MaxConns)
	}
	cfg.MaxConnsPerTorrent = min(cfg.MaxConnsPerTorrent, cfg.MaxConns)
	if cfg.UploadSlots <= 0 {
		cfg.UploadSlots = DefaultUploadSlots
	}
	if cfg.MaxReadahead <= 0 {
		cfg.MaxReadahead = DefaultMaxReadahead
	}
	switch cfg.Encryption {
	case "":
		cfg.Encryption = EncryptionPrefer
	case EncryptionPrefer, EncryptionRequire, EncryptionOff:
	default:
		return nil, fmt.Errorf("engine: encryption policy %q: want %q, %q or %q", cfg.Encryption, EncryptionPrefer, EncryptionRequire, EncryptionOff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	up, down, err := newLimiters(cfg.MaxUploadRate, cfg.MaxDownloadRate)
	if err != nil {
		return nil, err
	}
	c := &Client{
		up:       up,
		down:     down,
		cfg:      cfg,
		log:      log,
		connSem:  make(chan struct{}, cfg.MaxConns),
		inSem:    make(chan struct{}, incomingHandshakes(cfg.MaxConns)),
		closed:   make(chan struct{}),
		torrents: make(map[metainfo.Hash]*Torrent),
	}
	if cfg.CacheSize > 0 {
		c.budget = cache.NewBudget(cfg.CacheSize)
	}
	copy(c.peerID[:], peerIDPrefix)
	if _, err := rand.Read(c.peerID[len(peerIDPrefix):]); err != nil {
		return nil, fmt.Errorf("engine: peer id: %w", err)
	}
	for _, tr := range cfg.Transports {
		if tr != TransportTCP && tr != TransportUTP {
			return nil, fmt.Errorf("engine: transport %v: want tcp or utp", tr)
		}
	}
	if cfg.Transports != nil && len(cfg.Transports) == 0 {
		return nil, errors.New("engine: no transport")
	}
	socks, err := openSockets(cfg, log)
	if err != nil {
		return nil, err
	}
	c.socks = socks
	c.addr = socks.addr()
	c.dial = &dialer{tcp: socks.tcp != nil, wrap: c.wrapConn}
	if hasTransport(cfg.transports(), TransportUTP) {
		c.dial.utp4, c.dial.utp6 = socks.udp4, socks.udp6
	}
	tcfg := tracker.Config{Logger: log}
	if ip := c.addr.Addr(); !ip.IsUnspecified() {
		// Bound to one address: leave from it too, so that trackers and
		// peers see the address we listen on.
		c.localIP = ip
		c.dial.local = ip
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Timeout: dialTimeout}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = d.DialContext
		tcfg.HTTPClient = &http.Client{Transport: tr}
		tcfg.UDPListenAddr = netip.AddrPortFrom(ip, 0).String()
	}
	c.trackers = tracker.NewClient(tcfg)
	if !cfg.NoDHT {
		d, err := startDHT(c)
		if err != nil {
			socks.close()
			c.trackers.Close()
			return nil, err
		}
		c.dht = d
	}
	// A client bound to a loopback address cannot be reached from the
	// local network, nor through the router.
	if !cfg.NoLSD && !c.addr.Addr().IsLoopback() {
		c.startLSD()
	}
	if !cfg.NoPortMapping && !c.addr.Addr().IsLoopback() {
		c.startPortMap()
	}
	if socks.tcp != nil {
		c.wg.Add(1)
		go c.acceptLoop(socks.tcp, TransportTCP)
	}
	for _, u := range socks.utpSockets(cfg) {
		c.wg.Add(1)
		go c.acceptLoop(u.Listener(), TransportUTP)
	}
	c.log.Debug("client started", "addr", c.addr, "peer_id", string(c.peerID[:8]))
	return c, nil
}

// Addr returns the address the client listens on (TCP, and UDP for uTP
// and the DHT, on the same port).
func (c *Client) Addr() netip.AddrPort { return c.addr }

// PeerID returns the client's 20-byte peer id.
func (c *Client) PeerID() [20]byte { return c.peerID }

// Close removes every torrent, stops the listener and the DHT node, and
// waits for all goroutines of the client to end.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.isClosed = true
		ts := make([]*Torrent, 0, len(c.torrents))
		for _, t := range c.torrents {
			ts = append(ts, t)
		}
		c.mu.Unlock()
		close(c.closed)
		c.socks.closeListeners()
		for _, t := range ts {
			t.Remove()
		}
		if c.dht != nil {
			c.dht.Close()
		}
		if c.lsd != nil {
			c.lsd.close()
		}
		if c.mapper != nil {
			c.mapper.Close() // deletes the mappings, within its timeout
		}
		c.wg.Wait()
		c.socks.close()
		c.trackers.Close()
	})
	return nil
}

// Torrents returns the torrents of the client.
func (c *Client) Torrents() []*Torrent {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		ts = append(ts, t)
	}
	return ts
}

// Torrent returns the torrent with the info hash h, if added.
func (c *Client) Torrent(h metainfo.Hash) (*Torrent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.torrents[h]
	return t, ok
}

// AddOptions are per-torrent options of AddTorrent and AddMagnet.
type AddOptions struct {
	// Peers are dialed at once, beside those from trackers and the DHT.
	Peers []netip.AddrPort
	// Prefetch downloads the whole torrent in the background, below readers
	// in priority. Without it only what readers ask for is fetched.
	Prefetch bool
	// Import is a directory holding existing data laid out as the torrent
	// says (DIR/NAME for a single file, DIR/NAME/PATH... for several). Its
	// pieces are verified into the cache so that they can be seeded.
	Import string
	// WebSeeds are BEP 19 web seed URLs used beside the torrent's url-list.
	WebSeeds []string
	// NoWebSeeds turns web seeds off: neither the url-list nor WebSeeds is
	// used.
	NoWebSeeds bool
	// DataDir keeps the torrent in its own files under this directory
	// (DIR/NAME for a single file, DIR/NAME/PATH... for several), written
	// in place as pieces verify and seeded from there, instead of in the
	// cache's data file: nothing is copied, and no cache cap applies (the
	// user's files are never evicted). Existing files are verified in the
	// background. The resume state stays in the cache directory.
	DataDir string
	// Content, set instead of DataDir, is where the content itself is,
	// whatever its name: the top directory of a multi-file torrent, or the
	// file of a single-file one (seed PATH). It is used in place like
	// DataDir.
	Content string
}

// layout is the cache layout that opt asks for.
func (opt AddOptions) layout() cache.Layout {
	switch {
	case opt.Content != "":
		return cache.Files{Content: opt.Content}
	case opt.DataDir != "":
		return cache.Files{Dir: opt.DataDir}
	}
	return cache.DataFile{}
}

// AddTorrent adds a torrent whose metainfo is known and starts it.
func (c *Client) AddTorrent(mi *metainfo.MetaInfo, opt AddOptions) (*Torrent, error) {
	if mi == nil || mi.Info == nil {
		return nil, fmt.Errorf("engine: add torrent: %w", ErrNoInfo)
	}
	var trackers [][]string
	for _, tier := range mi.Trackers() {
		trackers = append(trackers, append([]string(nil), tier...))
	}
	return c.add(mi.InfoHash, mi.Info.Name, mi, trackers, opt)
}

// AddMagnet adds a torrent known by its info hash. Metadata is fetched from
// peers (BEP 9), or read from the cache directory when fetched before;
// InfoReady is closed when it is known.
func (c *Client) AddMagnet(m *metainfo.Magnet, opt AddOptions) (*Torrent, error) {
	if m == nil {
		return nil, fmt.Errorf("engine: add magnet: nil magnet")
	}
	opt.Peers = append(opt.Peers, parseAddrs(m.Peers)...)
	opt.WebSeeds = append(slices.Clip(opt.WebSeeds), m.WebSeeds...) // BEP 19 ws=
	var trackers [][]string
	for _, tr := range m.Trackers {
		// BEP 12 semantics for magnets: each tr is its own tier.
		trackers = append(trackers, []string{tr})
	}
	name := m.Name
	if name == "" {
		name = m.InfoHash.String()
	}
	var mi *metainfo.MetaInfo
	if b, err := loadMetadata(c.cfg.CacheDir, m.InfoHash); err == nil {
		if info, err := metainfo.ParseInfo(b); err == nil {
			mi = &metainfo.MetaInfo{Info: info, InfoBytes: b, InfoHash: m.InfoHash, AnnounceList: trackers}
			name = info.Name
		}
	}
	return c.add(m.InfoHash, name, mi, trackers, opt)
}

func (c *Client) add(ih metainfo.Hash, name string, mi *metainfo.MetaInfo, trackers [][]string, opt AddOptions) (*Torrent, error) {
	if err := c.checkAdd(ih); err != nil {
		return nil, err
	}
	// Opening the cache store does disk I/O: not under c.mu.
	t, err := newTorrent(c, ih, name, mi, trackers, opt)
	if err != nil {
		if cerr := c.checkAdd(ih); cerr != nil {
			return nil, cerr // added meanwhile (its store is locked)
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkAddLocked(ih); err != nil {
		if st := t.storeOrNil(); st != nil {
			st.Close()
		}
		return nil, err
	}
	c.torrents[ih] = t
	t.start()
	c.lsd.changed(t)
	return t, nil
}

func (c *Client) checkAdd(ih metainfo.Hash) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkAddLocked(ih)
}

func (c *Client) checkAddLocked(ih metainfo.Hash) error {
	if c.isClosed {
		return ErrClosed
	}
	if _, ok := c.torrents[ih]; ok {
		return fmt.Errorf("%w: %s", ErrExists, ih)
	}
	return nil
}

// forget drops a removed torrent from the client's table.
func (c *Client) forget(t *Torrent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.torrents[t.infoHash] == t {
		delete(c.torrents, t.infoHash)
	}
	c.lsd.changed(nil)
}

// acquireConn reserves one connection slot of the client; it never blocks.
func (c *Client) acquireConn() bool {
	select {
	case c.connSem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (c *Client) releaseConn() { <-c.connSem }

// incomingHandshakes is the number of incoming connections that may be in
// their handshake at once: a tenth of the connection limit, at least 4.
func incomingHandshakes(maxConns int) int { return max(4, maxConns/10) }

// acceptLoop accepts incoming connections over tr until ln closes.
func (c *Client) acceptLoop(ln net.Listener, tr Transport) {
	defer c.wg.Done()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-c.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (e.g. EMFILE): back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
				continue
			case <-c.closed:
				return
			}
		}
		delay = 0
		// Charged from the first byte: handshakes count against the
		// download and upload caps like everything else.
		conn = c.wrapConn(conn)
		select {
		case c.inSem <- struct{}{}:
		default:
			conn.Close() // too many handshakes in progress
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handleIncoming(conn, tr)
		}()
	}
}

// handleIncoming runs the MSE handshake of an incoming connection if it
// starts with one, reads the BitTorrent handshake up to the info hash,
// finds the torrent and hands the connection to it. The handshake holds a
// slot of inSem and must end within incomingHandshakeTimeout; the peer
// then needs a connection slot of the client like any other.
func (c *Client) handleIncoming(conn net.Conn, tr Transport) {
	hs, sc, err := c.incomingHandshake(conn)
	<-c.inSem
	hs.transport = tr
	if err != nil {
		c.log.Debug("incoming handshake failed", "remote", conn.RemoteAddr(), "transport", tr, "err", err)
		conn.Close()
		return
	}
	t, ok := c.Torrent(hs.infoHash)
	if !ok || !c.acquireConn() {
		conn.Close()
		return
	}
	if !t.handOver(sc, hs, false) {
		conn.Close()
		c.releaseConn()
	}
}

// incomingHandshake runs the handshakes of an incoming connection.
func (c *Client) incomingHandshake(conn net.Conn) (handshakeResult, *streamConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), incomingHandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(incomingHandshakeTimeout))
	sc, skey, err := openIncoming(conn, c.cfg.Encryption, c.lookupSKey)
	if err != nil {
		return handshakeResult{}, nil, err
	}
	hs, err := acceptHandshake(sc, c.peerID, c.dht != nil, func(ih metainfo.Hash) bool {
		if sc.crypto != 0 && ih != skey {
			return false // MSE named another torrent
		}
		t, ok := c.Torrent(ih)
		return ok && t.acceptsIncoming()
	})
	hs.crypto = sc.crypto
	return hs, sc, err
}

// lookupSKey finds the torrent whose info hash gives the MSE SKEY hash
// req2.
func (c *Client) lookupSKey(req2 [20]byte) ([20]byte, bool) {
	c.mu.Lock()
	hashes := make([]metainfo.Hash, 0, len(c.torrents))
	for ih := range c.torrents {
		hashes = append(hashes, ih)
	}
	c.mu.Unlock()
	for _, ih := range hashes {
		if mse.SKeyHash(ih) == req2 {
			return ih, true
		}
	}
	return [20]byte{}, false
}

// parseAddrs parses "host:port" strings, skipping those that do not parse
// as literal addresses.
func parseAddrs(ss []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
