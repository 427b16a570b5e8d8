package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Bounds the hostile tests assert. The heap bound covers the test process
// (fixture content, libtorrent's driver pipes, the engine): a healthy run
// stays far below it, while unbounded queues driven by hostile peers pass
// it within a second.
const (
	hostileHeapBound   = 96 << 20
	hostileQueueBound  = maxSendQueueBytes
	hostileListeners   = 12
	hostileDialers     = 12
	hostileSessions    = 3
	hostileMinDuration = 5 * time.Second
)

// hostileSeed returns the seed of the hostile tests' RNGs: 1, or
// $SWARMFS_HOSTILE_SEED to replay another run.
func hostileSeed(t *testing.T) uint64 {
	seed := uint64(1)
	if s := os.Getenv("SWARMFS_HOSTILE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SWARMFS_HOSTILE_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (SWARMFS_HOSTILE_SEED replays a run)", seed)
	return seed
}

// boundsSample is what the sampler saw at its worst.
type boundsSample struct {
	heapInuse  uint64
	known      int
	sendQueue  int // bytes queued for one peer's writer
	serveQueue int
	reqSent    int
	stale      int
	rawHaves   int
	pexSwarm   int
	peers      int
}

func (b *boundsSample) max(o boundsSample) {
	b.heapInuse = max(b.heapInuse, o.heapInuse)
	b.known = max(b.known, o.known)
	b.sendQueue = max(b.sendQueue, o.sendQueue)
	b.serveQueue = max(b.serveQueue, o.serveQueue)
	b.reqSent = max(b.reqSent, o.reqSent)
	b.stale = max(b.stale, o.stale)
	b.rawHaves = max(b.rawHaves, o.rawHaves)
	b.pexSwarm = max(b.pexSwarm, o.pexSwarm)
	b.peers = max(b.peers, o.peers)
}

// sampleBounds records the torrent's state sizes and the heap every 50 ms
// until stop; the returned function stops it and returns the maxima.
func sampleBounds(tor *Torrent) func() boundsSample {
	stop := make(chan struct{})
	done := make(chan boundsSample)
	go func() {
		var worst boundsSample
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s := boundsSample{heapInuse: ms.HeapInuse}
			_ = tor.do(func() {
				ls := tor.ls
				s.known, s.peers, s.pexSwarm = ls.book.Len(), ls.conns.len(), ls.pex.swarm.Len()
				for p := range ls.conns.peers {
					q, serve := p.queueSizes()
					s.sendQueue = max(s.sendQueue, q)
					s.serveQueue = max(s.serveQueue, serve)
					s.reqSent = max(s.reqSent, len(p.reqSent))
					s.stale = max(s.stale, len(p.stale))
					s.rawHaves = max(s.rawHaves, len(p.rawHaves))
				}
			})
			worst.max(s)
			select {
			case <-stop:
				done <- worst
				return
			case <-tick.C:
			}
		}
	}()
	return func() boundsSample {
		close(stop)
		return <-done
	}
}

// queueSizes returns the bytes queued for p's writer and its queued
// requests to serve.
func (p *peer) queueSizes() (queued, serve int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queuedBytes, len(p.serve)
}

// hostileRun collects the sessions of hostile peers.
type hostileRun struct {
	mu       sync.Mutex
	sessions []hostileSession
}

func (h *hostileRun) record(s hostileSession) {
	h.mu.Lock()
	h.sessions = append(h.sessions, s)
	h.mu.Unlock()
}

// checkSessions fails the test for a hostile connection the engine hung up
// on without a logged reason, and reports what happened per script.
func (h *hostileRun) checkSessions(t *testing.T, rec *logRecorder) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	closed := map[hostileKind]int{}
	total := map[hostileKind]int{}
	hungUp, failed := 0, 0
	for _, s := range h.sessions {
		if s.err != nil {
			failed++ // the handshake failed: no script was played
			continue
		}
		total[s.kind]++
		if !s.closed {
			if s.kind.mustDrop() && !s.cut {
				t.Errorf("the engine kept a %s peer (%s)", s.kind, s.addr)
			}
			continue
		}
		hungUp++
		closed[s.kind]++
		if len(rec.reasons(s.addr.String())) == 0 {
			t.Errorf("the engine hung up on a %s peer (%s) without a logged reason", s.kind, s.addr)
		}
	}
	var summary string
	for k := hostileKind(0); k < numHostileKinds; k++ {
		if total[k] > 0 {
			summary += fmt.Sprintf(" %s %d/%d", k, closed[k], total[k])
		}
	}
	t.Logf("%d hostile sessions (%d failed handshakes), %d dropped by the engine (per script dropped/played):%s", len(h.sessions), failed, hungUp, summary)
	if hungUp == 0 {
		t.Error("the engine dropped no hostile peer")
	}
}

// closePromptly closes c, failing the test if it hangs.
func closePromptly(t *testing.T, c *Client) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Client.Close hangs")
	}
}

// TestHostilePeers downloads from an honest libtorrent seeder while 24 fake
// peers, half dialed by the engine and half dialing it, play randomized
// hostile scripts: the data arrives intact, every peer the engine hangs up
// on has a logged reason, the torrent's peer set, the per-peer queues and
// the heap stay bounded, and Close returns promptly.
func TestHostilePeers(t *testing.T) {
	seed := hostileSeed(t)
	f := makeFixture(t, "hostile.bin", 32<<10, nil, 4<<20+100000) // 132 pieces: spare bits
	honest := startSeeder(t, "127.0.11.2", f)
	rec := newLogRecorder()
	c := newTestClient(t, "127.0.11.1", Config{Logger: slog.New(rec)})
	stop := make(chan struct{})
	env := &hostileEnv{ih: f.mi.InfoHash, numPieces: f.mi.Info.NumPieces(), pieceLen: f.mi.Info.PieceLength, metaSize: len(f.mi.InfoBytes), stop: stop}
	var run hostileRun
	var listeners []netip.AddrPort
	for i := 0; i < hostileListeners; i++ {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		addr, stopLn, err := startHostileListener(fmt.Sprintf("127.0.11.%d", 10+i), env, rng, hostileSessions, run.record)
		if err != nil {
			t.Fatal(err)
		}
		defer stopLn()
		listeners = append(listeners, addr)
	}
	endScripts := sync.OnceFunc(func() { close(stop) })
	defer endScripts() // before the listeners stop, also when the test fails
	start := time.Now()
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: listeners, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	worst := sampleBounds(tor)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var dialers sync.WaitGroup
	for i := 0; i < hostileDialers; i++ {
		rng := rand.New(rand.NewPCG(seed, uint64(100+i)))
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			runHostileDialer(ctx, fmt.Sprintf("127.0.11.%d", 30+i), c.Addr(), env, rng, hostileSessions, run.record)
		}()
	}
	// The hostile peers have the torrent to themselves for a moment.
	time.Sleep(time.Second)
	tor.AddPeers(addrPort(t, honest.Addr))
	waitClosed(t, ctx, tor.Complete(), "download beside hostile peers", tor)
	if d := hostileMinDuration - time.Since(start); d > 0 {
		time.Sleep(d) // let the slow scripts (trickle, storms) run on
	}
	endScripts()
	dialers.Wait()
	b := worst()
	checkFiles(t, ctx, tor, f)
	run.checkSessions(t, rec)
	t.Logf("worst seen: heap in use %d KiB, known %d, peers %d, send queue %d B, serve queue %d, requests %d, stale %d, raw haves %d, pex swarm %d",
		b.heapInuse>>10, b.known, b.peers, b.sendQueue, b.serveQueue, b.reqSent, b.stale, b.rawHaves, b.pexSwarm)
	checkBounds(t, b)
	closePromptly(t, c)
}

// checkBounds fails the test when a sample passed a bound.
func checkBounds(t *testing.T, b boundsSample) {
	t.Helper()
	if b.heapInuse > hostileHeapBound {
		t.Errorf("heap in use reached %d MiB, bound %d MiB", b.heapInuse>>20, hostileHeapBound>>20)
	}
	if b.known > maxKnownPeers {
		t.Errorf("%d known peers, cap %d", b.known, maxKnownPeers)
	}
	if b.peers > DefaultMaxConnsPerTorrent {
		t.Errorf("%d peers, cap %d", b.peers, DefaultMaxConnsPerTorrent)
	}
	if b.sendQueue > hostileQueueBound {
		t.Errorf("%d bytes queued for one peer, bound %d", b.sendQueue, hostileQueueBound)
	}
	if b.serveQueue > maxServeQueue {
		t.Errorf("%d requests queued to serve, cap %d", b.serveQueue, maxServeQueue)
	}
	if b.reqSent > maxPipeline || b.stale > 4*maxPipeline {
		t.Errorf("%d requests outstanding and %d stale at one peer", b.reqSent, b.stale)
	}
	if b.pexSwarm > DefaultMaxConnsPerTorrent {
		t.Errorf("PEX swarm of %d addresses with at most %d peers", b.pexSwarm, DefaultMaxConnsPerTorrent)
	}
}
