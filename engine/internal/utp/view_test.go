package utp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestPacketConnSharesSocket runs DHT-like datagrams and a uTP transfer
// over one UDP socket: the view sees only the non-uTP datagrams.
func TestPacketConnSharesSocket(t *testing.T) {
	a, b := socketPair(t, Config{}, nil)
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	view := a.PacketConn()
	if view.LocalAddr().String() != a.Addr().String() {
		t.Fatalf("view address %v, socket %v", view.LocalAddr(), a.Addr())
	}
	d, acc := connPair(t, a, b)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i / 3)
	}
	go func() {
		d.Write(data)
		d.CloseWrite()
	}()
	ping := []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
	for range 20 {
		if _, err := peer.WriteTo(ping, a.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	view.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	for i := range 20 {
		n, from, err := view.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if string(buf[:n]) != string(ping) || from.String() != peer.LocalAddr().String() {
			t.Fatalf("view read %q from %v", buf[:n], from)
		}
	}
	if _, err := view.WriteTo([]byte("d1:y1:re"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "d1:y1:re" {
		t.Fatalf("reply through the view: %q %v", buf[:n], err)
	}
	acc.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(acc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uTP beside the DHT: %d of %d bytes, %v", len(got), len(data), err)
	}
	// A past deadline stops a blocked reader (how the DHT shuts down);
	// closing the view leaves uTP running.
	go func() {
		time.Sleep(20 * time.Millisecond)
		view.SetReadDeadline(time.Unix(1, 0))
	}()
	view.SetReadDeadline(time.Time{})
	if _, _, err := view.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a past deadline: %v", err)
	}
	view.Close()
	if _, _, err := view.ReadFrom(buf); !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a closed view: %v", err)
	}
	d2, acc2 := connPair(t, a, b)
	transfer(t, d2, acc2, 100<<10, 6)
}

// TestResetsAreRateLimited sends packets for unknown connections and
// counts the RESETs that come back.
func TestResetsAreRateLimited(t *testing.T) {
	_, s := socketPair(t, Config{ResetRate: 5}, nil)
	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i := range 200 {
		p := appendPacket(nil, header{typ: stData, connID: uint16(i), seq: uint16(i)}, nil, []byte("x"))
		raw.WriteTo(p, s.Addr())
	}
	resets := 0
	buf := make([]byte, 1500)
	for {
		raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := raw.ReadFrom(buf)
		if err != nil {
			break
		}
		p, err := parsePacket(buf[:n])
		if err != nil || p.typ != stReset {
			t.Fatalf("answer %x: %v", buf[:n], err)
		}
		resets++
	}
	// Burst of twice the rate, plus what the rate refills meanwhile.
	if resets == 0 || resets > 10+5 {
		t.Fatalf("%d RESETs for 200 unknown packets at 5 a second", resets)
	}
	// A RESET for nothing is not answered.
	raw.WriteTo(appendPacket(nil, header{typ: stReset, connID: 9}, nil, nil), s.Addr())
	raw.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := raw.ReadFrom(buf); err == nil {
		t.Fatal("a RESET was answered")
	}
}
