package engine

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// blockLiar is a fake seeder that answers the first request of each piece
// with a corrupt block and rejects every other request.
type blockLiar struct {
	addr    netip.AddrPort
	ln      net.Listener
	wg      sync.WaitGroup
	corrupt atomic.Int64 // corrupt blocks sent
}

func startBlockLiar(t *testing.T, ip string, ih [20]byte, seed uint64) *blockLiar {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	l := &blockLiar{addr: ln.Addr().(*net.TCPAddr).AddrPort(), ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer c.Close()
				l.serve(c, ih, rand.New(rand.NewPCG(seed, uint64(i))))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		l.wg.Wait()
	})
	return l
}

func (l *blockLiar) serve(c net.Conn, ih [20]byte, rng *rand.Rand) {
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := wire.ReadHandshake(c); err != nil {
		return
	}
	var id [20]byte
	copy(id[:], fmt.Sprintf("-LI0001-%012d", rng.Uint64()%1e12))
	if err := wire.WriteHandshake(c, wire.NewHandshake(ih, id)); err != nil {
		return
	}
	out := wire.AppendMessage(nil, wire.Message{ID: wire.HaveAll})
	out = wire.AppendMessage(out, wire.Message{ID: wire.Unchoke})
	if _, err := c.Write(out); err != nil {
		return
	}
	poisoned := map[uint32]bool{}
	br := bufio.NewReader(c)
	buf := make([]byte, 64<<10)
	for {
		m, err := wire.ReadMessage(br, 0, buf)
		if err != nil {
			return
		}
		if m.ID != wire.Request {
			continue
		}
		var ans wire.Message
		if !poisoned[m.Index] {
			poisoned[m.Index] = true
			block := make([]byte, m.Length)
			for i := range block {
				block[i] = byte(rng.Uint32())
			}
			ans = wire.Message{ID: wire.Piece, Index: m.Index, Begin: m.Begin, Data: block}
			l.corrupt.Add(1)
		} else {
			ans = wire.Message{ID: wire.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length}
		}
		if _, err := c.Write(wire.AppendMessage(nil, ans)); err != nil {
			return
		}
	}
}

// TestFairBlame (issue 12, row 4): three liars send one corrupt block per
// piece and reject the rest, beside an honest libtorrent seeder. Every IP
// that sent a block of a failed piece used to be blamed, so the honest
// seeder, which sent most of them, was banned within seconds and the
// download stalled. Now a failure shared by several IPs charges nobody:
// they go on parole (whole pieces alone), the piece is fetched again, and
// the IP whose block differs from the verified piece is banned.
func TestFairBlame(t *testing.T) {
	f := makeFixture(t, "fairblame", 64<<10, nil, 2<<20)
	seeder := startSeeder(t, "127.0.14.2", f)
	honest := addrPort(t, seeder.Addr)
	var liars []*blockLiar
	var peers []netip.AddrPort
	for i := 0; i < 3; i++ {
		l := startBlockLiar(t, fmt.Sprintf("127.0.14.%d", 10+i), f.mi.InfoHash, uint64(i))
		liars = append(liars, l)
		peers = append(peers, l.addr)
	}
	c := newTestClient(t, "127.0.14.1", Config{})
	// The liars first, so that they get requests before the seeder.
	tor, err := c.AddTorrent(f.mi, AddOptions{Peers: append(peers, honest), Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for done := false; !done; {
		select {
		case <-tor.Complete():
			done = true
		case <-ctx.Done():
			t.Fatalf("download did not complete; stats %+v; banned %v", tor.Stats(), tor.Banned())
		case <-time.After(20 * time.Millisecond):
		}
		if slices.Contains(tor.Banned(), honest.Addr()) {
			t.Fatalf("the honest seeder was banned; stats %+v", tor.Stats())
		}
	}
	checkFiles(t, ctx, tor, f)
	banned := tor.Banned()
	if slices.Contains(banned, honest.Addr()) {
		t.Fatal("the honest seeder was banned")
	}
	sent := 0
	for i, l := range liars {
		n := l.corrupt.Load()
		sent += int(n)
		t.Logf("liar %d (%s): %d corrupt blocks sent, banned %v", i, l.addr, n, slices.Contains(banned, l.addr.Addr()))
		if n > 0 && !slices.Contains(banned, l.addr.Addr()) {
			t.Errorf("liar %s sent %d corrupt blocks and was not banned", l.addr, n)
		}
	}
	if sent == 0 {
		t.Fatal("the liars sent nothing: the test tested nothing")
	}
	// Stats (and so /metrics) count what happened.
	if st := tor.Stats(); st.HashFailures == 0 || st.Banned != len(banned) {
		t.Errorf("stats say %d hash failures and %d banned, want > 0 and %d", st.HashFailures, st.Banned, len(banned))
	}
}
