package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// Debian's opentracker is built for IPv4 only ("-i ::1" exits with "V4
// Tracker is V4 only!"), so the IPv6 side of BEP 7 and BEP 15 is tested
// against bep7Tracker: a small tracker in the test that keeps a real swarm
// (peers by peer id, with the source address of their announces and the
// address of the other family they name with "ipv4="/"ipv6="), answers
// HTTP with "peers" and "peers6" and UDP with 6- or 18-byte entries by the
// family of its socket, as BEP 7 and BEP 15 say.
type bep7Tracker struct {
	mu    sync.Mutex
	peers map[string]*bep7Peer // by peer id
	gets  []url.Values         // every HTTP query, in order
}

type bep7Peer struct {
	addrs []netip.AddrPort
	seed  bool
}

// record applies one announce and returns the answer's peers of other
// peer ids, IPv4 and IPv6 apart, and the seeder and leecher counts.
func (tr *bep7Tracker) record(peerID string, addrs []netip.AddrPort, left int64, event Event) (v4, v6 []netip.AddrPort, seeds, leechers int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.peers == nil {
		tr.peers = map[string]*bep7Peer{}
	}
	if event == EventStopped {
		delete(tr.peers, peerID)
	} else {
		tr.peers[peerID] = &bep7Peer{addrs: addrs, seed: left == 0}
	}
	for id, p := range tr.peers {
		if p.seed {
			seeds++
		} else {
			leechers++
		}
		if id == peerID {
			continue
		}
		for _, a := range p.addrs {
			if a.Addr().Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
	}
	return v4, v6, seeds, leechers
}

func compact(addrs []netip.AddrPort) string {
	var b []byte
	for _, a := range addrs {
		b = append(b, a.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, a.Port())
	}
	return string(b)
}

// serveHTTP serves BEP 3/7 announces on l.
func (tr *bep7Tracker) serveHTTP(t *testing.T, l net.Listener) string {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tr.mu.Lock()
		tr.gets = append(tr.gets, q)
		tr.mu.Unlock()
		src, err := netip.ParseAddrPort(r.RemoteAddr)
		port, perr := strconv.ParseUint(q.Get("port"), 10, 16)
		left, lerr := strconv.ParseInt(q.Get("left"), 10, 64)
		if err != nil || perr != nil || lerr != nil || len(q.Get("peer_id")) != 20 {
			fmt.Fprint(w, "d14:failure reason11:bad requeste")
			return
		}
		addrs := []netip.AddrPort{netip.AddrPortFrom(src.Addr().Unmap(), uint16(port))}
		for _, key := range []string{"ipv4", "ipv6"} {
			if a, err := netip.ParseAddr(q.Get(key)); err == nil && a.Is4() != src.Addr().Unmap().Is4() {
				addrs = append(addrs, netip.AddrPortFrom(a, uint16(port)))
			}
		}
		ev := map[string]Event{"started": EventStarted, "stopped": EventStopped, "completed": EventCompleted}[q.Get("event")]
		v4, v6, seeds, leechers := tr.record(q.Get("peer_id"), addrs, left, ev)
		b, _ := metainfo.Marshal(map[string]any{"interval": int64(60), "complete": int64(seeds),
			"incomplete": int64(leechers), "peers": compact(v4), "peers6": compact(v6)})
		w.Write(b)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/announce"
}

// serveUDP serves BEP 15 on conn; peers are those of the socket's family.
func (tr *bep7Tracker) serveUDP(t *testing.T, conn *net.UDPConn) string {
	v6 := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Is6()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			if len(p) < 16 {
				continue
			}
			txid := p[12:16]
			switch binary.BigEndian.Uint32(p[8:]) {
			case actionConnect:
				conn.WriteToUDPAddrPort(binary.BigEndian.AppendUint64(hdr(actionConnect, txid), 42), from)
			case actionAnnounce:
				if len(p) < udpAnnounceLen || binary.BigEndian.Uint64(p) != 42 {
					continue
				}
				addr := netip.AddrPortFrom(from.Addr().Unmap(), binary.BigEndian.Uint16(p[96:]))
				left := int64(binary.BigEndian.Uint64(p[64:]))
				peers4, peers6, seeds, leechers := tr.record(string(p[36:56]), []netip.AddrPort{addr}, left, Event(binary.BigEndian.Uint32(p[80:])))
				out := hdr(actionAnnounce, txid)
				out = binary.BigEndian.AppendUint32(out, 60)
				out = binary.BigEndian.AppendUint32(out, uint32(leechers))
				out = binary.BigEndian.AppendUint32(out, uint32(seeds))
				if v6 {
					out = append(out, compact(peers6)...)
				} else {
					out = append(out, compact(peers4)...)
				}
				conn.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return "udp://" + conn.LocalAddr().String() + "/announce"
}

func listenOrSkip(t *testing.T, network, addr string) any {
	t.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		return l
	default:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		return c
	}
}

// TestIPv6TrackerSwarm: two peers announce over IPv6 ([::1]) to an HTTP and
// a UDP tracker and learn each other's IPv6 address from "peers6" and from
// 18-byte UDP entries; "stopped" takes a peer out.
func TestIPv6TrackerSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	peerA := AnnounceRequest{Port: 7001, Left: 1000, Event: EventStarted, NumWant: 50, Key: 1, Family: FamilyIPv6}
	copy(peerA.PeerID[:], "-SF0001-aaaaaaaaaaaa")
	peerB := AnnounceRequest{Port: 7002, Left: 0, Event: EventStarted, NumWant: 50, Key: 2, Family: FamilyIPv6}
	copy(peerB.PeerID[:], "-SF0001-bbbbbbbbbbbb")
	hash := [20]byte{0x66}
	t.Run("http", func(t *testing.T) {
		var tr bep7Tracker
		u := tr.serveHTTP(t, listenOrSkip(t, "tcp", "[::1]:0").(net.Listener))
		a, b := NewClient(Config{}), NewClient(Config{})
		defer a.Close()
		defer b.Close()
		seeEachOther(ctx, t, u, hash, a, b, peerA, peerB, "::1", "::1")
	})
	t.Run("udp", func(t *testing.T) {
		var tr bep7Tracker
		u := tr.serveUDP(t, listenOrSkip(t, "udp", "[::1]:0").(*net.UDPConn))
		a := NewClient(Config{UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
		b := NewClient(Config{UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
		defer a.Close()
		defer b.Close()
		seeEachOther(ctx, t, u, hash, a, b, peerA, peerB, "::1", "::1")
	})
}

// TestBEP7OtherFamilyAddress: a peer announcing over IPv6 names its IPv4
// address with "ipv4=" (and one announcing over IPv4 its IPv6 address with
// "ipv6="); the other peer gets both addresses, in "peers" and "peers6".
func TestBEP7OtherFamilyAddress(t *testing.T) {
	var tr bep7Tracker
	u6 := tr.serveHTTP(t, listenOrSkip(t, "tcp", "[::1]:0").(net.Listener))
	l4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u4 := tr.serveHTTP(t, l4)
	c := NewClient(Config{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a := AnnounceRequest{InfoHash: [20]byte{7}, Port: 7001, Left: 1, Family: FamilyIPv6,
		IPv4: netip.MustParseAddr("127.0.4.1"), IPv6: netip.MustParseAddr("::1")}
	copy(a.PeerID[:], "-SF0001-aaaaaaaaaaaa")
	if _, err := c.Announce(ctx, u6, a); err != nil {
		t.Fatal(err)
	}
	b := AnnounceRequest{InfoHash: a.InfoHash, Port: 7002, Left: 1, Family: FamilyIPv4,
		IPv6: netip.MustParseAddr("2001:db8::b"), IPv4: netip.MustParseAddr("::ffff:127.0.4.1")}
	copy(b.PeerID[:], "-SF0001-bbbbbbbbbbbb")
	r, err := c.Announce(ctx, u4, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{ap("127.0.4.1:7001"), ap("[::1]:7001")}
	if !slices.Equal(r.Peers, want) {
		t.Fatalf("B got %v, want A's two addresses %v", r.Peers, want)
	}
	// A learns B's IPv6 address, which B could only name with "ipv6=".
	a.Event = EventNone
	r, err = c.Announce(ctx, u6, a)
	if err != nil {
		t.Fatal(err)
	}
	want = []netip.AddrPort{ap("127.0.0.1:7002"), ap("[2001:db8::b]:7002")}
	if !slices.Equal(r.Peers, want) {
		t.Fatalf("A got %v, want B's two addresses %v", r.Peers, want)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if got := tr.gets[0].Get("ipv4") + " " + tr.gets[0].Get("ipv6"); got != "127.0.4.1 ::1" {
		t.Errorf("A's first announce: ipv4/ipv6 = %q", got)
	}
	if got := tr.gets[1].Get("ipv4") + " " + tr.gets[1].Get("ipv6"); got != "127.0.4.1 2001:db8::b" {
		t.Errorf("B's announce: ipv4/ipv6 = %q", got)
	}
}

// TestAnnounceFamily: an announce over one family never uses a tracker
// address of the other, whether the URL holds an address or a name
// ("localhost" has only 127.0.0.1 here), over HTTP and UDP.
func TestAnnounceFamily(t *testing.T) {
	var tr bep7Tracker
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := tr.serveHTTP(t, l)
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	uu := tr.serveUDP(t, uc)
	byName := func(s string) string { return strings.Replace(s, "127.0.0.1", "localhost", 1) }
	if ips, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip6", "localhost"); err == nil {
		t.Skipf("localhost has IPv6 addresses %v here", ips)
	}
	c := NewClient(Config{UDPRetryBase: 2 * time.Second, UDPMaxRetries: 1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req := AnnounceRequest{InfoHash: [20]byte{8}, Port: 7001, Left: 1}
	copy(req.PeerID[:], "-SF0001-aaaaaaaaaaaa")
	for _, target := range []string{u, byName(u), uu, byName(uu)} {
		for _, f := range []Family{FamilyAny, FamilyIPv4, FamilyIPv6} {
			req.Family = f
			_, err := c.Announce(ctx, target, req)
			switch {
			case f == FamilyIPv6 && err == nil:
				t.Errorf("%s over %s: reached an IPv4 tracker", target, f)
			case f == FamilyIPv6 && strings.HasPrefix(target, "udp") && !errors.Is(err, ErrNoAddress):
				t.Errorf("%s over %s: %v, want ErrNoAddress", target, f, err)
			case f == FamilyIPv6 && target == u && !errors.Is(err, ErrNoAddress):
				t.Errorf("%s over %s: %v, want ErrNoAddress", target, f, err)
			case f != FamilyIPv6 && err != nil:
				t.Errorf("%s over %s: %v", target, f, err)
			}
		}
	}
}

// ltIPv6Seeder is a libtorrent session that listens on [::1] only and
// seeds torrent from dir; it prints "listening PORT" and then "state S"
// lines.
const ltIPv6Seeder = `
import sys, time, libtorrent as lt
ses = lt.session({"listen_interfaces": "[::1]:0", "outgoing_interfaces": "::1",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False})
h = ses.add_torrent({"ti": lt.torrent_info(sys.argv[1]), "save_path": sys.argv[2]})
print("listening", ses.listen_port(), flush=True)
last = None
deadline = time.time() + 120
while time.time() < deadline:
    s = str(h.status().state)
    if s != last:
        print("state", s, flush=True)
        last = s
    time.sleep(0.05)
`

// TestIPv6LibtorrentViaTracker: an IPv6-only libtorrent seeder announces
// to our test trackers on [::1] (HTTP and UDP); our client, announcing over
// IPv6, gets its address from "peers6" and from 18-byte UDP entries.
func TestIPv6LibtorrentViaTracker(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	var tr bep7Tracker
	httpURL := tr.serveHTTP(t, listenOrSkip(t, "tcp", "[::1]:0").(net.Listener))
	udpURL := tr.serveUDP(t, listenOrSkip(t, "udp", "[::1]:0").(*net.UDPConn))
	c := enginetest.MakeContent(t, "v6.bin", 16384, []enginetest.FileSpec{{Size: 50000}}, httpURL, udpURL)
	lt := enginetest.Start(t, enginetest.Python, "-c", ltIPv6Seeder, c.Torrent, c.Dir)
	port, err := strconv.Atoi(lt.WaitLine(t, "listening ", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(port))
	client := NewClient(Config{UDPRetryBase: time.Second, UDPMaxRetries: 2})
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for _, u := range []string{httpURL, udpURL} {
		req := AnnounceRequest{InfoHash: [20]byte(c.Meta.InfoHash), Port: 7001, Left: 1, NumWant: 50, Family: FamilyIPv6}
		copy(req.PeerID[:], "-SF0001-v6v6v6v6v6v6")
		for {
			r, err := client.Announce(ctx, u, req)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if slices.Contains(r.Peers, want) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never gave libtorrent's %v; last peers %v; libtorrent:\n%s", u, want, r.Peers, lt.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestAnnouncerFamily: an Announcer configured for IPv6 announces over
// IPv6 and names its IPv4 address with "ipv4=", so that the tracker knows
// both.
func TestAnnouncerFamily(t *testing.T) {
	var tr bep7Tracker
	u := tr.serveHTTP(t, listenOrSkip(t, "tcp", "[::1]:0").(net.Listener))
	c := NewClient(Config{})
	defer c.Close()
	cfg := AnnouncerConfig{InfoHash: [20]byte{9}, Port: 7009, Family: FamilyIPv6, IPv4: netip.MustParseAddr("192.0.2.7")}
	copy(cfg.PeerID[:], "-SF0001-announcer-6-")
	a := NewAnnouncer(c, [][]string{{u}}, cfg, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for a.Status().Announces == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	gets, stillIn := tr.gets, tr.peers["-SF0001-announcer-6-"]
	tr.mu.Unlock()
	if len(gets) == 0 || gets[0].Get("ipv4") != "192.0.2.7" {
		t.Fatalf("queries %v", gets)
	}
	if stillIn != nil {
		t.Fatalf("still in the swarm after stopped: %+v", stillIn)
	}
	// The same tracker is out of reach for an IPv4 announcer.
	cfg.Family = FamilyIPv4
	a4 := NewAnnouncer(c, [][]string{{u}}, cfg, nil)
	ctx4, cancel4 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel4()
	go func() { done <- a4.Run(ctx4) }()
	for a4.Status().Failures == 0 && ctx4.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel4()
	<-done
	if err := a4.LastError(); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("IPv4 announcer to an IPv6 tracker: %v", err)
	}
}
