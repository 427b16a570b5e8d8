package dht

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// handleQuery answers one query from another node. Loop goroutine only.
func (n *Node) handleQuery(st *loopState, m *message, from netip.AddrPort) {
	n.queriesIn.Add(1)
	now := time.Now()
	if !m.ReadOnly {
		n.pingAll(st.table.seen(m.ID, from, false, now))
	}
	reply := &message{T: m.T, Y: 'r', ID: n.id, V: clientVersion}
	switch m.Q {
	case methodPing:
	case methodFindNode:
		if n.replyNodes(st, reply, m.Target, m.Want, from, now) {
			return
		}
	case methodGetPeers:
		reply.Token = st.tok.make(from.Addr())
		// BEP 32: the two DHTs are separate; a querier gets peers of the
		// family it asked over.
		reply.Values = st.store.get(m.InfoHash, maxReplyValues, now, familyOf(from.Addr()))
		if n.replyNodes(st, reply, m.InfoHash, m.Want, from, now) {
			return
		}
	case methodAnnouncePeer:
		peer := netip.AddrPortFrom(from.Addr(), uint16(m.Port))
		if m.ImpliedPort {
			peer = from
		}
		switch {
		case !st.tok.valid(m.Token, from.Addr()):
			reply = errorReply(m.T, CodeProtocol, "bad token")
		case !n.cfg.validAddr(peer):
			reply = errorReply(m.T, CodeProtocol, "invalid peer address")
		default:
			st.store.add(m.InfoHash, peer, now)
		}
	default:
		reply = errorReply(m.T, CodeMethod, "method unknown")
	}
	if err := n.send(reply, from); err != nil {
		n.log.Debug("dht: reply", "to", from, "err", err)
	}
}

// replyNodes puts into reply the nodes nearest target of each family the
// query wants (BEP 32 "want"), or without a want of the family it came
// over. A family this node does not serve comes from the sibling node's
// table, if there is one: then the sibling's loop finishes and sends the
// reply, and replyNodes returns true. When the sibling cannot take the
// work at once, that family is left out. Loop goroutine only.
func (n *Node) replyNodes(st *loopState, reply *message, target metainfo.Hash, w wants, from netip.AddrPort, now time.Time) (handedOff bool) {
	if w == 0 {
		w = wantN6
		if familyOf(from.Addr()) == fam4 {
			w = wantN4
		}
	}
	var foreign family
	for _, f := range []struct {
		bit wants
		fam family
		dst *[]nodeInfo
	}{{wantN4, fam4, &reply.Nodes}, {wantN6, fam6, &reply.Nodes6}} {
		switch {
		case w&f.bit == 0:
		case n.fam.has(f.fam):
			*f.dst = st.table.closestOf(target, K, now, f.fam)
		default:
			foreign = f.fam
		}
	}
	sib := n.sibling.Load()
	if foreign == 0 || sib == nil {
		return false
	}
	dst := &reply.Nodes
	if foreign == fam6 {
		dst = &reply.Nodes6
	}
	finish := func(sst *loopState) {
		*dst = sst.table.closestOf(target, K, time.Now(), foreign)
		if err := n.send(reply, from); err != nil {
			n.log.Debug("dht: reply", "to", from, "err", err)
		}
	}
	select {
	case <-sib.closing:
		return false
	case sib.events <- finish:
		return true
	default:
		return false
	}
}

func errorReply(tid string, code int, msg string) *message {
	return &message{T: tid, Y: 'e', ErrCode: code, ErrMsg: msg, V: clientVersion}
}

// register allocates a transaction id for a query to addr.
func (n *Node) register(addr netip.AddrPort) (string, chan *message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", nil, ErrClosed
	}
	if len(n.txs) >= maxTx {
		return "", nil, ErrBusy
	}
	var b [4]byte
	for {
		binary.BigEndian.PutUint32(b[:], rand.Uint32())
		if _, ok := n.txs[string(b[:])]; !ok {
			break
		}
	}
	p := &pending{addr: addr, ch: make(chan *message, 1)}
	n.txs[string(b[:])] = p
	return string(b[:]), p.ch, nil
}

func (n *Node) unregister(tid string) {
	n.mu.Lock()
	delete(n.txs, tid)
	n.mu.Unlock()
}

// query sends q to addr up to attempts times, each waiting QueryTimeout for
// the reply. A KRPC error reply is returned as *Error. When no attempt is
// answered the node is reported to the table as failing.
func (n *Node) query(ctx context.Context, addr netip.AddrPort, q *message, attempts int) (*message, error) {
	tid, ch, err := n.register(addr)
	if err != nil {
		return nil, err
	}
	defer n.unregister(tid)
	q.T, q.Y, q.ID, q.V = tid, 'q', n.id, clientVersion
	timer := time.NewTimer(n.cfg.QueryTimeout)
	defer timer.Stop()
	for range max(attempts, 1) {
		if err := n.send(q, addr); err != nil {
			return nil, fmt.Errorf("dht: %s to %s: %w", q.Q, addr, err)
		}
		n.queriesOut.Add(1)
		timer.Reset(n.cfg.QueryTimeout)
		select {
		case m := <-ch:
			if m.Y == 'e' {
				return nil, &Error{Code: m.ErrCode, Msg: m.ErrMsg}
			}
			return m, nil
		case <-timer.C:
			n.timeouts.Add(1)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.closing:
			return nil, ErrClosed
		}
	}
	n.post(func(st *loopState) { st.table.failed(addr, false, time.Now()) })
	return nil, fmt.Errorf("%w: %s to %s", ErrTimeout, q.Q, addr)
}

// Ping sends a ping to addr (retrying per Config.QueryRetries) and returns
// the id it answered with. A node that answers joins the routing table.
func (n *Node) Ping(ctx context.Context, addr netip.AddrPort) (metainfo.Hash, error) {
	m, err := n.query(ctx, addr, &message{Q: methodPing}, 1+n.cfg.QueryRetries)
	if err != nil {
		return metainfo.Hash{}, err
	}
	return m.ID, nil
}

// AddNode pings addr in the background and adds it to the routing table if
// it answers (for BEP 5 PORT messages from peers). Invalid addresses, and
// calls while maxPings pings are already running, are ignored.
func (n *Node) AddNode(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !n.validNode(addr) {
		return
	}
	select {
	case n.pingSem <- struct{}{}:
	default:
		return
	}
	if !n.spawn(func() {
		defer func() { <-n.pingSem }()
		ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
		defer cancel()
		n.Ping(ctx, addr)
	}) {
		<-n.pingSem
	}
}
