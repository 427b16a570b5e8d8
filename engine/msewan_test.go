package engine

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/engine/internal/mse"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
)

// countConn counts the writes made on a connection.
type countConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestMSEPreferRoundTrips checks the structure of an encrypted connection
// set-up with libtorrent behind a latency proxy: with EncryptionPrefer the
// MSE handshake completes (no fallback to a second, plain connection), and
// the initiating side writes twice (Ya with its padding, then step 3 with
// our BitTorrent handshake as the initial payload) before it reads the
// peer's handshake: two round trips after TCP's, one more than plain.
// (Against a rate-limited libtorrent each of its three handshake writes
// may wait for a bandwidth tick of 500 ms; that is on its side.)
func TestMSEPreferRoundTrips(t *testing.T) {
	f := makeFixture(t, "rt.bin", 64<<10, nil, 256<<10)
	seeder := startSeeder(t, "127.0.2.42", f)
	px := enginetest.StartLatencyProxy(t, enginetest.LatencyConfig{Target: seeder.Addr, Delay: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, hs, err := dialPeer(ctx, &dialer{tcp: true}, addrPort(t, px.Addr()), TransportTCP, f.mi.InfoHash, [20]byte{7}, false, EncryptionPrefer)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if hs.crypto == 0 {
		t.Fatal("prefer fell back to a plain connection with libtorrent")
	}

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cc := &countConn{Conn: c}
	ours := ourHandshake(f.mi.InfoHash, [20]byte{8}, false)
	rw, method, err := mse.InitiateHandshake(cc, f.mi.InfoHash, wire.AppendHandshake(nil, ours), mse.RC4|mse.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.ReadHandshake(rw)
	if err != nil {
		t.Fatal(err)
	}
	if h.InfoHash != f.mi.InfoHash || method == 0 {
		t.Fatalf("handshake %x method %v", h.InfoHash, method)
	}
	if n := cc.writes.Load(); n != 2 {
		t.Fatalf("initiator wrote %d times before the peer's handshake, want 2 (one per round trip)", n)
	}
}
