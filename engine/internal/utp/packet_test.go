package utp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPacketRoundTrip(t *testing.T) {
	cases := []struct {
		h       header
		sack    []byte
		payload []byte
	}{
		{header{typ: stSyn, connID: 0xfffe, ts: 1, seq: 1}, nil, nil},
		{header{typ: stData, connID: 7, ts: 0xffffffff, tsDiff: 12345, wnd: 1 << 20, seq: 65535, ack: 0}, nil, []byte("hello")},
		{header{typ: stState, connID: 9, seq: 3, ack: 65535}, []byte{0x05, 0, 0, 0x80}, nil},
		{header{typ: stFin, connID: 1, seq: 100, ack: 99}, nil, nil},
		{header{typ: stReset, connID: 1, seq: 100, ack: 99}, nil, nil},
	}
	for _, tc := range cases {
		b := appendPacket(nil, tc.h, tc.sack, tc.payload)
		if !isUTP(b) {
			t.Fatalf("%v: isUTP false for %x", tc.h.typ, b[:2])
		}
		p, err := parsePacket(b)
		if err != nil {
			t.Fatalf("%v: %v", tc.h.typ, err)
		}
		if p.header != tc.h || !bytes.Equal(p.sack, tc.sack) || !bytes.Equal(p.payload, tc.payload) {
			t.Fatalf("round trip of %+v %x %q gave %+v %x %q", tc.h, tc.sack, tc.payload, p.header, p.sack, p.payload)
		}
	}
}

func TestPacketRejects(t *testing.T) {
	good := appendPacket(nil, header{typ: stData, seq: 5}, nil, []byte("x"))
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"short":          good[:19],
		"version 2":      mod(func(b []byte) []byte { b[0] = b[0]&0xf0 | 2; return b }),
		"type 5":         mod(func(b []byte) []byte { b[0] = 5<<4 | 1; return b }),
		"ext cut":        mod(func(b []byte) []byte { b[1] = 1; return b[:21] }),
		"ext too long":   mod(func(b []byte) []byte { b[1] = 1; b[20] = 0; return append(b[:21], 9, 1) }),
		"ext chain long": append(appendPacket(nil, header{typ: stState}, []byte{1, 2, 3, 4}, nil)[:20:20], 2, 4, 0, 0, 0, 0, 1, 200),
	}
	cases["ext chain long"][1] = 2
	for name, b := range cases {
		if _, err := parsePacket(b); !errors.Is(err, ErrPacket) {
			t.Errorf("%s: got %v, want ErrPacket", name, err)
		}
	}
	// A DHT message is not uTP.
	if isUTP([]byte("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe")) {
		t.Error("a KRPC message was taken for uTP")
	}
}

func TestPacketExtensions(t *testing.T) {
	// An unknown extension before the selective ack is skipped; a sack of
	// any non-empty length is accepted (libtorrent sends odd lengths).
	b := appendPacket(nil, header{typ: stState, seq: 1, ack: 10}, nil, nil)
	b[1] = 3
	b = append(b, 1, 4, 0xaa, 0xbb, 0xcc, 0xdd, 0, 1, 0x03)
	p, err := parsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.sack, []byte{3}) || len(p.payload) != 0 {
		t.Fatalf("sack %x payload %x", p.sack, p.payload)
	}
	if !sackHas(p.sack, 10, 12) || !sackHas(p.sack, 10, 13) || sackHas(p.sack, 10, 14) || sackHas(p.sack, 10, 11) {
		t.Fatal("sackHas misreads the bitmask")
	}
}

// TestHandshakeExtension round-trips the datagram size extension and
// checks that a malformed one is skipped like any unknown extension.
func TestHandshakeExtension(t *testing.T) {
	h := header{typ: stSyn, connID: 7, ts: 1, seq: 9}
	hs := appendHandshake(nil, h, 65535)
	p, err := parsePacket(hs)
	if err != nil || p.header != h || p.maxDatagram != 65535 || p.sack != nil || p.payload != nil {
		t.Fatalf("parse(appendHandshake) = %+v, %v", p, err)
	}
	// libutp (Transmission) takes a datagram for uTP only when its first
	// extension type is below 3: a handshake that led with ours was
	// dropped, and no connection with Transmission came up.
	if hs[1] >= 3 {
		t.Fatalf("a handshake's first extension is %#x: libutp drops it", hs[1])
	}
	// Three bytes instead of four: not ours, skipped.
	b := appendPacket(nil, header{typ: stState}, nil, nil)
	b[1] = extMaxDatagram
	b = append(b, 0, 3, 1, 2, 3)
	if p, err := parsePacket(b); err != nil || p.maxDatagram != 0 {
		t.Fatalf("short extension: %+v, %v", p, err)
	}
	if p, err := parsePacket(appendPacket(nil, header{typ: stState}, nil, nil)); err != nil || p.maxDatagram != 0 {
		t.Fatalf("no extension: %+v, %v", p, err)
	}
}

func TestSeqLessWraps(t *testing.T) {
	cases := []struct {
		a, b uint16
		want bool
	}{
		{1, 2, true}, {2, 1, false}, {5, 5, false},
		{65535, 0, true}, {0, 65535, false},
		{65500, 20, true}, {20, 65500, false},
		{0, 32767, true}, {0, 32769, false},
	}
	for _, c := range cases {
		if got := seqLess(c.a, c.b); got != c.want {
			t.Errorf("seqLess(%d, %d) = %v", c.a, c.b, got)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParsePacket")
	if _, err := os.Stat(dir); err != nil {
		f.Fatalf("seed corpus missing: %v", err)
	}
	f.Add(appendPacket(nil, header{typ: stData, seq: 1}, nil, []byte("abc")))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			if !errors.Is(err, ErrPacket) {
				t.Fatalf("error %v does not wrap ErrPacket", err)
			}
			return
		}
		if !isUTP(b) {
			t.Fatal("parsed a packet isUTP refuses")
		}
		again, err := parsePacket(appendPacket(nil, p.header, p.sack, p.payload))
		if err != nil {
			t.Fatalf("re-encoded packet fails: %v", err)
		}
		if again.header != p.header || !bytes.Equal(again.sack, p.sack) || !bytes.Equal(again.payload, p.payload) {
			t.Fatalf("re-encoding changed the packet: %+v vs %+v", again, p)
		}
		if p.maxDatagram != 0 {
			hs, err := parsePacket(appendHandshake(nil, p.header, p.maxDatagram))
			if err != nil || hs.header != p.header || hs.maxDatagram != p.maxDatagram {
				t.Fatalf("handshake re-encoding: %+v, %v; want %+v", hs, err, p)
			}
		}
		for i := range len(p.sack) * 8 {
			sackHas(p.sack, p.ack, p.ack+2+uint16(i))
		}
	})
}
