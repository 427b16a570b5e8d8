package dht

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

const (
	clientVersion  = "SF\x00\x01"
	maxTx          = 2048 // outstanding transactions
	inboxSize      = 512  // queries queued for the loop
	maxPings       = 16   // concurrent pings deciding bucket replacements
	maxReplyValues = 50   // peers in one get_peers reply
)

// Node is a running DHT node. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	id      metainfo.Hash
	conn    net.PacketConn
	ownConn bool
	local   netip.AddrPort
	fam     family // the addresses this node's socket and table serve

	inbox   chan inbound          // reader -> loop: queries
	events  chan func(*loopState) // anyone -> loop: closures run in the loop
	closing chan struct{}
	ctx     context.Context // cancelled by Close; parent of background work
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pingSem chan struct{}
	st      *loopState // owned by the loop; read by Close after it exits

	mu     sync.Mutex // guards txs and closed
	txs    map[string]*pending
	closed bool

	refreshing, saving atomic.Bool

	// sibling is the node of the other family run by the same Client
	// (nil for a lone node); nodeCount mirrors the table's size for it.
	sibling   atomic.Pointer[Node]
	nodeCount atomic.Int32

	queriesIn, queriesOut, responses, timeouts, dropped, malformed atomic.Int64
}

// loopState is the state owned by the loop goroutine.
type loopState struct {
	table      *table
	store      *peerStore
	tok        *tokens
	lastRotate time.Time
	lastSave   time.Time
}

type inbound struct {
	m    *message
	from netip.AddrPort
}

type pending struct {
	addr netip.AddrPort
	ch   chan *message // buffered 1; receives the reply once
}

// New opens the socket (or takes Config.Conn), loads the state file, starts
// the node's goroutines and a background bootstrap, and returns at once.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, conn: cfg.Conn,
		inbox: make(chan inbound, inboxSize), events: make(chan func(*loopState), 64),
		closing: make(chan struct{}), pingSem: make(chan struct{}, maxPings), txs: map[string]*pending{}}
	switch cfg.Network {
	case "", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("dht: network %q is not udp4, udp6 or empty", cfg.Network)
	}
	if n.conn == nil {
		network := cfg.Network
		if network == "" {
			network = "udp"
		}
		c, err := net.ListenPacket(network, cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("dht: listen: %w", err)
		}
		n.conn, n.ownConn = c, true
	}
	n.local = addrPortOf(n.conn.LocalAddr())
	switch l := n.local.Addr(); {
	case cfg.Network == "udp4" || l.Is4():
		n.fam = fam4
	case cfg.Network == "udp6" || (l.IsValid() && !l.IsUnspecified()):
		n.fam = fam6
	default:
		n.fam = famBoth
	}
	var saved []nodeInfo
	if cfg.StateFile != "" {
		id, nodes, err := loadState(cfg.StateFile)
		switch {
		case err == nil:
			n.id, saved = id, nodes
		case !errors.Is(err, errNoState):
			n.log.Warn("dht: ignoring state file", "file", cfg.StateFile, "err", err)
		}
	}
	if !cfg.NodeID.IsZero() {
		n.id = cfg.NodeID
	}
	if n.id.IsZero() {
		rand.Read(n.id[:])
	}
	now := time.Now()
	n.st = &loopState{
		table:      newTable(n.id, K, cfg.MaxNodes, cfg.RefreshInterval, n.validNode, now),
		store:      newPeerStore(cfg.MaxInfoHashes, cfg.MaxPeersPerHash, cfg.PeerTTL),
		tok:        newTokens(),
		lastRotate: now, lastSave: now,
	}
	for _, ni := range saved {
		n.st.table.seen(ni.ID, ni.Addr, false, time.Time{})
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.readLoop() }()
	go func() { defer n.wg.Done(); n.loop(n.st) }()
	if len(cfg.Bootstrap) > 0 || len(saved) > 0 {
		n.spawn(func() {
			ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
			defer cancel()
			if err := n.Bootstrap(ctx); err != nil {
				n.log.Debug("dht: background bootstrap", "err", err)
			}
		})
	}
	n.log.Debug("dht: started", "addr", n.local, "id", n.id)
	return n, nil
}

// Close stops the node, saves the state file and waits for its goroutines.
// It returns the state file's write error, if any.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.closing)
	n.cancel()
	if n.ownConn {
		n.conn.Close()
	} else {
		n.conn.SetReadDeadline(time.Unix(1, 0))
	}
	n.wg.Wait()
	if n.cfg.StateFile == "" {
		return nil
	}
	return saveState(n.cfg.StateFile, n.id, n.st.table.all())
}

// Addr returns the node's local UDP address.
func (n *Node) Addr() netip.AddrPort { return n.local }

// ID returns the node's id.
func (n *Node) ID() metainfo.Hash { return n.id }

// Stats returns a snapshot of the node's counters. After Close the table
// and store figures are zero.
func (n *Node) Stats() Stats {
	s := Stats{
		QueriesIn: n.queriesIn.Load(), QueriesOut: n.queriesOut.Load(),
		Responses: n.responses.Load(), Timeouts: n.timeouts.Load(),
		Dropped: n.dropped.Load(), Malformed: n.malformed.Load(),
	}
	n.do(context.Background(), func(st *loopState) {
		s.Nodes, s.GoodNodes = st.table.counts(time.Now())
		s.Buckets = len(st.table.buckets)
		s.InfoHashes, s.Peers = len(st.store.swarms), st.store.peers
	})
	return s
}

// Save writes the state file now; without Config.StateFile it does nothing.
func (n *Node) Save() error {
	if n.cfg.StateFile == "" {
		return nil
	}
	var nodes []nodeInfo
	if err := n.do(n.ctx, func(st *loopState) { nodes = st.table.all() }); err != nil {
		return err
	}
	return saveState(n.cfg.StateFile, n.id, nodes)
}

// spawn runs f in a goroutine that Close waits for; it reports false (and
// does not run f) once the node is closed.
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
	return true
}

// do runs f in the loop goroutine and waits for it to finish.
func (n *Node) do(ctx context.Context, f func(*loopState)) error {
	done := make(chan struct{})
	select {
	case n.events <- func(st *loopState) { f(st); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.closing:
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.closing:
		return ErrClosed
	}
}

// post queues f for the loop without waiting; it gives up when the node closes.
func (n *Node) post(f func(*loopState)) {
	select {
	case n.events <- f:
	case <-n.closing:
	}
}

// validNode reports whether a is an address we may store or query.
func (n *Node) validNode(a netip.AddrPort) bool {
	return n.cfg.validAddr(a) && n.reachable(a)
}

// reachable reports whether our socket serves a's address family.
func (n *Node) reachable(a netip.AddrPort) bool { return n.fam.has(familyOf(a.Addr())) }

// family is a set of IP families: the ones a node serves, or one address's.
type family uint8

const (
	fam4    family        = 1 << iota // IPv4
	fam6                              // IPv6
	famBoth = fam4 | fam6             // a dual-stack socket with one table
)

// familyOf returns fam4 for IPv4 (and IPv4-mapped) addresses, else fam6.
func familyOf(a netip.Addr) family {
	if a.Unmap().Is4() {
		return fam4
	}
	return fam6
}

// has reports whether f includes all of g.
func (f family) has(g family) bool { return f&g == g }

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (n *Node) send(m *message, to netip.AddrPort) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	_, err = n.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// readLoop reads datagrams, rate-limits and parses them, delivers replies
// to waiting queries and queues queries for the loop.
func (n *Node) readLoop() {
	buf := make([]byte, 65536)
	lim := newLimiter(n.cfg.MaxQPS, n.cfg.MaxGlobalQPS)
	for {
		nr, from, err := n.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-n.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Debug("dht: read", "err", err)
			select {
			case <-n.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ap := addrPortOf(from)
		if !lim.allow(ap.Addr(), time.Now()) {
			n.dropped.Add(1)
			continue
		}
		m, err := parseMessage(buf[:nr])
		if err != nil {
			n.malformed.Add(1)
			n.log.Debug("dht: bad message", "from", ap, "err", err)
			continue
		}
		switch m.Y {
		case 'q':
			select {
			case n.inbox <- inbound{m, ap}:
			default:
				n.dropped.Add(1)
			}
		default:
			n.deliver(m, ap)
		}
	}
}

// deliver hands a reply to the query waiting for its transaction id, if it
// came from the address the query went to.
func (n *Node) deliver(m *message, from netip.AddrPort) {
	n.mu.Lock()
	p := n.txs[m.T]
	if p != nil && p.addr == from {
		delete(n.txs, m.T)
	} else {
		p = nil
	}
	n.mu.Unlock()
	if p == nil {
		return
	}
	n.responses.Add(1)
	p.ch <- m
	if m.Y == 'r' {
		id := m.ID
		select {
		case n.events <- func(st *loopState) { n.pingAll(st.table.seen(id, from, true, time.Now())) }:
		default:
		}
	}
}

// loop owns the routing table, peer store and tokens.
func (n *Node) loop(st *loopState) {
	period := min(n.cfg.RefreshInterval, n.cfg.TokenInterval, n.cfg.StateInterval, n.cfg.PeerTTL) / 4
	period = max(min(period, time.Minute), 10*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-n.closing:
			return
		case in := <-n.inbox:
			n.handleQuery(st, in.m, in.from)
		case f := <-n.events:
			f(st)
		case now := <-tick.C:
			n.maintain(st, now)
		}
		n.nodeCount.Store(int32(st.table.count))
	}
}

// pingAll pings questionable nodes of a full bucket, at most maxPings at a
// time; a node that does not answer is replaced.
func (n *Node) pingAll(nodes []*entry) {
	for _, e := range nodes {
		select {
		case n.pingSem <- struct{}{}:
		default:
			e.pinging = false
			continue
		}
		addr := e.addr
		if !n.spawn(func() {
			defer func() { <-n.pingSem }()
			if _, err := n.Ping(n.ctx, addr); err != nil && errors.Is(err, ErrTimeout) {
				n.post(func(st *loopState) { st.table.failed(addr, true, time.Now()) })
			}
		}) {
			<-n.pingSem
		}
	}
}

// maintain rotates tokens, expires peers, refreshes stale buckets and
// saves the state when due.
func (n *Node) maintain(st *loopState, now time.Time) {
	if now.Sub(st.lastRotate) >= n.cfg.TokenInterval {
		st.tok.rotate()
		st.lastRotate = now
	}
	st.store.expire(now)
	targets := st.table.staleTargets(n.cfg.RefreshInterval, now)
	if st.table.count < K && len(n.cfg.Bootstrap) > 0 {
		targets = append(targets, n.id)
	}
	if len(targets) > 0 && n.refreshing.CompareAndSwap(false, true) {
		if !n.spawn(func() {
			defer n.refreshing.Store(false)
			n.refresh(targets)
		}) {
			n.refreshing.Store(false)
		}
	}
	if n.cfg.StateFile != "" && now.Sub(st.lastSave) >= n.cfg.StateInterval && n.saving.CompareAndSwap(false, true) {
		st.lastSave = now
		nodes := st.table.all()
		if !n.spawn(func() {
			defer n.saving.Store(false)
			if err := saveState(n.cfg.StateFile, n.id, nodes); err != nil {
				n.log.Warn("dht: saving state", "err", err)
			}
		}) {
			n.saving.Store(false)
		}
	}
}

// refresh runs a find_node lookup for each target, one after another.
func (n *Node) refresh(targets []metainfo.Hash) {
	for _, t := range targets {
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		var err error
		if t == n.id {
			err = n.Bootstrap(ctx)
		} else {
			_, err = n.lookup(ctx, t, methodFindNode, false, nil)
		}
		cancel()
		if err != nil && n.ctx.Err() != nil {
			return
		}
	}
}
