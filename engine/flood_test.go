package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Flood tests: a peer sends valid messages, as fast as it can, that cost
// us more than they cost it. The cost must be charged to it, bounded, and
// the peer dropped.

// floodConn dials c from ip and runs the handshake (fast and extension
// bits set). A goroutine reads and discards what the engine sends; the
// returned channel is closed when the engine hangs up.
func floodConn(c *Client, ip string, ih [20]byte, n int) (net.Conn, <-chan struct{}, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", c.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	env := &hostileEnv{ih: ih}
	if err := hostileHandshake(conn, env, hostileID(conn.LocalAddr().(*net.TCPAddr).AddrPort(), n), true, false); err != nil {
		conn.Close()
		return nil, nil, err
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		br := bufio.NewReader(conn)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.Copy(io.Discard, br); err == nil || !isTimeout(err) {
				return
			}
		}
	}()
	return conn, gone, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// writeAll writes msgs in batches until the engine hangs up or all are
// written.
func writeAll(conn net.Conn, gone <-chan struct{}, msgs []wire.Message) (written int) {
	var out []byte
	for written < len(msgs) {
		out = out[:0]
		for k := 0; k < 100 && written < len(msgs); k++ {
			out = wire.AppendMessage(out, msgs[written])
			written++
		}
		select {
		case <-gone:
			return written
		default:
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(out); err != nil {
			return written
		}
	}
	return written
}

// waitGone waits up to 10 s for the engine to hang up.
func waitGone(gone <-chan struct{}) bool {
	select {
	case <-gone:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// TestMetadataSizeFlood (issue 12, row 1): a peer of a magnet torrent
// repeats its extension handshake, each time claiming a new random
// metadata_size. Each claim used to get an assembler (up to 64 KiB for a
// 16 MiB claim), freed only a second later: gigabytes from megabytes of
// handshakes. Now only the first claim counts, repeated handshakes are
// rate-limited and the peer is dropped; allocations stay small.
func TestMetadataSizeFlood(t *testing.T) {
	f := makeFixture(t, "sizeflood", 16<<10, nil, 1<<20)
	rec := newLogRecorder()
	c := newTestClient(t, "127.0.12.1", Config{Logger: slog.New(rec)})
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 12))
	const n = 5000
	msgs := make([]wire.Message, n)
	for i := range msgs {
		h := wire.ExtHandshake{M: map[string]int{wire.ExtMetadata: 3}, MetadataSize: wire.MaxMetadataSize/2 + rng.IntN(wire.MaxMetadataSize/2)}
		b, _ := h.Marshal()
		msgs[i] = wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Data: b}
	}
	conn, gone, err := floodConn(c, "127.0.12.50", f.mi.InfoHash, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := conn.LocalAddr().String()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	written := writeAll(conn, gone, msgs)
	dropped := waitGone(gone)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d handshakes written; dropped %v (%s); %d KiB allocated", written, dropped, strings.Join(rec.reasons(addr), "; "), alloc>>10)
	if !dropped {
		t.Errorf("a peer repeating its extension handshake %d times was not dropped", written)
	}
	if alloc > 32<<20 {
		t.Errorf("%d MiB allocated for %d handshakes; want under 32 MiB", alloc>>20, written)
	}
	if st := tor.Stats(); st.State != StateFetchingMetadata {
		t.Errorf("state %v", st.State)
	}
}

// TestExtHandshakeFlood (issue 12, row 5): 40 peers send valid 1 MiB
// extension handshakes in a loop. Each used to be copied to the torrent
// loop's queue and decoded there: hundreds of MiB queued, and every
// caller of Stats waiting behind them. Now the reader refuses a handshake
// over wire.MaxExtHandshakeLen without copying it and drops the peer, and
// Stats answers from the published snapshot.
func TestExtHandshakeFlood(t *testing.T) {
	f := makeFixture(t, "extflood", 16<<10, nil, 1<<20)
	c := newTestClient(t, "127.0.12.1", Config{})
	tor := seedFixture(t, c, f)
	// One valid 1 MiB handshake, shared by all senders.
	pad := strings.Repeat("x", wire.DefaultMaxMessageLen-200)
	big := []byte(fmt.Sprintf("d1:md11:ut_metadatai3ee1:v%d:%se", len(pad), pad))
	if _, err := metainfo.Decode(big); err != nil {
		t.Fatal(err)
	}
	frame := wire.AppendMessage(nil, wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Data: big})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var (
		mu                 sync.Mutex
		conns, dropped     int
		heapPeak, statsRun uint64
	)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50 && ctx.Err() == nil; k++ {
				conn, gone, err := floodConn(c, fmt.Sprintf("127.0.12.%d", 100+i), f.mi.InfoHash, k)
				if err != nil {
					return
				}
				for j := 0; j < 20; j++ {
					_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
					if _, err := conn.Write(frame); err != nil {
						break
					}
				}
				hung := waitGone(gone)
				conn.Close()
				mu.Lock()
				conns++
				if hung {
					dropped++
				}
				mu.Unlock()
			}
		}()
	}
	// Sample the heap and ask for Stats while the flood runs.
	for ctx.Err() == nil {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapPeak = max(heapPeak, ms.HeapInuse)
		if st := tor.Stats(); st.State != StateSeeding {
			t.Fatalf("state %v during the flood", st.State)
		}
		statsRun++
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d connections, %d dropped; heap in use at most %d MiB; %d Stats calls", conns, dropped, heapPeak>>20, statsRun)
	if dropped != conns || conns == 0 {
		t.Errorf("%d of %d flooding connections dropped", dropped, conns)
	}
	if heapPeak > 160<<20 {
		t.Errorf("heap in use reached %d MiB; want under 160 MiB", heapPeak>>20)
	}
}
