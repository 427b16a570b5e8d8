package utp

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPathMTUSearch runs the probe search against paths of several MTUs:
// it must settle within probeStep below the path's limit, never above
// it, in a handful of probes.
func TestPathMTUSearch(t *testing.T) {
	for _, limit := range []int{1380, 1452, 8972, 30000, 65000} {
		m := newPathMTU(1380)
		m.setCeiling(65000)
		probes := 0
		for seq := uint16(0); ; seq++ {
			p := m.next()
			if p == 0 {
				break
			}
			if m.next() != p {
				t.Fatalf("limit %d: next changed without a probe sent", limit)
			}
			m.sent(seq, p)
			if m.next() != 0 {
				t.Fatalf("limit %d: a second probe while one is in flight", limit)
			}
			probes++
			if m.arrived(seq+1) || m.lost(seq+1) {
				t.Fatalf("limit %d: another packet's fate counted for the probe", limit)
			}
			if p <= limit {
				if !m.arrived(seq) {
					t.Fatalf("limit %d: arrival of probe %d not taken", limit, p)
				}
			} else if !m.lost(seq) {
				t.Fatalf("limit %d: loss of probe %d not taken", limit, p)
			}
			if probes > 20 {
				t.Fatalf("limit %d: still probing after %d probes (size %d, ceiling %d)", limit, probes, m.size, m.ceil)
			}
		}
		if m.size > limit || (limit >= 1380 && limit-m.size >= probeStep) {
			t.Errorf("limit %d: settled at %d after %d probes", limit, m.size, probes)
		}
	}
}

// TestPathMTUStrike checks that one lost probe is tried again at the
// same size, and that the ceiling comes down only after a second loss.
func TestPathMTUStrike(t *testing.T) {
	m := newPathMTU(1380)
	m.setCeiling(65000)
	p := m.next()
	m.sent(1, p)
	m.lost(1)
	if m.ceil != 65000 || m.next() != p {
		t.Fatalf("after one loss: ceiling %d, next probe %d; want 65000 and %d again", m.ceil, m.next(), p)
	}
	m.sent(2, p)
	m.arrived(2)
	if m.size != p {
		t.Fatalf("a retried probe that arrived: size %d, want %d", m.size, p)
	}
	q := m.next()
	m.sent(3, q)
	m.lost(3)
	m.sent(4, q)
	m.lost(4)
	if m.ceil != q-1 || m.size != p {
		t.Fatalf("after two losses of %d: size %d, ceiling %d", q, m.size, m.ceil)
	}
}

// TestProbeCeiling checks what bounds the search: nothing beyond
// MaxPayload without the peer's word or with discovery off; otherwise
// the peer's datagram limit and, on Linux, the route's MTU.
func TestProbeCeiling(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:6881")
	cfg := Config{}.withDefaults()
	if got := probeCeiling(&cfg, lo, 0, 1380); got != 1380 {
		t.Errorf("peer without the extension: ceiling %d, want 1380", got)
	}
	off := Config{MaxProbePayload: -1}.withDefaults()
	if got := probeCeiling(&off, lo, 65535, 1380); got != 1380 {
		t.Errorf("discovery off: ceiling %d, want 1380", got)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if got := probeCeiling(&cfg, lo, 9000, 1380); got != 9000-headerLen {
		t.Errorf("peer reading 9000-byte datagrams: ceiling %d, want %d", got, 9000-headerLen)
	}
	if got := probeCeiling(&cfg, lo, 65535, 1380); got < 60000 || got > maxUDPPayload-headerLen {
		t.Errorf("loopback (MTU 65536): ceiling %d", got)
	}
}

// mtuLimit is a path whose MTU carries datagrams of at most max bytes: a
// longer data packet is dropped the first time it is sent (as a packet
// with DF set is by the router before it), and its resends pass (as the
// kernel, told the MTU by ICMP, fragments them).
type mtuLimit struct {
	net.PacketConn
	max int

	mu       sync.Mutex // guards the fields below
	dropped  map[uint16]bool
	oversize int // longer datagrams dropped
}

func (m *mtuLimit) WriteTo(b []byte, to net.Addr) (int, error) {
	if len(b) > m.max && isUTP(b) && packetType(b[0]>>4) == stData {
		seq := binary.BigEndian.Uint16(b[16:])
		m.mu.Lock()
		first := !m.dropped[seq]
		if first {
			m.dropped[seq] = true
			m.oversize++
		}
		m.mu.Unlock()
		if first {
			return len(b), nil
		}
	}
	return m.PacketConn.WriteTo(b, to)
}

// TestMTUProbingGrowsAndFallsBack moves data between two sockets on
// loopback: packets grow towards loopback's MTU when the path carries
// them, and settle below a smaller path MTU, data intact, when it does
// not.
func TestMTUProbingGrowsAndFallsBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("utp: the route MTU is read from the kernel on Linux only")
	}
	size := func(c *Conn) (int, int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.mtu.size, c.mtu.ceil
	}
	t.Run("loopback", func(t *testing.T) {
		a, b := socketPair(t, Config{}, nil)
		d, acc := connPair(t, a, b)
		bulkTransfer(t, d, acc, 8<<20)
		if got, ceil := size(d); got < 32000 {
			t.Errorf("packets grew to %d bytes of payload (ceiling %d), want most of loopback's 64 KiB", got, ceil)
		}
	})
	t.Run("block-writes", func(t *testing.T) {
		// One 16 KiB write at a time, the next only once the peer read
		// it: the queue never holds what a full probe wants.
		a, b := socketPair(t, Config{}, nil)
		d, acc := connPair(t, a, b)
		block := make([]byte, 16<<10)
		got := make([]byte, len(block))
		acc.SetReadDeadline(time.Now().Add(time.Minute))
		for range 64 {
			if _, err := d.Write(block); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(acc, got); err != nil {
				t.Fatal(err)
			}
		}
		if got, ceil := size(d); got < 8<<10 {
			t.Errorf("block writes: packets of %d bytes of payload (ceiling %d), want most of a block", got, ceil)
		}
	})
	t.Run("off", func(t *testing.T) {
		a, b := socketPair(t, Config{MaxProbePayload: -1}, nil)
		d, acc := connPair(t, a, b)
		bulkTransfer(t, d, acc, 2<<20)
		if got, _ := size(d); got != 1380 {
			t.Errorf("discovery off: packets of %d bytes of payload", got)
		}
	})
	t.Run("path-mtu-9000", func(t *testing.T) {
		var links []*mtuLimit
		wrap := func(pc net.PacketConn, _ uint64) net.PacketConn {
			l := &mtuLimit{PacketConn: pc, max: 9000 - 28, dropped: map[uint16]bool{}}
			links = append(links, l)
			return l
		}
		a, b := socketPair(t, Config{}, wrap)
		d, acc := connPair(t, a, b)
		bulkTransfer(t, d, acc, 8<<20)
		got, ceil := size(d)
		if got > 9000-28-headerLen || got < 9000-28-headerLen-2*probeStep {
			t.Errorf("path MTU 9000: packets of %d bytes of payload (ceiling %d), want just below %d", got, ceil, 9000-28-headerLen)
		}
		links[0].mu.Lock()
		defer links[0].mu.Unlock()
		t.Logf("settled at %d, ceiling %d, after %d oversize datagrams", got, ceil, links[0].oversize)
		if links[0].oversize > 16 {
			t.Errorf("%d oversize datagrams sent: the search should need a handful", links[0].oversize)
		}
	})
}

// bulkTransfer writes n random bytes on w in one Write, so that the send
// buffer stays full (probes need a packet's worth queued), and checks
// that r reads them.
func bulkTransfer(t *testing.T, w, r net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 5))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		errc <- err
	}()
	r.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("received bytes differ from those sent")
	}
}
