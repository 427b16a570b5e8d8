package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Regression tests for bugs the hostile-peer tests found.

// dialHostile connects to c from ip and runs the handshake.
func dialHostile(t *testing.T, ip string, c *Client, env *hostileEnv, n int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", c.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := hostileHandshake(conn, env, hostileID(conn.LocalAddr().(*net.TCPAddr).AddrPort(), n), true, false); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSendQueueBounded: a peer that keeps sending requests and ut_metadata
// requests but never reads our answers used to make its send queue grow
// without bound (each 17-byte request earned a reject, each ut_metadata
// request a copy of a metadata piece). It is now dropped when its queue
// passes maxSendQueueBytes, with that reason logged.
func TestSendQueueBounded(t *testing.T) {
	f := makeFixture(t, "unread", 16<<10, nil, 2<<20)
	rec := newLogRecorder()
	c := newTestClient(t, "127.0.11.1", Config{Logger: slog.New(rec)})
	tor := seedFixture(t, c, f)
	stop := make(chan struct{})
	defer close(stop)
	env := &hostileEnv{ih: f.mi.InfoHash, numPieces: f.mi.Info.NumPieces(), pieceLen: f.mi.Info.PieceLength, metaSize: len(f.mi.InfoBytes), stop: stop}
	worst := sampleBounds(tor)
	conn := dialHostile(t, "127.0.11.80", c, env, 0)
	addr := conn.LocalAddr().String()
	if closed, _ := runHostile(conn, hkNoRead, rand.New(rand.NewPCG(1, 2)), env); !closed {
		time.Sleep(200 * time.Millisecond) // let the loop answer what it read
		t.Fatalf("the engine kept a peer that never reads; %d bytes queued for it", worst().sendQueue)
	}
	// The loop logs the removal after the socket closed.
	var reasons string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if reasons = strings.Join(rec.reasons(addr), "; "); reasons != "" {
			break
		}
	}
	b := worst()
	if !strings.Contains(reasons, "send queue") {
		t.Fatalf("logged reasons for %s: %q, want the send queue", addr, reasons)
	}
	if b.sendQueue > maxSendQueueBytes {
		t.Fatalf("%d bytes queued, cap %d", b.sendQueue, maxSendQueueBytes)
	}
	t.Logf("dropped: %s; worst queue %d B, heap %d KiB", reasons, b.sendQueue, b.heapInuse>>10)
}

// TestPexCannotCrowdOutPeers: peers that repeat their extension handshake
// with a new listen port each time and flood ut_pex used to fill the
// torrent's known-peer set (each repeated handshake reset the PEX flood
// limits and added a never-freed "connected" entry and a PEX swarm entry),
// after which addresses from the user were silently dropped. Now PEX holds
// at most maxPexKnown addresses, the listen port is that of the first
// handshake, and user addresses always get in.
func TestPexCannotCrowdOutPeers(t *testing.T) {
	f := makeFixture(t, "crowded", 16<<10, nil, 300000)
	honest := startFakePeer(t, "127.0.11.85", f, false, 0)
	c := newTestClient(t, "127.0.11.1", Config{})
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	env := &hostileEnv{ih: f.mi.InfoHash, numPieces: f.mi.Info.NumPieces(), pieceLen: f.mi.Info.PieceLength, metaSize: len(f.mi.InfoBytes), stop: stop}
	for i := 0; i < 3; i++ {
		conn := dialHostile(t, fmt.Sprintf("127.0.11.%d", 81+i), c, env, i)
		s := &script{c: conn, rng: rand.New(rand.NewPCG(3, uint64(i))), env: env, gone: make(chan struct{})}
		for j := 0; j < 40; j++ {
			s.extHandshake(wire.ExtHandshake{M: map[string]int{wire.ExtPex: 5}, P: 2000 + j})
			s.msg(wire.Message{ID: wire.Extended, ExtID: wire.ExtPexID, Data: s.pex(wire.MaxPexPeers)})
		}
		if !s.flush() {
			t.Fatal("write failed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Wait until the loop handled the floods: the hostile peers' PEX stops
	// adding addresses.
	var known, pexKnown, swarm, peers int
	for prev := -1; ; prev = known {
		time.Sleep(300 * time.Millisecond)
		if err := tor.do(func() {
			known, pexKnown, swarm, peers = tor.ls.book.Len(), tor.ls.book.pexKnown, tor.ls.pex.swarm.Len(), tor.ls.conns.len()
		}); err != nil {
			t.Fatal(err)
		}
		if known == prev || ctx.Err() != nil {
			break
		}
	}
	t.Logf("after the floods: %d known, %d through PEX, PEX swarm %d, %d peers", known, pexKnown, swarm, peers)
	if pexKnown > maxPexKnown || known > maxKnownPeers {
		t.Fatalf("%d known addresses, %d through PEX", known, pexKnown)
	}
	if swarm > peers {
		t.Fatalf("PEX swarm of %d addresses for %d peers", swarm, peers)
	}
	tor.AddPeers(honest.addr)
	waitClosed(t, ctx, tor.Complete(), "download from the peer the user added", tor)
	checkFiles(t, ctx, tor, f)

	// A full set still takes the user's addresses, in place of others.
	full := make([]netip.AddrPort, maxKnownPeers)
	for i := range full {
		full[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 6881)
	}
	user := netip.MustParseAddrPort("10.8.0.1:6881")
	var has bool
	if err := tor.do(func() {
		tor.ls.addPeers(full, SourceTracker)
		tor.ls.addPeers([]netip.AddrPort{user}, SourceUser)
		has = tor.ls.book.Has(user)
		known = tor.ls.book.Len()
	}); err != nil {
		t.Fatal(err)
	}
	if !has || known > maxKnownPeers {
		t.Fatalf("user address known: %v; %d known", has, known)
	}
}

// TestMagnetSizeLiar: a peer that claims another metadata_size and never
// answers used to own the only metadata assembler, so the magnet never
// resolved although an honest peer was connected. Each claimed size now
// has its own assembler, and unanswered requests go to others.
func TestMagnetSizeLiar(t *testing.T) {
	f := makeFixture(t, "size-lie", 16<<10, nil, 500000)
	honest := startFakePeer(t, "127.0.11.86", f, false, 0)
	honest.meta = f.mi.InfoBytes
	stop := make(chan struct{})
	defer close(stop)
	env := &hostileEnv{ih: f.mi.InfoHash, numPieces: f.mi.Info.NumPieces(), pieceLen: f.mi.Info.PieceLength, metaSize: len(f.mi.InfoBytes), stop: stop}
	var run hostileRun
	c := newTestClient(t, "127.0.11.1", Config{})
	var liars []netip.AddrPort
	for i, lie := range []metaLie{mlSilentSize, mlBadHaves} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.11.%d:0", 87+i))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		liars = append(liars, ln.Addr().(*net.TCPAddr).AddrPort())
		go func() {
			rng := rand.New(rand.NewPCG(4, uint64(i)))
			for n := 0; n < 5; n++ {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				a := conn.LocalAddr().(*net.TCPAddr).AddrPort()
				if hostileHandshake(conn, env, hostileID(a, n), false, false) == nil {
					run.record(hostileSession{kind: hostileKind(lie), addr: a, closed: playMetaLie(conn, lie, rng, env)})
				}
				conn.Close()
			}
		}()
	}
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{Peers: liars})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The liars are asked first.
	for tor.Stats().Peers < len(liars) {
		select {
		case <-ctx.Done():
			t.Fatalf("liars not connected: %+v", tor.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond)
	tor.AddPeers(honest.addr)
	added := time.Now()
	waitClosed(t, ctx, tor.InfoReady(), "metadata beside a peer lying about its size", tor)
	t.Logf("metadata %v after the honest peer was added", time.Since(added).Round(time.Millisecond))
	if string(tor.MetaInfo().InfoBytes) != string(f.mi.InfoBytes) {
		t.Fatal("wrong metadata")
	}
}
