package holepunch

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestMsgEncoding(t *testing.T) {
	tests := []struct {
		m    Msg
		wire string
	}{
		{Msg{Type: Rendezvous, Addr: ap("1.2.3.4:258")}, "\x00\x00\x01\x02\x03\x04\x01\x02\x00\x00\x00\x00"},
		{Msg{Type: Connect, Addr: ap("[2001:db8::1]:6881")},
			"\x01\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1\x00\x00\x00\x00"},
		{Msg{Type: Error, Addr: ap("1.2.3.4:1"), Err: NoSupport}, "\x02\x00\x01\x02\x03\x04\x00\x01\x00\x00\x00\x03"},
		{Msg{Type: Error, Addr: ap("1.2.3.4:1"), Err: 77}, "\x02\x00\x01\x02\x03\x04\x00\x01\x00\x00\x00\x4d"},
	}
	for _, tt := range tests {
		b := tt.m.Append(nil)
		if string(b) != tt.wire {
			t.Errorf("%v: encoded %q, want %q", tt.m, b, tt.wire)
		}
		got, err := Parse(b)
		if err != nil || got != tt.m {
			t.Errorf("%v: parsed %v, %v", tt.m, got, err)
		}
	}
	// IPv4-mapped addresses go out as IPv4; a connect never carries a code.
	b := Msg{Type: Connect, Addr: ap("[::ffff:1.2.3.4]:258"), Err: NoSelf}.Append(nil)
	if string(b) != "\x01\x00\x01\x02\x03\x04\x01\x02\x00\x00\x00\x00" {
		t.Errorf("mapped: %q", b)
	}
}

// libtorrent writes rendezvous and connect messages without err_code.
func TestParseLibtorrentForm(t *testing.T) {
	m, err := Parse([]byte("\x01\x00\x7f\x00\x00\x02\x1a\xe1"))
	if err != nil || m != (Msg{Type: Connect, Addr: ap("127.0.0.2:6881")}) {
		t.Fatalf("got %v, %v", m, err)
	}
	m, err = Parse([]byte("\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x00\x50"))
	if err != nil || m != (Msg{Type: Rendezvous, Addr: ap("[2001:db8::9]:80")}) {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestParseMalformed(t *testing.T) {
	cases := map[string]string{
		"empty":              "",
		"one byte":           "\x00",
		"unknown type":       "\x03\x00\x01\x02\x03\x04\x00\x01",
		"unknown addr type":  "\x00\x02\x01\x02\x03\x04\x00\x01",
		"short v4":           "\x00\x00\x01\x02\x03\x04\x00",
		"short v6":           "\x00\x01\x20\x01\x0d\xb8\x00\x01",
		"port 0":             "\x00\x00\x01\x02\x03\x04\x00\x00",
		"unspecified":        "\x00\x00\x00\x00\x00\x00\x00\x01",
		"multicast":          "\x01\x00\xe0\x00\x00\x01\x00\x01",
		"mapped as v6":       "\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04\x00\x01",
		"error without code": "\x02\x00\x01\x02\x03\x04\x00\x01",
		"code in connect":    "\x01\x00\x01\x02\x03\x04\x00\x01\x00\x00\x00\x02",
		"partial code":       "\x02\x00\x01\x02\x03\x04\x00\x01\x00\x00\x02",
		"trailing bytes":     "\x02\x00\x01\x02\x03\x04\x00\x01\x00\x00\x00\x02\x00",
		"too long":           "\x02\x01" + string(make([]byte, 30)),
	}
	for name, in := range cases {
		if m, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, %v; want ErrMalformed", name, m, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParse.
	f.Add([]byte("\x02\x00\x01\x02\x03\x04\x00\x01\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := Parse(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		a := m.Addr.Addr()
		if len(p) > MaxMsgLen || m.Addr.Port() == 0 || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() || m.Type > Error ||
			m.Type != Error && m.Err != NoError {
			t.Fatalf("accepted %q as %v", p, m)
		}
		b := m.Append(nil)
		m2, err := Parse(b)
		if err != nil || m2 != m {
			t.Fatalf("round trip of %v: %v, %v", m, m2, err)
		}
		// The encoding is canonical up to libtorrent's missing code.
		if !bytes.Equal(b, p) && !bytes.Equal(b[:len(b)-4], p) {
			t.Fatalf("%q re-encodes as %q", p, b)
		}
	})
}
