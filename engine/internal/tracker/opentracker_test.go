package tracker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// opentracker runs the real opentracker on 127.0.4.1 for the test.
//
// What works on this machine (Debian's opentracker, run as root): it binds
// its sockets, chroots to -d DIR and then drops privileges to "nobody"
// before it reads the whitelist, so DIR must be searchable and wl.txt
// readable by others (t.TempDir makes 0700 directories: chmod 0755/0644).
// The whitelist path is given relative to the chroot ("-w /wl.txt"); hashes
// not on it are answered with "Requested download is not authorized for use
// with this tracker." The announcing peer's address is the packet's source
// address, so each fake peer uses its own loopback source address.
type opentracker struct {
	httpURL, udpURL string
}

func startOpentracker(t *testing.T, hashes ...[20]byte) *opentracker {
	t.Helper()
	bin, err := exec.LookPath("opentracker")
	if err != nil {
		t.Skip("opentracker not installed (Debian package opentracker)")
	}
	dir := t.TempDir()
	var wl bytes.Buffer
	for _, h := range hashes {
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "wl.txt"), wl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tcpPort, udpPort := freePort(t, "tcp"), freePort(t, "udp")
	cmd := exec.Command(bin, "-i", "127.0.4.1", "-p", strconv.Itoa(tcpPort), "-P", strconv.Itoa(udpPort),
		"-d", dir, "-w", "/wl.txt")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("opentracker pid %d did not exit after kill", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("opentracker output:\n%s", out.String())
		}
	})
	// Wait for the TCP port; the UDP socket is bound before it.
	addr := net.JoinHostPort("127.0.4.1", strconv.Itoa(tcpPort))
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("opentracker exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker not listening on %s after 10 s: %v", addr, err)
		}
	}
	ot := &opentracker{
		httpURL: "http://" + addr + "/announce",
		udpURL:  "udp://127.0.4.1:" + strconv.Itoa(udpPort) + "/announce",
	}
	// opentracker loads the whitelist in a thread of its own after it
	// starts serving; until then every hash is refused. Probe with a
	// regular announce ("stopped" ones pass before the list is loaded),
	// then take the probe out of the swarm again.
	c := NewClient(Config{Timeout: time.Second})
	defer c.Close()
	for {
		probe := AnnounceRequest{InfoHash: hashes[0], Port: 1}
		_, err := c.Announce(t.Context(), ot.httpURL, probe)
		if err == nil {
			probe.Event = EventStopped
			if _, err := c.Announce(t.Context(), ot.httpURL, probe); err != nil {
				t.Fatalf("removing the whitelist probe: %v", err)
			}
			return ot
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker whitelist not loaded after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a port that was free on 127.0.4.1 a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "tcp" {
		l, err := net.Listen("tcp", "127.0.4.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	c, err := net.ListenPacket("udp", "127.0.4.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// httpFrom returns an HTTP client whose connections leave from src.
func httpFrom(src string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr}
}

func TestOpentrackerInterop(t *testing.T) {
	httpHash := [20]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	udpHash := httpHash
	udpHash[0] = 0xee
	ot := startOpentracker(t, httpHash, udpHash)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	peerA := AnnounceRequest{Port: 7001, Left: 1000, Event: EventStarted, NumWant: 50, Key: 1}
	copy(peerA.PeerID[:], "-SF0001-aaaaaaaaaaaa")
	peerB := AnnounceRequest{Port: 7002, Left: 0, Event: EventStarted, NumWant: 50, Key: 2}
	copy(peerB.PeerID[:], "-SF0001-bbbbbbbbbbbb")

	t.Run("http", func(t *testing.T) {
		a := NewClient(Config{HTTPClient: httpFrom("127.0.4.2")})
		b := NewClient(Config{HTTPClient: httpFrom("127.0.4.3")})
		defer a.Close()
		defer b.Close()
		seeEachOther(ctx, t, ot.httpURL, httpHash, a, b, peerA, peerB, "127.0.4.2", "127.0.4.3")
	})
	t.Run("udp", func(t *testing.T) {
		a := NewClient(Config{UDPListenAddr: "127.0.4.4:0", UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
		b := NewClient(Config{UDPListenAddr: "127.0.4.5:0", UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
		defer a.Close()
		defer b.Close()
		seeEachOther(ctx, t, ot.udpURL, udpHash, a, b, peerA, peerB, "127.0.4.4", "127.0.4.5")
	})
	t.Run("not whitelisted", func(t *testing.T) {
		c := NewClient(Config{UDPListenAddr: "127.0.4.6:0", UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
		defer c.Close()
		req := peerA
		req.InfoHash = [20]byte{0xab}
		_, err := c.Announce(ctx, ot.httpURL, req)
		var fe *FailureError
		if !errors.As(err, &fe) || !bytes.Contains([]byte(fe.Reason), []byte("not authorized")) {
			t.Errorf("HTTP: err = %v, want the tracker's refusal", err)
		}
		// Over UDP this opentracker answers a hash off the whitelist with
		// a bare 8-byte announce header (no interval, no counts), which
		// BEP 15 does not allow: it must come back as a malformed answer,
		// never as a success with no peers.
		if _, err := c.Announce(ctx, ot.udpURL, req); !errors.Is(err, ErrBadResponse) {
			t.Errorf("UDP: err = %v, want ErrBadResponse", err)
		}
	})
}

// seeEachOther announces A then B, checks B learns A and A (announcing
// again) learns B, then stops A and checks B no longer gets it.
func seeEachOther(ctx context.Context, t *testing.T, u string, hash [20]byte, a, b *Client, ra, rb AnnounceRequest, ipA, ipB string) {
	t.Helper()
	ra.InfoHash, rb.InfoHash = hash, hash
	addrA := netip.AddrPortFrom(netip.MustParseAddr(ipA), ra.Port)
	addrB := netip.AddrPortFrom(netip.MustParseAddr(ipB), rb.Port)
	if _, err := a.Announce(ctx, u, ra); err != nil {
		t.Fatalf("A started: %v", err)
	}
	r, err := b.Announce(ctx, u, rb)
	if err != nil {
		t.Fatalf("B started: %v", err)
	}
	if !slices.Contains(r.Peers, addrA) {
		t.Fatalf("B got peers %v, want A %v", r.Peers, addrA)
	}
	if r.Interval <= 0 || r.Seeders != 1 || r.Leechers != 1 {
		t.Errorf("B's answer: interval %v seeders %d leechers %d, want >0, 1, 1", r.Interval, r.Seeders, r.Leechers)
	}
	ra.Event = EventNone
	r, err = a.Announce(ctx, u, ra)
	if err != nil {
		t.Fatalf("A again: %v", err)
	}
	if !slices.Contains(r.Peers, addrB) {
		t.Fatalf("A got peers %v, want B %v", r.Peers, addrB)
	}
	ra.Event = EventStopped
	if _, err := a.Announce(ctx, u, ra); err != nil {
		t.Fatalf("A stopped: %v", err)
	}
	rb.Event = EventNone
	r, err = b.Announce(ctx, u, rb)
	if err != nil {
		t.Fatalf("B again: %v", err)
	}
	if slices.Contains(r.Peers, addrA) {
		t.Fatalf("B still gets A %v after A stopped: %v", addrA, r.Peers)
	}
}

// TestOpentrackerAnnouncers runs two Announcers against opentracker, one
// over HTTP and one over UDP (the tracker shares the swarm between them):
// the second learns the first through Peers(), and both send "stopped"
// when their context ends.
func TestOpentrackerAnnouncers(t *testing.T) {
	hash := [20]byte{0x42, 1, 2, 3}
	ot := startOpentracker(t, hash)
	deadline := time.Now().Add(20 * time.Second)

	ca := NewClient(Config{HTTPClient: httpFrom("127.0.4.7")})
	cb := NewClient(Config{UDPListenAddr: "127.0.4.8:0", UDPRetryBase: 100 * time.Millisecond, UDPMaxRetries: 2})
	defer ca.Close()
	defer cb.Close()
	cfg := AnnouncerConfig{InfoHash: hash, Port: 7101}
	copy(cfg.PeerID[:], "-SF0001-announcer-a-")
	a := NewAnnouncer(ca, [][]string{{ot.httpURL}}, cfg, func() (int64, int64, int64) { return 0, 0, 0 })
	cfg.Port = 7102
	copy(cfg.PeerID[:], "-SF0001-announcer-b-")
	b := NewAnnouncer(cb, [][]string{{"udp://127.0.4.1:1/dead"}, {ot.udpURL}}, cfg, func() (int64, int64, int64) { return 0, 0, 100 })

	ctxA, cancelA := context.WithDeadline(t.Context(), deadline)
	defer cancelA()
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	for a.Status().Announces == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A never announced: %+v", a.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctxB, cancelB := context.WithDeadline(t.Context(), deadline)
	defer cancelB()
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	select {
	case peers := <-b.Peers():
		if want := ap("127.0.4.7:7101"); !slices.Contains(peers, want) {
			t.Fatalf("B got %v, want A at %v", peers, want)
		}
	case <-ctxB.Done():
		t.Fatalf("B got no peers: %+v", b.Status())
	}
	if st := b.Status(); st.URL != ot.udpURL || st.Seeders != 1 || st.Leechers != 1 {
		t.Errorf("B status %+v", st)
	}
	cancelA()
	cancelB()
	for _, done := range []chan error{doneA, doneB} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Both sent "stopped": a third peer sees an empty swarm.
	c := NewClient(Config{UDPListenAddr: "127.0.4.9:0", UDPRetryBase: 2 * time.Second, UDPMaxRetries: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, err := c.Announce(ctx, ot.udpURL, AnnounceRequest{InfoHash: hash, Port: 7103, Left: 1, Event: EventStarted})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Peers) != 1 || r.Peers[0] != ap("127.0.4.9:7103") || r.Seeders != 0 {
		t.Fatalf("after both stopped: peers %v seeders %d, want only ourselves", r.Peers, r.Seeders)
	}
}
