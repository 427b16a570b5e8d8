package lsd

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestLSDLibtorrent puts a libtorrent leecher with only LSD enabled (no
// tracker, no DHT) and our LSD on two hosts of one LAN: ours reports the
// libtorrent peer, and libtorrent, having found us by LSD, connects to the
// port we announce and sends a handshake for the torrent (its Python
// binding does not expose lsd_peer_alert, so the connection is the proof:
// with no tracker and no DHT, LSD is its only way to learn our port).
func TestLSDLibtorrent(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	sim := enginetest.NewNetSim(t)
	r := sim.Router("lan", enginetest.ConeNAT)
	alice, bob := r.Host("alice"), r.Host("bob")
	c := enginetest.MakeContent(t, "lsd", 32<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 100_000}})
	ih := [20]byte(c.Meta.InfoHash)

	// Our side: a BitTorrent port that records the first handshake.
	ln, err := alice.Listen("tcp4", alice.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	handshake := make(chan []byte, 1)
	go func() {
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(90 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			close(handshake)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, 68)
		if _, err := io.ReadFull(conn, b); err != nil {
			close(handshake)
			return
		}
		handshake <- b
	}()
	l := newOn(t, alice, Config{Port: port, Gap: 500 * time.Millisecond, Interval: 2 * time.Second})
	if err := l.SetTorrents([]Torrent{{InfoHash: ih}}); err != nil {
		t.Fatal(err)
	}

	lt := bob.Start(t, enginetest.Python, "testdata/lt_lsd.py", bob.Addr().String(), c.Torrent, t.TempDir(), "120")
	line := lt.WaitLine(t, "listening ", 30*time.Second)
	ltPort, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "listening ")))
	if err != nil || ltPort == 0 {
		t.Fatalf("libtorrent: %q", line)
	}
	waitPeer(t, l, ih, netip.AddrPortFrom(bob.Addr(), uint16(ltPort)), nil)

	select {
	case b, ok := <-handshake:
		if !ok {
			t.Fatalf("libtorrent did not connect to our announced port %d; its output:\n%s", port, lt.Output())
		}
		if b[0] != 19 || !bytes.Equal(b[1:20], []byte("BitTorrent protocol")) || !bytes.Equal(b[28:48], ih[:]) {
			t.Fatalf("handshake %x, want info hash %x", b, ih)
		}
	case <-time.After(100 * time.Second):
		t.Fatal("no connection from libtorrent")
	}
}
