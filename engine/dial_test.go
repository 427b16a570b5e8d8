package engine

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoSecondDialWhileDialing gives the engine a peer that accepts TCP
// connections and then says nothing, so each dial hangs in the handshake:
// the address must not be dialed again while a dial is in flight (it used
// to be every second, piling up connections).
func TestNoSecondDialWhileDialing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.2.90:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c) // silent: never answers
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	f := makeFixture(t, "silent.bin", 16<<10, nil, 64<<10)
	c := newTestClient(t, "127.0.2.1", Config{})
	if _, err := c.AddTorrent(f.mi, AddOptions{Peers: []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections to a peer whose first dial still hangs, want 1", n)
	}
}
