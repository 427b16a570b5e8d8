package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// testConfig6 is testConfig for an IPv6 node on [::1].
func testConfig6() Config {
	cfg := testConfig()
	cfg.Addr = "[::1]:0"
	cfg.Network = "udp6"
	return cfg
}

func requireIPv6(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
}

func startClient(t *testing.T, c4, c6 *Config) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{IPv4: c4, IPv6: c6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seed puts count made-up nodes of addr's family into n's table, with
// ports from port on.
func seed(t *testing.T, n *Node, ip string, port, count int) []netip.AddrPort {
	t.Helper()
	var addrs []netip.AddrPort
	err := n.do(t.Context(), func(st *loopState) {
		for i := range count {
			a := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port+i))
			st.table.seen(randHash(), a, true, time.Now())
			addrs = append(addrs, a)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

func addrsOf(ns []nodeInfo) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range ns {
		out = append(out, n.Addr)
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

// TestWantAnswers: each node of a Client answers find_node and get_peers
// with its own family by default and with the families a BEP 32 "want"
// asks for, the other one from its sibling's table.
func TestWantAnswers(t *testing.T) {
	requireIPv6(t)
	c6 := testConfig6()
	c := startClient(t, &Config{Addr: "127.0.5.40:0", Bootstrap: []string{}, AllowLoopback: true, QueryTimeout: time.Second}, &c6)
	if c.Node4().ID() != c.Node6().ID() {
		t.Error("the two nodes have different ids")
	}
	want4 := seed(t, c.Node4(), "127.0.5.41", 1000, 3)
	want6 := seed(t, c.Node6(), "::1", 2000, 3)
	q4 := startNode(t, Config{Addr: "127.0.5.42:0", Bootstrap: []string{}, AllowLoopback: true, QueryTimeout: time.Second})
	q6 := startNode(t, testConfig6())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	both := wantGiven | wantN4 | wantN6
	tests := []struct {
		from, to      *Node
		method        string
		want          wants
		nodes, nodes6 []netip.AddrPort
	}{
		{q4, c.Node4(), methodFindNode, 0, want4, nil},
		{q4, c.Node4(), methodFindNode, both, want4, want6},
		{q4, c.Node4(), methodGetPeers, wantGiven | wantN6, nil, want6},
		{q4, c.Node4(), methodGetPeers, wantGiven, nil, nil},
		{q6, c.Node6(), methodFindNode, 0, nil, want6},
		{q6, c.Node6(), methodGetPeers, both, want4, want6},
		{q6, c.Node6(), methodFindNode, wantGiven | wantN4, want4, nil},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s to %v want %b", tt.method, tt.to.Addr(), tt.want)
		// Read-only queries (BEP 43) keep the queriers out of the tables.
		q := &message{Q: tt.method, Target: randHash(), InfoHash: randHash(), Want: tt.want, ReadOnly: true}
		r, err := tt.from.query(ctx, tt.to.Addr(), q, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := addrsOf(r.Nodes); !slices.Equal(got, tt.nodes) {
			t.Errorf("%s: nodes %v, want %v", name, got, tt.nodes)
		}
		if got := addrsOf(r.Nodes6); !slices.Equal(got, tt.nodes6) {
			t.Errorf("%s: nodes6 %v, want %v", name, got, tt.nodes6)
		}
		if tt.method == methodGetPeers && r.Token == "" {
			t.Errorf("%s: no token", name)
		}
	}
	// A lone node cannot answer for the family it lacks.
	r, err := q4.query(ctx, q6.Addr(), &message{Q: methodFindNode, Target: randHash(), Want: both}, 1)
	if err == nil {
		t.Fatalf("an IPv4 node reached an IPv6 one: %+v", r)
	}
	r, err = q6.query(ctx, c.Node6().Addr(), &message{Q: methodFindNode, Target: randHash(), Want: both, ReadOnly: true}, 1)
	if err != nil || len(r.Nodes) != 3 {
		t.Fatalf("sibling answer: %+v %v", r, err)
	}
}

// TestIPv6OnlyDHT: a DHT of IPv6 nodes on [::1] only: they bootstrap,
// announce, and find each other's 18-byte peer values.
func TestIPv6OnlyDHT(t *testing.T) {
	requireIPv6(t)
	const size = 10
	nodes := make([]*Node, size)
	nodes[0] = startNode(t, testConfig6())
	for i := 1; i < size; i++ {
		cfg := testConfig6()
		cfg.Bootstrap = []string{nodes[0].Addr().String(), "127.0.0.1:1"} // the IPv4 one is skipped
		nodes[i] = startNode(t, cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, size)
		for i := 1; i < size; i++ {
			wg.Go(func() { errs[i] = nodes[i].Bootstrap(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: node %d: %v", round, i, err)
			}
		}
	}
	for i, n := range nodes {
		if s := n.Stats(); s.Nodes < K {
			t.Fatalf("node %d knows %d nodes", i, s.Nodes)
		}
		if n.fam != fam6 {
			t.Fatalf("node %d family %v", i, n.fam)
		}
	}
	ih := metainfo.Hash(randHash())
	if _, err := nodes[3].Announce(ctx, ih, 7007, false); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("[::1]:7007")
	found := false
	for batch := range nodes[8].GetPeers(ctx, ih) {
		found = found || slices.Contains(batch, want)
	}
	if !found {
		t.Fatalf("announce of %v not found", want)
	}
}

// TestClientJoinsIPv6ThroughIPv4: an IPv6 DHT (three lone IPv6 nodes and
// the IPv6 node of a dual-stack hub) and dual-stack clients that know only
// the hub's IPv4 address: the clients fill their IPv6 tables through
// "want" (nodes6 in IPv4 answers, from the hub's sibling table), join the
// IPv6 DHT, then one announces over both families and another's merged
// GetPeers finds it at its IPv4 and its IPv6 address.
func TestClientJoinsIPv6ThroughIPv4(t *testing.T) {
	requireIPv6(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	mesh := make([]*Node, 3)
	for i := range mesh {
		cfg := testConfig6()
		if i > 0 {
			cfg.Bootstrap = []string{mesh[0].Addr().String()}
		}
		mesh[i] = startNode(t, cfg)
	}
	for _, n := range mesh[1:] {
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const size = 6
	clients := make([]*Client, size)
	for i := range size {
		c4 := testConfig()
		c4.Addr = fmt.Sprintf("127.0.5.%d:0", 50+i)
		c6 := testConfig6()
		if i == 0 {
			c6.Bootstrap = []string{mesh[0].Addr().String()}
		} else {
			c4.Bootstrap = []string{clients[0].Node4().Addr().String()}
			c6.Bootstrap = c4.Bootstrap // not of its family: no use to it
		}
		clients[i] = startClient(t, &c4, &c6)
	}
	if err := clients[0].Node6().Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[1:] {
		if err := c.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The IPv6 tables fill from the nodes6 of IPv4 answers.
	for i, c := range clients {
		for c.Node6().Stats().Nodes < 2 {
			if ctx.Err() != nil {
				t.Fatalf("client %d: IPv6 table %+v, IPv4 table %+v", i, c.Node6().Stats(), c.Node4().Stats())
			}
			// Lookups ask for nodes6 while the IPv6 table is small.
			c.Node4().Bootstrap(ctx)
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, c := range clients[1:] {
		if err := c.Node6().Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ih := metainfo.Hash(randHash())
	a, b := clients[2], clients[4]
	if _, err := a.Announce(ctx, ih, 7008, false); err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.AddrPortFrom(a.Node4().Addr().Addr(), 7008),
		netip.MustParseAddrPort("[::1]:7008"),
	}
	var got []netip.AddrPort
	for batch := range b.GetPeers(ctx, ih) {
		got = append(got, batch...)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("merged get_peers found %v, want %v", got, want)
		}
	}
	if len(got) != len(want) {
		t.Errorf("duplicates or strangers in %v", got)
	}
}

// TestClientIPv6Optional: an IPv6 node that cannot open its socket (here an
// address the host does not have) fails NewClient, unless IPv6Optional:
// then the client runs its IPv4 node alone.
func TestClientIPv6Optional(t *testing.T) {
	c4 := testConfig()
	c6 := testConfig6()
	c6.Addr = "[2001:db8::5]:0"
	if _, err := NewClient(ClientConfig{IPv4: &c4, IPv6: &c6}); err == nil {
		t.Fatal("client started without its IPv6 node")
	}
	c, err := NewClient(ClientConfig{IPv4: &c4, IPv6: &c6, IPv6Optional: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Node6() != nil || c.Node4() == nil || len(c.Addrs()) != 1 || c.Addr() != c.Node4().Addr() {
		t.Fatalf("nodes %v %v, addrs %v", c.Node4(), c.Node6(), c.Addrs())
	}
	// A PORT message naming an IPv6 node has nowhere to go, and no panic.
	c.AddNode(netip.MustParseAddrPort("[::1]:1"))
	if _, err := NewClient(ClientConfig{}); err == nil {
		t.Fatal("client without nodes")
	}
}
