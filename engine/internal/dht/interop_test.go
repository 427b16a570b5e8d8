package dht

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// The libtorrent reference: Debian's python3-libtorrent under /usr/bin/python3
// (the python3 first on PATH may lack the module).
const ltPython = "/usr/bin/python3"

// ltEvent is one JSON line from testdata/ltdht.py.
type ltEvent struct {
	Event string   `json:"event"`
	I     int      `json:"i"`
	N     int      `json:"n"`
	IH    string   `json:"ih"`
	Peer  string   `json:"peer"`
	Peers []string `json:"peers"`
}

// ltDHT is a python process hosting libtorrent DHT sessions.
type ltDHT struct {
	t      *testing.T
	stdin  io.WriteCloser
	events chan ltEvent
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (l *ltDHT) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stderr.Write(p)
}

func requireLibtorrent(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ltPython); err != nil {
		t.Skip("python3 missing: install the Debian package python3-libtorrent")
	}
	if err := exec.Command(ltPython, "-c", "import libtorrent").Run(); err != nil {
		t.Skip("libtorrent python module missing: install the Debian package python3-libtorrent")
	}
}

// startLibtorrentDHT starts one libtorrent DHT session per address, each
// knowing the others, and waits until the first knows them all.
func startLibtorrentDHT(t *testing.T, addrs ...string) *ltDHT {
	t.Helper()
	requireLibtorrent(t)
	l := &ltDHT{t: t, events: make(chan ltEvent, 256)}
	cmd := exec.Command(ltPython, append([]string{"testdata/ltdht.py", t.TempDir()}, addrs...)...)
	cmd.Stderr = l
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev ltEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			select {
			case l.events <- ev:
			default: // nobody is waiting for this kind of event
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		select {
		case <-readerDone:
		case <-time.After(10 * time.Second):
			t.Error("libtorrent helper output not closed")
		}
		cmd.Wait()
		if t.Failed() {
			l.mu.Lock()
			t.Logf("libtorrent helper stderr:\n%s", l.stderr.String())
			l.mu.Unlock()
		}
	})
	l.wait(30*time.Second, "ready", func(ltEvent) bool { return true })
	// Wait until session 0 has the others in its routing table.
	deadline := time.Now().Add(60 * time.Second)
	for {
		l.send("nodes 0")
		ev := l.wait(10*time.Second, "nodes count", func(ev ltEvent) bool { return ev.Event == "nodes" })
		if ev.N >= len(addrs)-1 {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent node 0 knows %d nodes after 60 s", ev.N)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *ltDHT) send(format string, args ...any) {
	if _, err := fmt.Fprintf(l.stdin, format+"\n", args...); err != nil {
		l.t.Fatalf("libtorrent helper: %v", err)
	}
}

// wait returns the first event matching ok within timeout, or fails the test.
func (l *ltDHT) wait(timeout time.Duration, what string, ok func(ltEvent) bool) ltEvent {
	l.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-l.events:
			if ok(ev) {
				return ev
			}
		case <-timer.C:
			l.t.Fatalf("libtorrent: no %s within %v", what, timeout)
		}
	}
}

// tryWait is wait that reports false instead of failing.
func (l *ltDHT) tryWait(timeout time.Duration, ok func(ltEvent) bool) (ltEvent, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-l.events:
			if ok(ev) {
				return ev, true
			}
		case <-timer.C:
			return ltEvent{}, false
		}
	}
}

// TestInteropFindLibtorrentPeer: a libtorrent session announces an info
// hash; our node, bootstrapped from another libtorrent node, finds it.
func TestInteropFindLibtorrentPeer(t *testing.T) {
	lt := startLibtorrentDHT(t, "127.0.5.20:16881", "127.0.5.21:16881", "127.0.5.22:16881")
	cfg := testConfig()
	cfg.Bootstrap = []string{"127.0.5.21:16881"}
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ih := metainfo.Hash(randHash())
	lt.send("add_torrent 0 %s", ih)
	lt.wait(60*time.Second, "announce stored by a libtorrent node", func(ev ltEvent) bool {
		return ev.Event == "incoming_announce" && ev.IH == ih.String() && ev.I != 0
	})
	want := netip.MustParseAddrPort("127.0.5.20:16881")
	for {
		for batch := range n.GetPeers(ctx, ih) {
			if slices.Contains(batch, want) {
				s := n.Stats()
				t.Logf("found libtorrent peer %v; our node: %d nodes, %d queries out, %d in", want, s.Nodes, s.QueriesOut, s.QueriesIn)
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("libtorrent's announce of %s never found; stats %+v", ih, n.Stats())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestInteropLibtorrentFindsUs: our node announces; a libtorrent session
// finds our address with dht_get_peers.
func TestInteropLibtorrentFindsUs(t *testing.T) {
	lt := startLibtorrentDHT(t, "127.0.5.23:16881", "127.0.5.24:16881", "127.0.5.25:16881")
	cfg := testConfig()
	cfg.Bootstrap = []string{"127.0.5.24:16881"}
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ih := metainfo.Hash(randHash())
	const port = 7777
	want := netip.AddrPortFrom(netip.MustParseAddr(testIP), port).String()
	if _, err := n.Announce(ctx, ih, port, false); err != nil {
		t.Fatal(err)
	}
	lt.wait(30*time.Second, "our announce arriving at libtorrent", func(ev ltEvent) bool {
		return ev.Event == "incoming_announce" && ev.IH == ih.String() && ev.Peer == want
	})
	for ctx.Err() == nil {
		lt.send("get_peers 2 %s", ih)
		ev, ok := lt.tryWait(5*time.Second, func(ev ltEvent) bool {
			return ev.Event == "peers" && ev.IH == ih.String() && slices.Contains(ev.Peers, want)
		})
		if ok {
			t.Logf("libtorrent found us: %v", ev.Peers)
			return
		}
	}
	t.Fatalf("libtorrent never found our announce %s at %s", ih, want)
}

// freePort6 returns a port that was free for TCP and UDP on [::1] a moment
// ago (libtorrent listens on both).
func freePort6(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenPacket("udp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free port on [::1]")
	return 0
}

// TestInteropIPv6: libtorrent sessions listening only on [::1] (so their
// DHT is IPv6 only) and our dual-stack Client whose IPv6 node bootstraps
// from one of them: our merged get_peers finds the libtorrent session that
// announced a torrent, and libtorrent finds our IPv6 announce.
func TestInteropIPv6(t *testing.T) {
	requireLibtorrent(t)
	var addrs []string
	for range 3 {
		addrs = append(addrs, fmt.Sprintf("[::1]:%d", freePort6(t)))
	}
	lt := startLibtorrentDHT(t, addrs...)
	c4 := testConfig()
	c6 := testConfig6()
	c6.Bootstrap = []string{addrs[1]}
	c := startClient(t, &c4, &c6)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	ih := metainfo.Hash(randHash())
	lt.send("add_torrent 0 %s", ih)
	lt.wait(60*time.Second, "announce stored by a libtorrent node", func(ev ltEvent) bool {
		return ev.Event == "incoming_announce" && ev.IH == ih.String() && ev.I != 0
	})
	want := netip.MustParseAddrPort(addrs[0])
	for found := false; !found; {
		for batch := range c.GetPeers(ctx, ih) {
			found = found || slices.Contains(batch, want)
		}
		if ctx.Err() != nil {
			t.Fatalf("libtorrent's IPv6 announce of %s never found; IPv6 node %+v", ih, c.Node6().Stats())
		}
		if !found {
			time.Sleep(500 * time.Millisecond)
		}
	}
	// The other way: libtorrent finds our announce over IPv6.
	ih2 := metainfo.Hash(randHash())
	const port = 7779
	if _, err := c.Announce(ctx, ih2, port, false); err != nil {
		t.Fatal(err)
	}
	ours := netip.AddrPortFrom(netip.MustParseAddr("::1"), port).String()
	for ctx.Err() == nil {
		lt.send("get_peers 2 %s", ih2)
		if _, ok := lt.tryWait(5*time.Second, func(ev ltEvent) bool {
			return ev.Event == "peers" && ev.IH == ih2.String() && slices.Contains(ev.Peers, ours)
		}); ok {
			return
		}
	}
	t.Fatalf("libtorrent never found our IPv6 announce %s at %s", ih2, ours)
}
