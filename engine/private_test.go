package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/dht"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// privateFixture is a fixture whose torrent has the BEP 27 private flag.
func privateFixture(t *testing.T, name string) *fixture {
	t.Helper()
	f := makeFixture(t, name, 16<<10, nil, 100000)
	mi, err := metainfo.Create(f.dir+"/"+name, metainfo.CreateOptions{PieceLength: 16 << 10, NoDate: true, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.torrent, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if f.mi, err = metainfo.LoadFile(f.torrent); err != nil {
		t.Fatal(err)
	}
	if !f.mi.Info.Private {
		t.Fatal("fixture is not private")
	}
	return f
}

// recordingConn is a DHT node's socket that remembers every datagram it
// receives.
type recordingConn struct {
	net.PacketConn
	mu  sync.Mutex // guards got
	got [][]byte
}

func (r *recordingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := r.PacketConn.ReadFrom(p)
	if n > 0 {
		r.mu.Lock()
		r.got = append(r.got, bytes.Clone(p[:n]))
		r.mu.Unlock()
	}
	return n, a, err
}

// saw reports whether a received datagram held ih (get_peers and
// announce_peer carry it as their info_hash).
func (r *recordingConn) saw(ih metainfo.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.got {
		if bytes.Contains(b, ih[:]) {
			return true
		}
	}
	return false
}

// TestPrivateNeverOnDHT runs a local DHT node that our client bootstraps
// from and adds a public and a private torrent: the node sees get_peers or
// announce_peer for the public one and never anything about the private
// one.
func TestPrivateNeverOnDHT(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.46.30:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rec := &recordingConn{PacketConn: pc}
	node, err := dht.New(dht.Config{Conn: rec, Bootstrap: []string{}, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	c := newTestClient(t, "127.0.46.31", Config{DHTBootstrap: []string{pc.LocalAddr().String()}})
	pub := makeFixture(t, "dht-public", 16<<10, nil, 100000)
	priv := privateFixture(t, "dht-private")
	if _, err := c.AddTorrent(priv.mi, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTorrent(pub.mi, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !rec.saw(pub.mi.InfoHash) {
		select {
		case <-ctx.Done():
			t.Fatal("the DHT node never heard of the public torrent")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The private torrent was added first: it had every chance.
	time.Sleep(time.Second)
	if rec.saw(priv.mi.InfoHash) {
		t.Fatal("the private torrent's info hash reached the DHT")
	}
}

// pexProbe is a raw peer that advertises ut_pex and a listen port and
// records our extension handshake and the ut_pex messages we send it.
type pexProbe struct {
	conn net.Conn
	ext  chan wire.ExtHandshake
	pex  chan []byte
}

// pexProbeID is the ut_pex id a probe advertises.
const pexProbeID = 7

func startPexProbe(t *testing.T, c *Client, ip string, ih metainfo.Hash, port int) *pexProbe {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", c.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var id [20]byte
	copy(id[:], fmt.Sprintf("-PX0001-%012d", port))
	h := wire.NewHandshake(ih, id)
	h.SetExtended(true)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteHandshake(conn, h); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if _, err := wire.ReadHandshake(br); err != nil {
		t.Fatal(err)
	}
	eh := wire.ExtHandshake{M: map[string]int{wire.ExtPex: pexProbeID}, P: port}
	b, err := eh.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	msgs := wire.AppendMessage(nil, wire.Message{ID: wire.Extended, ExtID: wire.ExtHandshakeID, Data: b})
	msgs = wire.AppendMessage(msgs, wire.Message{ID: wire.Interested})
	if _, err := conn.Write(msgs); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Time{})
	p := &pexProbe{conn: conn, ext: make(chan wire.ExtHandshake, 1), pex: make(chan []byte, 16)}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			m, err := wire.ReadMessage(br, wire.DefaultMaxMessageLen, buf)
			if err != nil {
				return
			}
			if m.ID != wire.Extended {
				continue
			}
			switch m.ExtID {
			case wire.ExtHandshakeID:
				if h, err := wire.ParseExtHandshake(m.Data); err == nil {
					select {
					case p.ext <- h:
					default:
					}
				}
			case pexProbeID:
				select {
				case p.pex <- bytes.Clone(m.Data):
				default:
				}
			}
		}
	}()
	return p
}

// TestPrivateNoPex connects two probe peers to a torrent: for a public
// torrent our extension handshake offers ut_pex and each probe hears of
// the other through it; for a private one neither happens.
func TestPrivateNoPex(t *testing.T) {
	for _, private := range []bool{false, true} {
		t.Run(fmt.Sprintf("private=%v", private), func(t *testing.T) {
			var f *fixture
			if private {
				f = privateFixture(t, "pex-private")
			} else {
				f = makeFixture(t, "pex-public", 16<<10, nil, 100000)
			}
			c := newTestClient(t, "127.0.46.40", Config{})
			if _, err := c.AddTorrent(f.mi, AddOptions{}); err != nil {
				t.Fatal(err)
			}
			a := startPexProbe(t, c, "127.0.46.41", f.mi.InfoHash, 41041)
			startPexProbe(t, c, "127.0.46.42", f.mi.InfoHash, 42042)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			select {
			case h := <-a.ext:
				if _, offered := h.ID(wire.ExtPex); offered == private {
					t.Fatalf("ut_pex offered: %v, private: %v", offered, private)
				}
			case <-ctx.Done():
				t.Fatal("no extension handshake")
			}
			// PEX messages start 5 s after a peer connects.
			wait := time.NewTimer(8 * time.Second)
			defer wait.Stop()
			select {
			case b := <-a.pex:
				if private {
					t.Fatalf("ut_pex sent for a private torrent: %q", b)
				}
				want := netip.MustParseAddrPort("127.0.46.42:42042").Addr().AsSlice()
				if !bytes.Contains(b, want) {
					t.Fatalf("ut_pex without the other probe: %q", b)
				}
			case <-wait.C:
				if !private {
					t.Fatal("no ut_pex message for a public torrent")
				}
			}
		})
	}
}
