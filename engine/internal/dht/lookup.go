package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Lookup limits.
const (
	maxCands    = 128  // candidates a lookup tracks
	maxSeen     = 4096 // node and peer addresses a lookup remembers
	resolveWait = 5 * time.Second
)

type candState int

const (
	candNew candState = iota
	candInFlight
	candDone
	candFailed
)

// cand is a node a lookup knows of. Bootstrap addresses start without an id.
type cand struct {
	ni    nodeInfo
	hasID bool
	state candState
	token string
}

type lookupResult struct {
	c   *cand
	m   *message
	err error
}

// lookupState tracks one iterative lookup; it is used by one goroutine.
type lookupState struct {
	n      *Node
	target metainfo.Hash
	cands  []*cand
	seen   map[netip.AddrPort]bool
}

func (l *lookupState) add(ni nodeInfo, hasID bool) {
	if len(l.seen) >= maxSeen || l.seen[ni.Addr] || (hasID && ni.ID == l.n.id) || !l.n.reachable(ni.Addr) {
		return
	}
	l.seen[ni.Addr] = true
	l.cands = append(l.cands, &cand{ni: ni, hasID: hasID})
}

// sort orders candidates: id-less (bootstrap) first, then by distance; it
// drops the farthest beyond maxCands.
func (l *lookupState) sort() {
	slices.SortStableFunc(l.cands, func(a, b *cand) int {
		switch {
		case a.hasID != b.hasID:
			if !a.hasID {
				return -1
			}
			return 1
		case closer(l.target, a.ni.ID, b.ni.ID):
			return -1
		case closer(l.target, b.ni.ID, a.ni.ID):
			return 1
		}
		return 0
	})
	if len(l.cands) > maxCands {
		l.cands = l.cands[:maxCands]
	}
}

// next returns the nearest unqueried candidate among the K nearest that
// have not failed, or nil when those K are all queried.
func (l *lookupState) next() *cand {
	live := 0
	for _, c := range l.cands {
		if c.state == candFailed {
			continue
		}
		if c.state == candNew {
			return c
		}
		if live++; live >= K {
			return nil
		}
	}
	return nil
}

// lookup runs an iterative find_node or get_peers lookup for target with
// Alpha queries in flight. It seeds from the routing table, and from the
// bootstrap nodes when withBootstrap is set or the table knows fewer than
// K nodes. onValues receives new peer values of get_peers replies. It
// returns the nearest answering nodes (at most K, nearest first) with their
// tokens, or an error wrapping ErrNoNodes when none answered.
func (n *Node) lookup(ctx context.Context, target metainfo.Hash, method string, withBootstrap bool, onValues func([]netip.AddrPort)) ([]*cand, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &lookupState{n: n, target: target, seen: map[netip.AddrPort]bool{}}
	var seeds []nodeInfo
	if err := n.do(ctx, func(st *loopState) { seeds = st.table.closest(target, K, time.Now()) }); err != nil {
		return nil, err
	}
	for _, s := range seeds {
		l.add(s, true)
	}
	if withBootstrap || len(seeds) < K {
		for _, a := range n.resolveBootstrap(ctx) {
			l.add(nodeInfo{Addr: a}, false)
		}
	}
	l.sort()
	peerSeen := map[netip.AddrPort]bool{}
	results := make(chan lookupResult, Alpha) // never more than Alpha in flight
	inflight, answered := 0, 0
	for {
		for inflight < Alpha {
			c := l.next()
			if c == nil {
				break
			}
			c.state = candInFlight
			q := &message{Q: method, Want: n.queryWant()}
			if method == methodFindNode {
				q.Target = target
			} else {
				q.InfoHash = target
			}
			addr := c.ni.Addr
			if !n.spawn(func() {
				m, err := n.query(ctx, addr, q, 1)
				results <- lookupResult{c, m, err}
			}) {
				return nil, ErrClosed
			}
			inflight++
		}
		if inflight == 0 {
			break
		}
		var r lookupResult
		select {
		case r = <-results:
		case <-ctx.Done():
			return l.closest(), ctx.Err()
		}
		inflight--
		if r.err != nil || r.m.ID == n.id {
			r.c.state = candFailed
			continue
		}
		answered++
		r.c.state, r.c.token = candDone, r.m.Token
		r.c.ni.ID, r.c.hasID = r.m.ID, true
		for _, ni := range slices.Concat(r.m.Nodes, r.m.Nodes6) {
			if n.cfg.validAddr(ni.Addr) {
				l.add(ni, true)
			}
		}
		n.feedSibling(r.m)
		l.sort()
		if onValues != nil && len(r.m.Values) > 0 {
			var fresh []netip.AddrPort
			for _, p := range r.m.Values {
				if len(peerSeen) < maxSeen && !peerSeen[p] && n.cfg.validAddr(p) {
					peerSeen[p] = true
					fresh = append(fresh, p)
				}
			}
			if len(fresh) > 0 {
				onValues(fresh)
			}
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("%w: %s lookup for %s", ErrNoNodes, method, target)
	}
	return l.closest(), nil
}

// siblingHungry is the table size under which a node asks for its
// sibling's family too and hands it the nodes it hears of.
const siblingHungry = 2 * K

// queryWant returns the BEP 32 "want" of our find_node and get_peers
// queries: none for a lone single-family node (the answer then holds the
// family we ask over), both families for a dual-stack node, and both for
// a node whose sibling's table is still small, so that an IPv6 DHT can be
// joined through IPv4 nodes and the other way round.
func (n *Node) queryWant() wants {
	if n.fam == famBoth {
		return wantGiven | wantN4 | wantN6
	}
	if sib := n.sibling.Load(); sib != nil && sib.nodeCount.Load() < siblingHungry {
		return wantGiven | wantN4 | wantN6
	}
	return 0
}

// maxFeed caps the nodes of a reply handed to the sibling to ping.
const maxFeed = 4

// feedSibling gives the sibling node, while its table is small, the nodes
// of its family in a reply (it pings them; those that answer join its
// table).
func (n *Node) feedSibling(m *message) {
	sib := n.sibling.Load()
	if sib == nil || sib.nodeCount.Load() >= siblingHungry {
		return
	}
	fed := 0
	for _, ni := range slices.Concat(m.Nodes, m.Nodes6) {
		if fed < maxFeed && sib.reachable(ni.Addr) && sib.cfg.validAddr(ni.Addr) {
			sib.AddNode(ni.Addr)
			fed++
		}
	}
}

// closest returns the K nearest candidates that answered.
func (l *lookupState) closest() []*cand {
	var out []*cand
	for _, c := range l.cands {
		if c.state == candDone && c.hasID {
			out = append(out, c)
			if len(out) == K {
				break
			}
		}
	}
	return out
}

// resolveBootstrap resolves Config.Bootstrap, each name with a timeout, in
// parallel. Unresolvable entries are logged and skipped.
func (n *Node) resolveBootstrap(ctx context.Context) []netip.AddrPort {
	var (
		mu  sync.Mutex
		out []netip.AddrPort
		wg  sync.WaitGroup
	)
	network := "ip" // dual-stack wildcard socket
	switch n.fam {
	case fam4:
		network = "ip4"
	case fam6:
		network = "ip6"
	}
	for _, s := range n.cfg.Bootstrap {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			if ap.Port() != 0 && n.reachable(ap) {
				mu.Lock()
				out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
				mu.Unlock()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			host, portStr, err := net.SplitHostPort(s)
			port, perr := strconv.ParseUint(portStr, 10, 16)
			if err != nil || perr != nil || port == 0 {
				n.log.Warn("dht: bad bootstrap address", "addr", s)
				return
			}
			rctx, cancel := context.WithTimeout(ctx, resolveWait)
			defer cancel()
			ips, err := net.DefaultResolver.LookupNetIP(rctx, network, host)
			if err != nil {
				n.log.Debug("dht: resolving bootstrap node", "addr", s, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, ip := range ips[:min(len(ips), 4)] {
				out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			}
		}()
	}
	wg.Wait()
	return out
}

// Bootstrap runs a find_node lookup for the node's own id through the
// bootstrap nodes and the routing table, filling the table with the nodes
// that answer. It returns an error wrapping ErrNoNodes if none answered.
func (n *Node) Bootstrap(ctx context.Context) error {
	_, err := n.lookup(ctx, n.id, methodFindNode, true, nil)
	return err
}

// GetPeers starts an iterative get_peers lookup for infoHash and returns a
// channel that delivers batches of new, deduplicated peer addresses as
// nodes report them (first any peers announced to this node itself); it is
// closed when the lookup ends: converged, ctx done or node closed. The
// caller must drain the channel or cancel ctx.
func (n *Node) GetPeers(ctx context.Context, infoHash metainfo.Hash) <-chan []netip.AddrPort {
	ch := make(chan []netip.AddrPort, 16)
	if !n.spawn(func() {
		defer close(ch)
		emit := func(ps []netip.AddrPort) {
			select {
			case ch <- ps:
			case <-ctx.Done():
			}
		}
		var local []netip.AddrPort
		if n.do(ctx, func(st *loopState) { local = st.store.get(infoHash, maxReplyValues, time.Now(), famBoth) }) == nil && len(local) > 0 {
			emit(local)
		}
		if _, err := n.lookup(ctx, infoHash, methodGetPeers, false, emit); err != nil {
			n.log.Debug("dht: get_peers", "infohash", infoHash, "err", err)
		}
	}) {
		close(ch)
	}
	return ch
}

// Announce runs a get_peers lookup for infoHash and then sends announce_peer
// to the K nearest nodes that gave a token, announcing TCP port, or with
// impliedPort the node's UDP source port (port 0 then means the UDP port).
// It returns the peers the lookup found and an error wrapping ErrNoNodes
// when no node accepted the announce.
func (n *Node) Announce(ctx context.Context, infoHash metainfo.Hash, port int, impliedPort bool) ([]netip.AddrPort, error) {
	if impliedPort && port == 0 {
		port = int(n.local.Port())
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("dht: announce: port %d out of range", port)
	}
	var peers []netip.AddrPort
	closest, err := n.lookup(ctx, infoHash, methodGetPeers, false, func(ps []netip.AddrPort) {
		peers = append(peers, ps...)
	})
	if err != nil {
		return peers, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		lastErr  error
	)
	for _, c := range closest {
		if c.token == "" {
			continue
		}
		q := &message{Q: methodAnnouncePeer, InfoHash: infoHash, Port: port, ImpliedPort: impliedPort, Token: c.token}
		addr := c.ni.Addr
		wg.Add(1)
		if !n.spawn(func() {
			defer wg.Done()
			_, err := n.query(ctx, addr, q, 1+n.cfg.QueryRetries)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
			} else {
				accepted++
			}
		}) {
			wg.Done()
		}
	}
	wg.Wait()
	if accepted == 0 {
		if lastErr == nil {
			lastErr = errors.New("no node gave a token")
		}
		return peers, fmt.Errorf("%w: announce %s: %w", ErrNoNodes, infoHash, lastErr)
	}
	n.log.Debug("dht: announced", "infohash", infoHash, "nodes", accepted)
	return peers, nil
}
