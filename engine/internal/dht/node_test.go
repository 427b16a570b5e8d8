package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"

	"github.com/swarmfs/swarmfs/metainfo"
)

// testIP is this package's loopback address for fixed-address tests.
const testIP = "127.0.5.1"

func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/dht."))
}

// testConfig is a loopback node config for tests: no public bootstrap.
func testConfig() Config {
	return Config{
		Addr:          testIP + ":0",
		Bootstrap:     []string{},
		AllowLoopback: true,
		QueryTimeout:  time.Second,
		MaxQPS:        100000,
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestSmallDHT(t *testing.T) {
	const size = 20
	nodes := make([]*Node, size)
	nodes[0] = startNode(t, testConfig())
	for i := 1; i < size; i++ {
		cfg := testConfig()
		cfg.Bootstrap = []string{nodes[0].Addr().String()}
		nodes[i] = startNode(t, cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Two rounds: the first fills node 0, the second lets every node learn
	// the nodes that joined after it.
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, size)
		for i := 1; i < size; i++ {
			wg.Go(func() { errs[i] = nodes[i].Bootstrap(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: node %d bootstrap: %v", round, i, err)
			}
		}
	}
	for i, n := range nodes {
		if s := n.Stats(); s.Nodes < K {
			t.Fatalf("node %d knows only %d nodes", i, s.Nodes)
		}
	}
	ih := metainfo.Hash(randHash())
	a, b := nodes[7], nodes[16]
	const announcePort = 7007
	if _, err := a.Announce(ctx, ih, announcePort, false); err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr(testIP), announcePort)
	found := false
	for batch := range b.GetPeers(ctx, ih) {
		if slices.Contains(batch, want) {
			found = true
			cancel() // stop the lookup; the channel still closes
		}
	}
	if !found {
		t.Fatalf("node B did not find A's announce %v", want)
	}
	stored := 0
	for _, n := range nodes {
		stored += n.Stats().Peers
	}
	if stored < 2 {
		t.Fatalf("announce stored at %d nodes", stored)
	}
	// Announce with implied port: the stored peer is A's UDP address.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	ih2 := metainfo.Hash(randHash())
	if _, err := a.Announce(ctx2, ih2, 0, true); err != nil {
		t.Fatal(err)
	}
	peers, err := b.Announce(ctx2, ih2, 9999, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(peers, a.Addr()) {
		t.Fatalf("implied-port announce: found %v, want %v", peers, a.Addr())
	}
	s := b.Stats()
	if s.QueriesOut == 0 || s.Responses == 0 || s.QueriesIn == 0 || s.Malformed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestGetPeersEndsWithoutNodes(t *testing.T) {
	n := startNode(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range n.GetPeers(ctx, randHash()) {
		t.Fatal("peers from an empty DHT")
	}
	if ctx.Err() != nil {
		t.Fatal("lookup with no nodes ran until the deadline")
	}
	if err := n.Bootstrap(ctx); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("bootstrap with no nodes: %v", err)
	}
	if _, err := n.Announce(ctx, randHash(), 1, false); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("announce with no nodes: %v", err)
	}
}

func TestTokenValidation(t *testing.T) {
	srv := startNode(t, testConfig())
	cli := startNode(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ih := metainfo.Hash(randHash())
	announce := func(tok string) error {
		_, err := cli.query(ctx, srv.Addr(), &message{Q: methodAnnouncePeer, InfoHash: ih, Port: 4242, Token: tok}, 1)
		return err
	}
	var kerr *Error
	if err := announce("not-a-token"); !errors.As(err, &kerr) || kerr.Code != CodeProtocol {
		t.Fatalf("bad token: got %v, want KRPC error %d", err, CodeProtocol)
	}
	r, err := cli.query(ctx, srv.Addr(), &message{Q: methodGetPeers, InfoHash: ih}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Token == "" || len(r.Values) != 0 {
		t.Fatalf("get_peers reply %+v", r)
	}
	// A token given to another IP is refused.
	other := startNode(t, Config{Addr: "127.0.5.2:0", Bootstrap: []string{}, AllowLoopback: true, QueryTimeout: time.Second})
	_, err = other.query(ctx, srv.Addr(), &message{Q: methodAnnouncePeer, InfoHash: ih, Port: 4242, Token: r.Token}, 1)
	if !errors.As(err, &kerr) || kerr.Code != CodeProtocol {
		t.Fatalf("token of another IP: got %v", err)
	}
	if err := announce(r.Token); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	r, err = cli.query(ctx, srv.Addr(), &message{Q: methodGetPeers, InfoHash: ih}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr(testIP), 4242)
	if !slices.Equal(r.Values, []netip.AddrPort{want}) {
		t.Fatalf("values %v, want [%v]", r.Values, want)
	}
	// Unknown methods get error 204.
	if _, err := cli.query(ctx, srv.Addr(), &message{Q: "vote"}, 1); !errors.As(err, &kerr) || kerr.Code != CodeMethod {
		t.Fatalf("unknown method: %v", err)
	}
	// A node refusing loopback peers rejects the announce even with a token.
	strict := startNode(t, Config{Addr: "127.0.5.3:0", Bootstrap: []string{}, QueryTimeout: time.Second})
	r, err = cli.query(ctx, strict.Addr(), &message{Q: methodGetPeers, InfoHash: ih}, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.query(ctx, strict.Addr(), &message{Q: methodAnnouncePeer, InfoHash: ih, Port: 4242, Token: r.Token}, 1)
	if !errors.As(err, &kerr) {
		t.Fatalf("loopback announce to strict node: %v", err)
	}
	if s := strict.Stats(); s.Nodes != 0 || s.Peers != 0 {
		t.Fatalf("strict node stored loopback data: %+v", s)
	}
}

func TestRateLimitDropsFlood(t *testing.T) {
	cfg := testConfig()
	cfg.MaxQPS = 20
	srv := startNode(t, cfg)
	flood, err := net.ListenPacket("udp", "127.0.5.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	ping := []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
	dst := net.UDPAddrFromAddrPort(srv.Addr())
	const sent = 2000
	start := time.Now()
	for i := range sent {
		if _, err := flood.WriteTo(ping, dst); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(time.Millisecond) // let the reader keep up: kernel drops are not what we test
		}
	}
	elapsed := time.Since(start)
	// Count replies until the socket stays quiet for a while.
	replies := 0
	buf := make([]byte, 1500)
	for {
		flood.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := flood.ReadFrom(buf); err != nil {
			break
		}
		replies++
	}
	// Burst of 2 s worth plus what refilled while sending.
	allowed := 2*20 + int(20*elapsed.Seconds()) + 1
	if replies > allowed || replies == 0 {
		t.Fatalf("%d replies to a flood of %d (allowed %d)", replies, sent, allowed)
	}
	s := srv.Stats()
	if s.Dropped < sent/2 || s.Dropped < 10*int64(replies) {
		t.Fatalf("dropped %d of %d", s.Dropped, sent)
	}
	// Another source is still served.
	other := startNode(t, Config{Addr: "127.0.5.3:0", Bootstrap: []string{}, AllowLoopback: true, QueryTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if id, err := other.Ping(ctx, srv.Addr()); err != nil || id != srv.ID() {
		t.Fatalf("ping from another source during flood: %v %v", id, err)
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "dht.state")
	var peers []*Node
	for range 12 {
		peers = append(peers, startNode(t, testConfig()))
	}
	var boot []string
	for _, p := range peers {
		boot = append(boot, p.Addr().String())
	}
	cfg := testConfig()
	cfg.StateFile = state
	cfg.Bootstrap = boot
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	before := n.Stats().Nodes
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if before < 10 {
		t.Fatalf("only %d nodes before save", before)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(state), ".*.tmp")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
	cfg.Bootstrap = []string{} // reload must not need the bootstrap list
	n2 := startNode(t, cfg)
	if n2.ID() != id {
		t.Fatalf("id %v after reload, want %v", n2.ID(), id)
	}
	if got := n2.Stats().Nodes; got != before {
		t.Fatalf("%d nodes after reload, want %d", got, before)
	}
	if err := n2.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap from reloaded table: %v", err)
	}
	// A configured id wins over the saved one; a corrupt file is ignored.
	n2.Close()
	cfg.NodeID = hashOf(9)
	n3 := startNode(t, cfg)
	if n3.ID() != hashOf(9) {
		t.Fatal("Config.NodeID ignored")
	}
	n3.Close()
	if err := os.WriteFile(state, []byte("d2:id3:abce"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.NodeID = metainfo.Hash{}
	n4 := startNode(t, cfg)
	if n4.ID().IsZero() || n4.Stats().Nodes != 0 {
		t.Fatal("corrupt state file not ignored")
	}
}

func TestPeriodicStateSave(t *testing.T) {
	state := filepath.Join(t.TempDir(), "dht.state")
	peer := startNode(t, testConfig())
	cfg := testConfig()
	cfg.StateFile = state
	cfg.StateInterval = 50 * time.Millisecond
	cfg.Bootstrap = []string{peer.Addr().String()}
	n := startNode(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for {
		id, nodes, err := loadState(state)
		if err == nil && id == n.ID() && len(nodes) == 1 && nodes[0].Addr == peer.Addr() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never saved with the peer: %v %v", nodes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRefreshDropsDeadNode(t *testing.T) {
	// Bucket refresh runs on the scaled interval; its queries find a node
	// that went silent, which turns bad and leaves the closest sets.
	cfg := testConfig()
	cfg.RefreshInterval = 200 * time.Millisecond
	cfg.QueryTimeout = 100 * time.Millisecond
	n := startNode(t, cfg)
	var live []*Node
	for range 5 {
		live = append(live, startNode(t, testConfig()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// inTable reports whether addr is among n's non-bad nodes.
	inTable := func(addr netip.AddrPort) bool {
		var present bool
		if err := n.do(ctx, func(st *loopState) {
			present = slices.ContainsFunc(st.table.closest(n.ID(), 1000, time.Now()), func(ni nodeInfo) bool { return ni.Addr == addr })
		}); err != nil {
			t.Fatal(err)
		}
		return present
	}
	// waitInTable pings addr until it is in the table. A reply reaches
	// Ping before the loop records its node (and the loop drops the
	// record when it is busy), so Ping's return alone proves nothing.
	waitInTable := func(addr netip.AddrPort) {
		for !inTable(addr) {
			if _, err := n.Ping(ctx, addr); err != nil {
				t.Fatal(err)
			}
			if !inTable(addr) {
				select {
				case <-ctx.Done():
					t.Fatalf("%v never joined the table", addr)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}
	for _, l := range live {
		waitInTable(l.Addr())
	}
	// A dead node: its socket is closed after it joins the table.
	dead := startNode(t, testConfig())
	deadAddr := dead.Addr()
	waitInTable(deadAddr)
	dead.Close()
	for inTable(deadAddr) {
		select {
		case <-ctx.Done():
			t.Fatal("dead node never dropped by refresh")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s := n.Stats(); s.Nodes < len(live) || s.Timeouts == 0 {
		t.Fatalf("after refresh: %+v", s)
	}
}

func TestCloseAndErrors(t *testing.T) {
	n := startNode(t, testConfig())
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	ctx := context.Background()
	if _, err := n.Ping(ctx, netip.MustParseAddrPort("127.0.5.1:9")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	for range n.GetPeers(ctx, randHash()) {
		t.Fatal("peers after Close")
	}
	if err := n.Bootstrap(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Bootstrap after Close: %v", err)
	}
	// A shared Conn is not closed by Close.
	c, err := net.ListenPacket("udp", testIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := testConfig()
	cfg.Conn = c
	n2 := startNode(t, cfg)
	if n2.Addr().String() != c.LocalAddr().String() {
		t.Fatalf("Addr %v, conn %v", n2.Addr(), c.LocalAddr())
	}
	n2.Close()
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatalf("shared conn closed: %v", err)
	}
}

func TestBootstrapNames(t *testing.T) {
	// Names resolve lazily, each with a timeout; unresolvable or malformed
	// entries are skipped, not fatal. No socket: nothing is sent.
	cfg := testConfig()
	// An IPv4 node skips IPv6 addresses.
	cfg.Bootstrap = []string{"localhost:6881", "no-such-host.invalid:6881", "bad", "127.0.5.9:0", "127.0.5.9:7", "[::1]:7"}
	n := &Node{cfg: cfg.withDefaults(), local: netip.MustParseAddrPort(testIP + ":1"), fam: fam4}
	n.log = n.cfg.Logger
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addrs := n.resolveBootstrap(ctx)
	slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6881"), netip.MustParseAddrPort("127.0.5.9:7")}
	if !slices.Equal(addrs, want) {
		t.Fatalf("resolved %v, want %v", addrs, want)
	}
}

func TestFullBucketReplacesDeadNode(t *testing.T) {
	self := randHash()
	cfg := testConfig()
	cfg.NodeID = self
	cfg.RefreshInterval = 300 * time.Millisecond // nodes turn questionable fast
	cfg.QueryTimeout = 100 * time.Millisecond
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	withID := func(id metainfo.Hash) *Node {
		c := testConfig()
		c.NodeID = id
		return startNode(t, c)
	}
	// One near node, then K far ones: bucket 0 (far half) is full and can
	// no longer split.
	if _, err := n.Ping(ctx, withID(idWithPrefix(self, 6)).Addr()); err != nil {
		t.Fatal(err)
	}
	var far []*Node
	for range K {
		f := withID(idWithPrefix(self, 0))
		far = append(far, f)
		if _, err := n.Ping(ctx, f.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	deadAddr := far[3].Addr()
	far[3].Close()
	newcomer := withID(idWithPrefix(self, 0))
	time.Sleep(cfg.RefreshInterval) // every node is now questionable
	for {
		// The newcomer keeps contacting n, as a real node would.
		if _, err := newcomer.Ping(ctx, n.Addr()); err != nil {
			t.Fatal(err)
		}
		var hasNew, hasDead bool
		n.do(ctx, func(st *loopState) {
			for _, e := range st.table.buckets[0].nodes {
				hasNew = hasNew || e.addr == newcomer.Addr()
				hasDead = hasDead || e.addr == deadAddr
			}
		})
		if hasNew && !hasDead {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("dead node not replaced: newcomer in table %v, dead in table %v", hasNew, hasDead)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The live far nodes answered their pings and stayed.
	var kept int
	n.do(ctx, func(st *loopState) {
		for _, e := range st.table.buckets[0].nodes {
			for _, f := range far {
				if e.addr == f.Addr() && f.Addr() != deadAddr {
					kept++
				}
			}
		}
	})
	if kept != K-1 {
		t.Fatalf("%d live nodes kept, want %d", kept, K-1)
	}
}

func BenchmarkParseMessage(b *testing.B) {
	var nodes strings.Builder
	for i := range K {
		nodes.WriteString(h20(byte(i)))
		nodes.WriteString("\x01\x02\x03\x04\x1a\xe1")
	}
	msg := []byte("d1:rd2:id20:" + h20('a') + "5:nodes208:" + nodes.String() + "5:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re")
	b.Run("parseMessage", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseMessage(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Reference: the generic bencode decoder on the same bytes.
	b.Run("metainfo.Decode", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := metainfo.Decode(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestQueryRetryAndDeadline(t *testing.T) {
	// A socket that never answers.
	silent, err := net.ListenPacket("udp", testIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentAddr := addrPortOf(silent.LocalAddr())
	cfg := testConfig()
	cfg.QueryTimeout = 100 * time.Millisecond
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.Ping(ctx, silentAddr); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ping to a silent node: %v", err)
	}
	if s := n.Stats(); s.QueriesOut != 2 || s.Timeouts != 2 {
		t.Fatalf("one retry expected: %d sent, %d timeouts", s.QueriesOut, s.Timeouts)
	}
	// A lookup through silent nodes ends at the caller's deadline even
	// though each query would wait longer.
	cfg = testConfig()
	cfg.QueryTimeout = time.Hour
	cfg.Bootstrap = []string{silentAddr.String()}
	slow := startNode(t, cfg)
	lctx, lcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer lcancel()
	for range slow.GetPeers(lctx, randHash()) {
		t.Fatal("peers from a silent node")
	}
	if lctx.Err() == nil {
		t.Fatal("lookup ended before its deadline with a query outstanding")
	}
	if _, err := slow.Announce(lctx, randHash(), 1, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("announce after deadline: %v", err)
	}
}

func TestReadOnlyQuerierNotAdded(t *testing.T) {
	srv := startNode(t, testConfig())
	cli := startNode(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.query(ctx, srv.Addr(), &message{Q: methodPing, ReadOnly: true}, 1); err != nil {
		t.Fatal(err)
	}
	if s := srv.Stats(); s.Nodes != 0 || s.QueriesIn != 1 {
		t.Fatalf("read-only querier: %+v", s)
	}
	if _, err := cli.Ping(ctx, srv.Addr()); err != nil {
		t.Fatal(err)
	}
	if s := srv.Stats(); s.Nodes != 1 {
		t.Fatalf("querier not added: %+v", s)
	}
	if s := cli.Stats(); s.Nodes != 1 || s.GoodNodes != 1 {
		t.Fatalf("answering node not good in the querier's table: %+v", s)
	}
}
