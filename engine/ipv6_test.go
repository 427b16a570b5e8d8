package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// requireIPv6 skips t when the host has no IPv6 loopback.
func requireIPv6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("engine: no IPv6 loopback: %v", err)
	}
	l.Close()
}

// bep7Tracker is a small HTTP tracker (Debian's opentracker serves IPv4
// only): it keeps the source address of each announce by peer id and
// answers with the other peers, IPv4 ones in "peers" and IPv6 ones in
// "peers6" (BEP 7).
type bep7Tracker struct {
	mu    sync.Mutex
	peers map[string]netip.AddrPort
}

func (tr *bep7Tracker) serve(t *testing.T, l net.Listener) string {
	tr.peers = map[string]netip.AddrPort{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		src, err := netip.ParseAddrPort(r.RemoteAddr)
		port, perr := strconv.ParseUint(q.Get("port"), 10, 16)
		if err != nil || perr != nil || len(q.Get("peer_id")) != 20 {
			fmt.Fprint(w, "d14:failure reason11:bad requeste")
			return
		}
		tr.mu.Lock()
		tr.peers[q.Get("peer_id")] = netip.AddrPortFrom(src.Addr().Unmap(), uint16(port))
		var v4, v6 []byte
		for id, a := range tr.peers {
			if id == q.Get("peer_id") {
				continue
			}
			b := binary.BigEndian.AppendUint16(a.Addr().AsSlice(), a.Port())
			if a.Addr().Is4() {
				v4 = append(v4, b...)
			} else {
				v6 = append(v6, b...)
			}
		}
		tr.mu.Unlock()
		b, _ := metainfo.Marshal(map[string]any{"interval": int64(60), "peers": string(v4), "peers6": string(v6)})
		w.Write(b)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/announce"
}

// TestIPv6SeederViaTracker: an IPv6-only libtorrent seeder on [::1]
// announces to a BEP 7 tracker on [::1]; our dual-stack client (listening
// on every address, announcing once per family) gets it from "peers6" and
// downloads from it.
func TestIPv6SeederViaTracker(t *testing.T) {
	requireIPv6(t)
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &bep7Tracker{}
	url := tr.serve(t, l)
	f := makeFixture(t, "v6tracker", 16<<10, []string{url}, 400000)
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "::1", Torrent: f.torrent, SavePath: f.dir})
	seeder.WaitSeeding(t, time.Minute)
	c := newTestClient(t, "", Config{ListenAddr: ":0", NoLSD: true, NoPortMapping: true})
	if fams := c.families(); len(fams) != 2 {
		t.Fatalf("a client on every address announces over %v, want both families", fams)
	}
	tor, err := c.AddTorrent(f.mi, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.Complete(), "download from an IPv6 seeder found by the tracker", tor)
	checkFiles(t, ctx, tor, f)
}

// TestIPv6SeederViaDHT: an IPv6-only libtorrent seeder on [::1] is found
// through the IPv6 DHT (BEP 32) of a client listening on [::1]: the two
// DHT nodes bootstrap from each other.
func TestIPv6SeederViaDHT(t *testing.T) {
	requireIPv6(t)
	f := makeFixture(t, "v6dht", 16<<10, nil, 300000)
	ourPort := enginetest.FreePort(t, "::1")
	ltPort := enginetest.FreePort(t, "::1")
	c := newTestClient(t, "", Config{
		ListenAddr:   fmt.Sprintf("[::1]:%d", ourPort),
		DHTBootstrap: []string{fmt.Sprintf("[::1]:%d", ltPort)},
	})
	if c.dht.Node6() == nil || c.dht.Node4() != nil {
		t.Fatalf("a client on [::1] runs DHT nodes %v, want IPv6 only", c.dht.Addrs())
	}
	seeder := enginetest.StartLibtorrent(t, enginetest.LTOptions{
		IP: "::1", Port: ltPort, Torrent: f.torrent, SavePath: f.dir, Peers: []string{},
		DHT: true, DHTBootstrap: fmt.Sprintf("[::1]:%d", ourPort),
	})
	seeder.WaitSeeding(t, time.Minute)
	tor, err := c.AddMagnet(&metainfo.Magnet{InfoHash: f.mi.InfoHash}, AddOptions{Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitClosed(t, ctx, tor.InfoReady(), "metadata through the IPv6 DHT", tor)
	waitClosed(t, ctx, tor.Complete(), "download", tor)
	checkFiles(t, ctx, tor, f)
}
