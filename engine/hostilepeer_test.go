package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// hostileKind is one script a hostile fake peer plays after the handshake.
type hostileKind int

const (
	hkOutOfRange  hostileKind = iota // valid-looking messages with bad indexes/lengths
	hkHugeLength                     // a length prefix of nearly 4 GiB
	hkTruncated                      // a message cut short, then hang up
	hkGarbage                        // random bytes
	hkBadBitfield                    // a bitfield of the wrong size or with spare bits
	hkHaveAllNone                    // have all, unchoke, have none, ... and never serve
	hkUnrequested                    // a pile of blocks nobody asked for
	hkFlood                          // have/allowed fast/suggest/port/keep-alive floods, then rejects
	hkExtHostile                     // hostile extension messages (bencode, sizes, ut_metadata, ut_pex)
	hkKeepalives                     // a keep-alive storm
	hkTrickle                        // a valid message stream, one byte per second
	hkNoRead                         // requests and ut_metadata requests, never reading the answers
	hkNoFast                         // fast-extension messages without the fast bit
	numHostileKinds
)

var hostileNames = [...]string{"out-of-range", "huge-length", "truncated", "garbage", "bad-bitfield",
	"have-all-none", "unrequested", "flood", "ext-hostile", "keepalives", "trickle", "no-read", "no-fast"}

func (k hostileKind) String() string { return hostileNames[k] }

// hostileEnv is what hostile scripts know about the torrent.
type hostileEnv struct {
	ih        [20]byte
	numPieces int
	pieceLen  int64
	metaSize  int
	// stop ends every script (the test is over).
	stop <-chan struct{}
}

// hostileSession is the outcome of one hostile connection.
type hostileSession struct {
	kind   hostileKind
	addr   netip.AddrPort // the hostile end, as the engine sees it
	closed bool           // the engine hung up before the script ended
	// cut is set when the test ended the session before the engine had
	// time to hang up.
	cut bool
	err error
}

// mustDrop reports whether every session of kind breaks the protocol in a
// way the engine must hang up on.
func (k hostileKind) mustDrop() bool {
	switch k {
	case hkOutOfRange, hkHugeLength, hkTruncated, hkBadBitfield, hkUnrequested, hkNoRead, hkNoFast:
		return true
	}
	return false
}

// hostileHandshake runs our half of the handshake as the dialer or the
// listener. noFast clears the fast extension bit.
func hostileHandshake(c net.Conn, env *hostileEnv, id [20]byte, dialer, noFast bool) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	h := wire.NewHandshake(env.ih, id)
	if noFast {
		h.SetFast(false)
	}
	if dialer {
		if err := wire.WriteHandshake(c, h); err != nil {
			return err
		}
		_, err := wire.ReadHandshake(c)
		return err
	}
	if _, err := wire.ReadHandshake(c); err != nil {
		return err
	}
	return wire.WriteHandshake(c, h)
}

// runHostile plays kind on c (handshake done) until the script ends, the
// engine hangs up or env.stop. It reports whether the engine hung up, and
// whether env.stop came first.
func runHostile(c net.Conn, kind hostileKind, rng *rand.Rand, env *hostileEnv) (engineClosed, cut bool) {
	gone := make(chan struct{})
	if kind != hkNoRead {
		// Read and discard what the engine sends; EOF means it hung up.
		go func() {
			defer close(gone)
			br := bufio.NewReader(c)
			buf := make([]byte, 64<<10)
			for {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := wire.ReadMessage(br, 0, buf); err != nil {
					return
				}
			}
		}()
	}
	sc := &script{c: c, rng: rng, env: env, gone: gone}
	sc.play(kind)
	if kind == hkNoRead {
		// Without reading, a failed write is how a hang-up shows; the
		// engine may still be working through what was sent.
		for i := 0; i < 30 && !sc.failed; i++ {
			if !sc.pause(100 * time.Millisecond) {
				return sc.failed, !sc.failed
			}
			sc.msg(wire.Message{Keepalive: true})
			sc.flush()
		}
		return sc.failed, false
	}
	// Give the engine time to hang up on the last message: long for
	// scripts it must hang up on, so that a busy machine is no failure.
	wait := 300 * time.Millisecond
	if kind.mustDrop() {
		wait = 3 * time.Second
	}
	select {
	case <-gone:
		return true, false
	case <-time.After(wait):
		return false, false
	case <-env.stop:
		select {
		case <-gone:
			return true, false
		default:
			return false, true
		}
	}
}

// script sends messages for one hostile session.
type script struct {
	c      net.Conn
	rng    *rand.Rand
	env    *hostileEnv
	gone   chan struct{}
	out    []byte
	failed bool // a write failed
}

func (s *script) msg(m wire.Message) { s.out = wire.AppendMessage(s.out, m) }
func (s *script) raw(b []byte)       { s.out = append(s.out, b...) }

// flush writes what is buffered; it reports false when the session is over.
func (s *script) flush() bool {
	if s.failed {
		return false
	}
	select {
	case <-s.gone:
		return false
	case <-s.env.stop:
		return false
	default:
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := s.c.Write(s.out)
	s.out = s.out[:0]
	if err != nil {
		s.failed = true
		return false
	}
	return true
}

// pause waits d unless the session ends first.
func (s *script) pause(d time.Duration) bool {
	select {
	case <-s.gone:
		return false
	case <-s.env.stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (s *script) validIndex() uint32 { return uint32(s.rng.IntN(s.env.numPieces)) }
func (s *script) badIndex() uint32 {
	return uint32(s.env.numPieces + s.rng.IntN(1<<20))
}

// pex builds a ut_pex payload with n IPv4 peers in 10.x (valid, unreachable).
func (s *script) pex(n int) []byte {
	m := wire.PexMsg{}
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(s.rng.IntN(256)), byte(s.rng.IntN(256)), byte(1 + s.rng.IntN(254))})
		m.Added = append(m.Added, wire.PexPeer{Addr: netip.AddrPortFrom(a, uint16(1024+s.rng.IntN(60000)))})
	}
	return wire.AppendPex(nil, m)
}

func (s *script) extHandshake(h wire.ExtHandshake) {
	b, _ := h.Marshal()
	s.msg(wire.Message{ID: wire.Extended, ExtID: 0, Data: b})
}

func (s *script) play(kind hostileKind) {
	env, rng := s.env, s.rng
	n := uint32(env.numPieces)
	// Most scripts open with a few harmless messages.
	for i := rng.IntN(4); i > 0; i-- {
		s.msg(wire.Message{ID: wire.Have, Index: s.validIndex()})
	}
	switch kind {
	case hkOutOfRange:
		bad := []wire.Message{
			{ID: wire.Have, Index: s.badIndex()},
			{ID: wire.Request, Index: s.badIndex(), Length: wire.BlockSize},
			{ID: wire.Request, Index: s.validIndex(), Begin: uint32(env.pieceLen) - 1, Length: wire.BlockSize},
			{ID: wire.Request, Index: s.validIndex(), Begin: 1 << 31, Length: 1 << 16},
			{ID: wire.Piece, Index: s.badIndex(), Data: make([]byte, 1+rng.IntN(wire.BlockSize))},
			{ID: wire.Piece, Index: s.validIndex(), Begin: 1 << 30, Data: make([]byte, 100)},
			{ID: wire.AllowedFast, Index: s.badIndex()},
			{ID: wire.Suggest, Index: s.badIndex()},
			{ID: wire.Reject, Index: s.badIndex(), Length: wire.BlockSize},
		}
		s.msg(wire.Message{ID: wire.Interested})
		s.msg(bad[rng.IntN(len(bad))])
		// Raw messages with lengths that do not fit their id.
		lens := []uint32{2, 4, 12, 14}
		b := binary.BigEndian.AppendUint32(nil, lens[rng.IntN(len(lens))])
		b = append(b, byte(wire.Request))
		s.raw(append(b, make([]byte, int(binary.BigEndian.Uint32(b))-1)...))
		s.flush()
	case hkHugeLength:
		b := binary.BigEndian.AppendUint32(nil, 0xffffff00-uint32(rng.IntN(1000)))
		s.raw(append(b, byte(wire.Piece), 0, 0, 0, 0))
		s.flush()
	case hkTruncated:
		s.msg(wire.Message{ID: wire.Piece, Index: s.validIndex(), Data: make([]byte, wire.BlockSize)})
		s.out = s.out[:len(s.out)-1-rng.IntN(wire.BlockSize)]
		s.flush()
		if tc, ok := s.c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	case hkGarbage:
		g := make([]byte, 1+rng.IntN(8192))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		s.raw(g)
		s.flush()
	case hkBadBitfield:
		size := (env.numPieces + 7) / 8
		switch rng.IntN(3) {
		case 0:
			size += 1 + rng.IntN(100)
		case 1:
			size = rng.IntN(size)
		}
		bf := make([]byte, size)
		for i := range bf {
			bf[i] = 0xff // spare bits set when the size is right
		}
		s.out = s.out[:0] // a bitfield must come first
		s.msg(wire.Message{ID: wire.Bitfield, Data: bf})
		s.flush()
	case hkHaveAllNone:
		for i := 0; i < 1+rng.IntN(50) && s.flush(); i++ {
			s.msg(wire.Message{ID: wire.HaveAll})
			s.msg(wire.Message{ID: wire.Unchoke})
			s.msg(wire.Message{ID: wire.HaveNone})
			if rng.IntN(2) == 0 {
				s.msg(wire.Message{ID: wire.HaveAll})
			}
			s.msg(wire.Message{ID: wire.Choke})
			if !s.pause(time.Duration(rng.IntN(100)) * time.Millisecond) {
				return
			}
		}
		s.pause(time.Duration(2+rng.IntN(3)) * time.Second) // sits on any request
	case hkUnrequested:
		s.msg(wire.Message{ID: wire.HaveAll})
		s.msg(wire.Message{ID: wire.Unchoke})
		for i := 0; i < 50+rng.IntN(200); i++ {
			s.msg(wire.Message{ID: wire.Piece, Index: s.validIndex(), Begin: uint32(rng.IntN(4)) * wire.BlockSize, Data: make([]byte, wire.BlockSize)})
		}
		s.flush()
	case hkFlood:
		for round := 0; round < 1+rng.IntN(10); round++ {
			for i := 0; i < 500+rng.IntN(2000); i++ {
				switch rng.IntN(5) {
				case 0:
					s.msg(wire.Message{ID: wire.Have, Index: s.validIndex()})
				case 1:
					s.msg(wire.Message{ID: wire.AllowedFast, Index: s.validIndex()})
				case 2:
					s.msg(wire.Message{ID: wire.Suggest, Index: s.validIndex()})
				case 3:
					s.msg(wire.Message{ID: wire.Port, Port: uint16(1 + rng.IntN(65535))})
				case 4:
					s.msg(wire.Message{Keepalive: true})
				}
			}
			if !s.flush() {
				return
			}
		}
		if rng.IntN(2) == 0 {
			for i := 0; i < 100; i++ {
				s.msg(wire.Message{ID: wire.Reject, Index: s.validIndex(), Length: wire.BlockSize})
			}
			s.flush()
		}
	case hkExtHostile:
		s.playExt()
	case hkKeepalives:
		for i := 0; i < 20 && s.flush(); i++ {
			for j := 0; j < 10000; j++ {
				s.msg(wire.Message{Keepalive: true})
			}
		}
	case hkTrickle:
		var stream []byte
		stream = wire.AppendMessage(stream, wire.Message{ID: wire.HaveNone})
		for i := 0; i < 100; i++ {
			stream = wire.AppendMessage(stream, wire.Message{ID: wire.Have, Index: s.validIndex()})
		}
		s.flush()
		for _, b := range stream {
			s.raw([]byte{b})
			if !s.flush() || !s.pause(time.Second) {
				return
			}
		}
	case hkNoRead:
		// Each request of a choked peer earns a reject, each ut_metadata
		// request 16 KiB: the engine must not queue them without bound.
		h := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: 7}}
		s.extHandshake(h)
		s.msg(wire.Message{ID: wire.Interested})
		for i := 0; i < 200; i++ {
			for j := 0; j < 500; j++ {
				if rng.IntN(4) == 0 {
					req := wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: rng.IntN(metaPieces(env.metaSize))})
					s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtMetadataID, Data: req})
				} else {
					s.msg(wire.Message{ID: wire.Request, Index: s.validIndex(), Begin: 0, Length: wire.BlockSize})
				}
			}
			if !s.flush() {
				return
			}
		}
	case hkNoFast:
		fast := []wire.ID{wire.HaveAll, wire.HaveNone, wire.Reject, wire.AllowedFast, wire.Suggest}
		id := fast[rng.IntN(len(fast))]
		s.msg(wire.Message{ID: id, Index: n - 1, Length: wire.BlockSize})
		s.flush()
	}
}

func metaPieces(size int) int { return max(1, (size+wire.MetadataPieceSize-1)/wire.MetadataPieceSize) }

// playExt sends hostile BEP 10 messages.
func (s *script) playExt() {
	env, rng := s.env, s.rng
	switch rng.IntN(6) {
	case 0: // deep nesting
		depth := 100 + rng.IntN(100000)
		b := []byte("d1:m")
		b = append(b, strings.Repeat("l", depth)...)
		b = append(b, strings.Repeat("e", depth)...)
		b = append(b, 'e')
		s.msg(wire.Message{ID: wire.Extended, ExtID: 0, Data: b})
	case 1: // huge or lying metadata_size
		sizes := []int{wire.MaxMetadataSize + 1 + rng.IntN(1<<30), wire.MaxMetadataSize, env.metaSize + 1 + rng.IntN(1000), 1}
		b := fmt.Appendf(nil, "d1:md11:ut_metadatai3ee13:metadata_sizei%dee", sizes[rng.IntN(len(sizes))])
		s.msg(wire.Message{ID: wire.Extended, ExtID: 0, Data: b})
	case 2: // ut_metadata data for pieces never asked
		s.extHandshake(wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: 3}, MetadataSize: env.metaSize})
		for i := 0; i < 1+rng.IntN(200); i++ {
			data := make([]byte, 1+rng.IntN(wire.MetadataPieceSize))
			p := wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataData, Piece: rng.IntN(metaPieces(env.metaSize)), TotalSize: env.metaSize, Data: data})
			s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtMetadataID, Data: p})
		}
	case 3: // ut_pex: many messages of the most peers each, or one huge one
		s.extHandshake(wire.ExtHandshake{M: map[string]int{wire.ExtPex: 5}, P: 1 + rng.IntN(65535)})
		if rng.IntN(3) == 0 {
			s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtPexID, Data: s.pex(5000 + rng.IntN(5000))})
			break
		}
		for i := 0; i < 20; i++ {
			s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtPexID, Data: s.pex(wire.MaxPexPeers)})
		}
	case 4: // repeated handshakes, each with another listen port, and pex
		for i := 0; i < 200+rng.IntN(800); i++ {
			s.extHandshake(wire.ExtHandshake{M: map[string]int{wire.ExtPex: 5, wire.ExtMetadata: 3}, P: 1 + rng.IntN(65535)})
			if i%4 == 0 {
				s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtPexID, Data: s.pex(wire.MaxPexPeers)})
			}
		}
	case 5: // undecodable payloads, unknown ids, unknown message ids
		s.msg(wire.Message{ID: wire.Extended, ExtID: uint8(100 + rng.IntN(100)), Data: make([]byte, rng.IntN(64<<10))})
		s.msg(wire.Message{ID: wire.ID(21 + rng.IntN(200)), Data: make([]byte, rng.IntN(512<<10))})
		junk := [][]byte{[]byte("i1e"), []byte("d1:m"), []byte("le"), []byte("d1:mi-1ee"), {0xff, 0xfe}}
		s.msg(wire.Message{ID: wire.Extended, ExtID: 0, Data: junk[rng.IntN(len(junk))]})
	}
	s.flush()
}

// serveSessions accepts the engine's connections on ip, up to sessions,
// plays each with play (which records nothing itself), closes it and
// records the session. The returned func stops listening and waits.
func serveSessions(ip string, sessions int, record func(hostileSession),
	play func(c net.Conn, addr netip.AddrPort, i int) hostileSession) (netip.AddrPort, func(), error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		for i := 0; i < sessions; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sess := play(c, addr, i)
			c.Close()
			record(sess)
		}
	}()
	return addr, func() { ln.Close(); wg.Wait() }, nil
}

// startHostileListener accepts the engine's connections on ip and plays a
// random script on each, up to sessions sessions.
func startHostileListener(ip string, env *hostileEnv, rng *rand.Rand, sessions int, record func(hostileSession)) (netip.AddrPort, func(), error) {
	return serveSessions(ip, sessions, record, func(c net.Conn, addr netip.AddrPort, i int) hostileSession {
		kind := hostileKind(rng.IntN(int(numHostileKinds)))
		err := hostileHandshake(c, env, hostileID(addr, i), false, kind == hkNoFast)
		sess := hostileSession{kind: kind, addr: addr, err: err}
		if err == nil {
			sess.closed, sess.cut = runHostile(c, kind, rng, env)
		}
		return sess
	})
}

// runHostileDialer connects to target from ip up to sessions times, playing
// a random script each time.
func runHostileDialer(ctx context.Context, ip string, target netip.AddrPort, env *hostileEnv, rng *rand.Rand, sessions int, record func(hostileSession)) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	for i := 0; i < sessions && ctx.Err() == nil; i++ {
		c, err := d.DialContext(ctx, "tcp", target.String())
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		addr := c.LocalAddr().(*net.TCPAddr).AddrPort()
		kind := hostileKind(rng.IntN(int(numHostileKinds)))
		err = hostileHandshake(c, env, hostileID(addr, i), true, kind == hkNoFast)
		sess := hostileSession{kind: kind, addr: addr, err: err}
		if err == nil {
			sess.closed, sess.cut = runHostile(c, kind, rng, env)
		}
		stop()
		c.Close()
		record(sess)
	}
}

func hostileID(a netip.AddrPort, i int) [20]byte {
	var id [20]byte
	copy(id[:], fmt.Sprintf("-HO0001-%05d%02d%03d", a.Port(), i%100, a.Addr().As4()[3]))
	return id
}

// logRecorder is a slog.Handler that keeps the engine's records about peers
// (message, peer address and reason) for the test to check.
type logRecorder struct {
	mu    *sync.Mutex
	recs  *[]loggedRec
	attrs []slog.Attr
}

type loggedRec struct {
	msg, peer, reason string
	level             slog.Level
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: new(sync.Mutex), recs: new([]loggedRec)}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := loggedRec{msg: r.Message, level: r.Level}
	take := func(a slog.Attr) bool {
		switch a.Key {
		case "peer", "remote":
			rec.peer = a.Value.String()
		case "reason", "err":
			rec.reason = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		take(a)
	}
	r.Attrs(take)
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{mu: h.mu, recs: h.recs, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// reasons returns the logged reasons for dropping or removing the peer at addr.
func (h *logRecorder) reasons(addr string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range *h.recs {
		if r.peer == addr && r.reason != "" {
			out = append(out, r.msg+": "+r.reason)
		}
	}
	return out
}
