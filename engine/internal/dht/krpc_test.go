package dht

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

func h20(c byte) string { return strings.Repeat(string([]byte{c}), 20) }

func hashOf(c byte) (h metainfo.Hash) {
	copy(h[:], h20(c))
	return h
}

// BEP 5's example messages, byte for byte.
func TestParseBEP5Examples(t *testing.T) {
	id := "abcdefghij0123456789"
	var idh metainfo.Hash
	copy(idh[:], id)
	var mnop metainfo.Hash
	copy(mnop[:], "mnopqrstuvwxyz123456")
	tests := []struct {
		name string
		in   string
		want message
	}{
		{"ping", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
			message{T: "aa", Y: 'q', Q: "ping", ID: idh}},
		{"ping reply", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
			message{T: "aa", Y: 'r', ID: mnop}},
		{"error", "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
			message{T: "aa", Y: 'e', ErrCode: 201, ErrMsg: "A Generic Error Ocurred"}},
		{"find_node", "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
			message{T: "aa", Y: 'q', Q: "find_node", ID: idh, Target: mnop}},
		{"get_peers", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
			message{T: "aa", Y: 'q', Q: "get_peers", ID: idh, InfoHash: mnop}},
		{"get_peers values", "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
			message{T: "aa", Y: 'r', ID: idh, Token: "aoeusnth", Values: []netip.AddrPort{
				netip.MustParseAddrPort("97.120.106.101:11893"), netip.MustParseAddrPort("105.100.104.116:28269")}}},
		{"announce_peer", "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
			message{T: "aa", Y: 'q', Q: "announce_peer", ID: idh, InfoHash: mnop, Port: 6881, ImpliedPort: true, Token: "aoeusnth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMessage([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*m, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *m, tt.want)
			}
			// Re-encoding gives the same bytes (BEP 5's examples are canonical).
			b, err := m.encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.in {
				t.Fatalf("encode:\n got %s\nwant %s", b, tt.in)
			}
		})
	}
}

func TestRoundTripNodes(t *testing.T) {
	m := &message{T: "xy", Y: 'r', ID: hashOf('a'), Token: "tok",
		Nodes: []nodeInfo{
			{hashOf('b'), netip.MustParseAddrPort("1.2.3.4:5")},
			{hashOf('c'), netip.MustParseAddrPort("[2001:db8::1]:6881")},
			{hashOf('d'), netip.MustParseAddrPort("9.8.7.6:65535")},
		}}
	m.Nodes6 = m.Nodes
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want4 := []nodeInfo{m.Nodes[0], m.Nodes[2]}
	want6 := []nodeInfo{m.Nodes[1]}
	if !reflect.DeepEqual(got.Nodes, want4) || !reflect.DeepEqual(got.Nodes6, want6) {
		t.Fatalf("nodes %v nodes6 %v", got.Nodes, got.Nodes6)
	}
	if !bytes.Contains(b, []byte("5:nodes52:")) || !bytes.Contains(b, []byte("6:nodes638:")) {
		t.Fatalf("compact sizes wrong: %q", b)
	}
}

func TestParseMalformed(t *testing.T) {
	big := "d1:rd2:id20:" + h20('a') + "5:nodes" + "30:" + strings.Repeat("x", 30) + "e1:t2:aa1:y1:re"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"not dict", "li1ee"},
		{"truncated", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q"},
		{"trailing", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:reX"},
		{"no tid", "d1:rd2:id20:mnopqrstuvwxyz123456e1:y1:re"},
		{"empty tid", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t0:1:y1:re"},
		{"long tid", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t33:" + strings.Repeat("t", 33) + "1:y1:re"},
		{"tid int", "d1:rd2:id20:mnopqrstuvwxyz123456e1:ti1e1:y1:re"},
		{"bad y", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:xe"},
		{"short id", "d1:rd2:id19:mnopqrstuvwxyz12345e1:t2:aa1:y1:re"},
		{"no r", "d1:t2:aa1:y1:re"},
		{"query no a", "d1:q4:ping1:t2:aa1:y1:qe"},
		{"query no method", "d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe"},
		{"find_node short target", "d1:ad2:id20:abcdefghij01234567896:target3:abce1:q9:find_node1:t2:aa1:y1:qe"},
		{"get_peers no hash", "d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:aa1:y1:qe"},
		{"announce no token", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee1:q13:announce_peer1:t2:aa1:y1:qe"},
		{"announce port 0", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token2:aae1:q13:announce_peer1:t2:aa1:y1:qe"},
		{"announce port big", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token2:aae1:q13:announce_peer1:t2:aa1:y1:qe"},
		{"announce port string", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:port2:xx5:token2:aae1:q13:announce_peer1:t2:aa1:y1:qe"},
		{"nodes not multiple of 26", big},
		{"long token", "d1:rd2:id20:mnopqrstuvwxyz1234565:token65:" + strings.Repeat("k", 65) + "e1:t2:aa1:y1:re"},
		{"values not list", "d1:rd2:id20:mnopqrstuvwxyz1234566:values6:axje.ue1:t2:aa1:y1:re"},
		{"error short", "d1:eli201ee1:t2:aa1:y1:ee"},
		{"error types", "d1:el3:abci201ee1:t2:aa1:y1:ee"},
		{"leading zero", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t02:aa1:y1:qe"},
		{"huge packet", "d1:t2:aa1:y1:r1:xi" + strings.Repeat("1", maxPacket) + "ee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMessage([]byte(tt.in))
			if err == nil {
				t.Fatalf("parsed %+v, want error", m)
			}
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
		})
	}
}

func TestParseCaps(t *testing.T) {
	var nodes, values strings.Builder
	for i := range 100 {
		nodes.WriteString(h20(byte(i)))
		nodes.WriteString("\x01\x02\x03\x04\x1a\xe1")
	}
	for range 300 {
		values.WriteString("6:\x05\x06\x07\x08\x1a\xe1")
	}
	values.WriteString("5:short") // wrong length: skipped
	in := "d1:rd2:id20:" + h20('a') + "5:nodes2600:" + nodes.String() + "6:valuesl" + values.String() + "ee1:t2:aa1:y1:re"
	m, err := parseMessage([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != maxNodes || len(m.Values) != maxValues {
		t.Fatalf("parsed %d nodes, %d values; want caps %d, %d", len(m.Nodes), len(m.Values), maxNodes, maxValues)
	}
	if m.Nodes[5].Addr != netip.MustParseAddrPort("1.2.3.4:6881") || m.Values[0] != netip.MustParseAddrPort("5.6.7.8:6881") {
		t.Fatalf("bad decode: %v %v", m.Nodes[5], m.Values[0])
	}
}

func TestUnknownKeysAndIPv6Values(t *testing.T) {
	in := "d1:ad2:id20:" + h20('a') + "9:info_hash20:" + h20('b') + "4:wantl2:n42:n6e5:extrad1:xi1eee1:q9:get_peers1:t1:z1:v4:LT\x01\x021:y1:qe"
	m, err := parseMessage([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Q != methodGetPeers || m.InfoHash != hashOf('b') || m.V != "LT\x01\x02" {
		t.Fatalf("got %+v", m)
	}
	v6 := "18:" + string(netip.MustParseAddr("2001:db8::7").AsSlice()) + "\x00\x50"
	m, err = parseMessage([]byte("d1:rd2:id20:" + h20('a') + "6:valuesl" + v6 + "ee1:t1:z1:y1:re"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Values) != 1 || m.Values[0] != netip.MustParseAddrPort("[2001:db8::7]:80") {
		t.Fatalf("values %v", m.Values)
	}
}

func FuzzParseMessage(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParseMessage.
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if len(m.Nodes) > maxNodes || len(m.Nodes6) > maxNodes || len(m.Values) > maxValues ||
			len(m.Token) > maxTokenLen || len(m.T) == 0 || len(m.T) > maxTIDLen {
			t.Fatalf("caps violated: %+v", m)
		}
		// A parsed message re-encodes to something that parses to the
		// same message (nodes of the wrong family in a list are dropped
		// by the encoder, so compare after a second round).
		b2, err := m.encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		m2, err := parseMessage(b2)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b2, err)
		}
		b3, err := m2.encode()
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("encoding not stable:\n%q\n%q", b2, b3)
		}
	})
}

func TestWantCodec(t *testing.T) {
	q := func(want string) string {
		return "d1:ad2:id20:" + h20('a') + "6:target20:" + h20('b') + want + "e1:q9:find_node1:t2:aa1:y1:qe"
	}
	tests := []struct {
		name, want string
		got        wants
	}{
		{"absent", "", 0},
		{"both", "4:wantl2:n42:n6e", wantGiven | wantN4 | wantN6},
		{"n6", "4:wantl2:n6e", wantGiven | wantN6},
		{"empty list", "4:wantle", wantGiven},
		{"unknown and non-strings", "4:wantl2:n5i4el2:n4ee", wantGiven},
		{"not a list", "4:want2:n4", 0},
		{"past the cap", "4:wantl" + strings.Repeat("1:x", maxWant) + "2:n4e", wantGiven},
	}
	for _, tt := range tests {
		m, err := parseMessage([]byte(q(tt.want)))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if m.Want != tt.got {
			t.Errorf("%s: want %b, expected %b", tt.name, m.Want, tt.got)
		}
		b, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseMessage(b)
		if err != nil || m2.Want != m.Want {
			t.Errorf("%s: round trip %q gives %b, %v", tt.name, b, m2.Want, err)
		}
	}
	// Our encoding is BEP 32's.
	m := &message{T: "aa", Y: 'q', Q: methodGetPeers, ID: hashOf('a'), InfoHash: hashOf('b'), Want: wantGiven | wantN4 | wantN6}
	b, _ := m.encode()
	if !bytes.Contains(b, []byte("4:wantl2:n42:n6e")) {
		t.Errorf("encoding %q", b)
	}
}
