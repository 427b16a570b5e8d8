package engine

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// metaLie is what a hostile ut_metadata peer does.
type metaLie int

const (
	mlSilentSize metaLie = iota // claims another metadata_size, never answers
	mlRejectSize                // claims another metadata_size, rejects every request
	mlRejectAll                 // the right size, rejects every request
	mlJunk                      // the right size, answers with random bytes
	mlJunkSize                  // another size, answers with random bytes
	mlWrongLen                  // the right size, pieces of the wrong length
	mlTotalSize                 // answers with another total_size
	mlFlood                     // sends every piece again and again, unasked
	mlHugeSize                  // claims MaxMetadataSize and answers with random bytes
	mlBadHaves                  // the right size, silent; a bitfield and haves that fit no torrent
	numMetaLies
)

var metaLieNames = [...]string{"silent-size", "reject-size", "reject-all", "junk", "junk-size",
	"wrong-len", "total-size", "flood", "huge-size", "bad-haves"}

func (l metaLie) String() string { return metaLieNames[l] }

// playMetaLie runs lie on c (handshake done) until the engine hangs up,
// the script ends or stop.
func playMetaLie(c net.Conn, lie metaLie, rng *rand.Rand, env *hostileEnv) (engineClosed bool) {
	size := env.metaSize
	switch lie {
	case mlSilentSize, mlRejectSize, mlJunkSize:
		size = max(1, env.metaSize+rng.IntN(4*wire.MetadataPieceSize)-2*wire.MetadataPieceSize)
		if size == env.metaSize {
			size++
		}
	case mlHugeSize:
		size = wire.MaxMetadataSize
	}
	var mu sync.Mutex
	write := func(ms ...wire.Message) bool {
		var b []byte
		for _, m := range ms {
			b = wire.AppendMessage(b, m)
		}
		mu.Lock()
		defer mu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write(b)
		return err == nil
	}
	h := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: 3}, MetadataSize: size}
	hb, _ := h.Marshal()
	first := []wire.Message{{ID: wire.Extended, ExtID: 0, Data: hb}}
	if lie == mlBadHaves {
		first = append(first, wire.Message{ID: wire.Bitfield, Data: make([]byte, 1+rng.IntN(1000))},
			wire.Message{ID: wire.Have, Index: uint32(1 << 30)})
	}
	if !write(first...) {
		return true
	}
	data := func(piece, total, n int) wire.Message {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		p := wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataData, Piece: piece, TotalSize: total, Data: b})
		return wire.Message{ID: wire.Extended, ExtID: wire.ExtMetadataID, Data: p}
	}
	pieceLen := func(i int) int { return min(wire.MetadataPieceSize, size-i*wire.MetadataPieceSize) }
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		br := bufio.NewReader(c)
		buf := make([]byte, 64<<10)
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			m, err := wire.ReadMessage(br, 0, buf)
			if err != nil {
				return
			}
			if m.ID != wire.Extended || m.ExtID != 3 {
				continue
			}
			req, err := wire.ParseMetadataMsg(m.Data)
			if err != nil || req.Type != wire.MetadataRequest {
				continue
			}
			var ans wire.Message
			switch lie {
			case mlSilentSize, mlBadHaves, mlFlood:
				continue
			case mlRejectSize, mlRejectAll:
				p := wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataReject, Piece: req.Piece})
				ans = wire.Message{ID: wire.Extended, ExtID: wire.ExtMetadataID, Data: p}
			case mlJunk, mlJunkSize, mlHugeSize:
				ans = data(req.Piece, size, pieceLen(req.Piece))
			case mlWrongLen:
				ans = data(req.Piece, size, max(1, pieceLen(req.Piece)-1-rng.IntN(100)))
			case mlTotalSize:
				ans = data(req.Piece, size+1+rng.IntN(1000), pieceLen(req.Piece))
			}
			if !write(ans) {
				return
			}
		}
	}()
	if lie == mlFlood {
		for round := 0; round < 20; round++ {
			var ms []wire.Message
			for i := 0; i < metaPieces(size); i++ {
				ms = append(ms, data(i, size, pieceLen(i)))
			}
			if !write(ms...) {
				break
			}
			select {
			case <-gone:
				return true
			case <-env.stop:
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	select {
	case <-gone:
		return true
	case <-env.stop:
		select {
		case <-gone:
			return true
		default:
			return false
		}
	}
}

// startMetaLiar listens on ip and plays a random lie on each connection
// the engine makes, up to sessions.
func startMetaLiar(ip string, env *hostileEnv, rng *rand.Rand, sessions int, record func(hostileSession)) (netip.AddrPort, func(), error) {
	return serveSessions(ip, sessions, record, func(c net.Conn, addr netip.AddrPort, i int) hostileSession {
		lie := metaLie(rng.IntN(int(numMetaLies)))
		sess := hostileSession{kind: hostileKind(lie), addr: addr}
		sess.err = hostileHandshake(c, env, hostileID(addr, i), false, false)
		if sess.err == nil {
			sess.closed = playMetaLie(c, lie, rng, env)
		}
		return sess
	})
}

// TestHostileMagnet resolves a magnet while 16 peers lie about the
// metadata (sizes, pieces, lengths, floods, rejects) and one honest fake
// peer serves it: the metadata verifies, the data downloads, the liars are
// dropped with a logged reason or ignored, memory stays bounded.
func TestHostileMagnet(t *testing.T) {
	seed := hostileSeed(t)
	f := makeFixture(t, "hostile-magnet", 16<<10, nil, 1<<20, 300000)
	honest := startFakePeer(t, "127.0.11.3", f, false, 0)
	honest.meta = f.mi.InfoBytes
	rec := newLogRecorder()
	c := newTestClient(t, "127.0.11.1", Config{Logger: slog.New(rec)})
	stop := make(chan struct{})
	env := &hostileEnv{ih: f.mi.InfoHash, numPieces: f.mi.Info.NumPieces(), pieceLen: f.mi.Info.PieceLength, metaSize: len(f.mi.InfoBytes), stop: stop}
	var run hostileRun
	var liars []netip.AddrPort
	for i := 0; i < 16; i++ {
		rng := rand.New(rand.NewPCG(seed, uint64(200+i)))
		addr, stopLn, err := startMetaLiar(fmt.Sprintf("127.0.11.%d", 50+i), env, rng, 2, run.record)
		if err != nil {
			t.Fatal(err)
		}
		defer stopLn()
		liars = append(liars, addr)
	}
	endScripts := sync.OnceFunc(func() { close(stop) })
	defer endScripts() // before the listeners stop, also when the test fails
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{Peers: liars, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	worst := sampleBounds(tor)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	time.Sleep(time.Second) // the liars have the magnet to themselves
	tor.AddPeers(honest.addr)
	added := time.Now()
	waitClosed(t, ctx, tor.InfoReady(), "metadata beside lying peers", tor)
	t.Logf("metadata %v after the honest peer was added", time.Since(added).Round(time.Millisecond))
	if got := tor.MetaInfo(); got.InfoHash != f.mi.InfoHash || string(got.InfoBytes) != string(f.mi.InfoBytes) {
		t.Fatal("resolved metadata differs from the torrent's")
	}
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	t.Logf("download complete %v after the honest peer was added", time.Since(added).Round(time.Millisecond))
	endScripts()
	b := worst()
	checkFiles(t, ctx, tor, f)
	run.mu.Lock()
	for i, s := range run.sessions {
		// The sessions' kinds are lies here.
		lie := metaLie(s.kind)
		if s.closed && len(rec.reasons(s.addr.String())) == 0 {
			t.Errorf("session %d: the engine hung up on a %s liar (%s) without a logged reason", i, lie, s.addr)
		}
		t.Logf("%s liar %s: dropped %v", lie, s.addr, s.closed)
	}
	run.mu.Unlock()
	t.Logf("worst seen: heap in use %d KiB, known %d, peers %d, send queue %d B", b.heapInuse>>10, b.known, b.peers, b.sendQueue)
	checkBounds(t, b)
	closePromptly(t, c)
}
