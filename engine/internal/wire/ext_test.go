package wire

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestExtHandshakeRoundTrip(t *testing.T) {
	h := ExtHandshake{
		M:            map[string]int{ExtMetadata: int(ExtMetadataID), ExtPex: int(ExtPexID)},
		V:            "swarmfs 0.1",
		P:            6881,
		Reqq:         250,
		MetadataSize: 31337,
		YourIP:       netip.MustParseAddr("127.0.3.9"),
		IPv6:         netip.MustParseAddr("2001:db8::1"),
		UploadOnly:   true,
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	small := ExtHandshake{M: map[string]int{ExtMetadata: 2}, V: "x", Reqq: 250, MetadataSize: 5}
	if sb, _ := small.Marshal(); string(sb) != "d1:md11:ut_metadatai2ee13:metadata_sizei5e4:reqqi250e1:v1:xe" {
		t.Errorf("encoding %q", sb)
	}
	got, err := ParseExtHandshake(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("got %+v\nwant %+v", got, h)
	}
	if id, ok := got.ID(ExtMetadata); !ok || id != ExtMetadataID {
		t.Errorf("ID(ut_metadata) = %d %v", id, ok)
	}
	if _, ok := got.ID("lt_donthave"); ok {
		t.Error("ID of an absent extension reported present")
	}
	// The zero handshake still encodes "m", which BEP 10 requires.
	var zero ExtHandshake
	b, _ = zero.Marshal()
	if string(b) != "d1:mdee" {
		t.Errorf("zero handshake: %q", b)
	}
}

func TestParseExtHandshakeLenient(t *testing.T) {
	// Shapes seen from real clients or allowed by BEP 10: disabled entries
	// (0), odd types, unknown keys, an over-long client name.
	long := strings.Repeat("x", 300)
	in := fmt.Sprintf("d1:md11:ut_metadatai3e6:ut_pexi0e5:weird3:abc4:hugei999e3:negi-1ee1:pi70000e4:reqqi99999e1:v%d:%s6:yourip3:abce", len(long), long)
	h, err := ParseExtHandshake([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := h.ID(ExtMetadata); !ok || id != 3 {
		t.Errorf("ut_metadata id %d %v", id, ok)
	}
	if _, ok := h.ID(ExtPex); ok {
		t.Error("ut_pex disabled with 0 but reported supported")
	}
	if _, ok := h.M["weird"]; ok {
		t.Error("non-integer entry kept")
	}
	if _, ok := h.M["huge"]; ok {
		t.Error("out-of-range id kept")
	}
	if h.P != 0 || h.Reqq != MaxReqq || len(h.V) != MaxClientNameLen || h.YourIP.IsValid() {
		t.Errorf("got %+v", h)
	}
}

func TestParseExtHandshakeErrors(t *testing.T) {
	var many strings.Builder
	many.WriteString("d1:md")
	for i := range MaxExtensions + 1 {
		fmt.Fprintf(&many, "4:e%03di1e", i)
	}
	many.WriteString("ee")
	cases := map[string]string{
		"not a dict":         "li1ee",
		"bad bencode":        "d1:m",
		"trailing":           "d1:mdeexx",
		"too many":           many.String(),
		"metadata too large": fmt.Sprintf("d13:metadata_sizei%de1:mdee", MaxMetadataSize+1),
		"metadata negative":  "d13:metadata_sizei-5e1:mdee",
	}
	for name, in := range cases {
		if _, err := ParseExtHandshake([]byte(in)); !errors.Is(err, ErrExtension) {
			t.Errorf("%s: %v, want ErrExtension", name, err)
		}
	}
}

func TestMetadataMsgRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte{7}, MetadataPieceSize)
	cases := []MetadataMsg{
		{Type: MetadataRequest, Piece: 0},
		{Type: MetadataReject, Piece: 3},
		{Type: MetadataData, Piece: 1, TotalSize: 40000, Data: data},
		{Type: MetadataData, Piece: 2, TotalSize: 40000, Data: data[:40000-2*MetadataPieceSize]},
	}
	for _, m := range cases {
		b := AppendMetadataMsg(nil, m)
		got, err := ParseMetadataMsg(b)
		if err != nil {
			t.Fatalf("%+v: %v", m.Type, err)
		}
		if got.Type != m.Type || got.Piece != m.Piece || got.TotalSize != m.TotalSize || !bytes.Equal(got.Data, m.Data) {
			t.Errorf("got %v/%d/%d/%d, want %+v", got.Type, got.Piece, got.TotalSize, len(got.Data), m.Type)
		}
	}
	if got := string(AppendMetadataMsg(nil, MetadataMsg{Type: MetadataRequest, Piece: 1})); got != "d8:msg_typei0e5:piecei1ee" {
		t.Errorf("request encoding %q", got)
	}
	// Unknown types are returned, not errors (BEP 9: ignore them).
	m, err := ParseMetadataMsg([]byte("d8:msg_typei7e5:piecei0ee"))
	if err != nil || m.Type != 7 || m.Type.String() != "unknown(7)" {
		t.Errorf("unknown type: %+v %v", m, err)
	}
}

func TestMetadataMsgErrors(t *testing.T) {
	cases := map[string]string{
		"not a dict":        "i1e",
		"truncated":         "d8:msg_typei1e5:piecei0e",
		"no type":           "d5:piecei0ee",
		"type string":       "d8:msg_type1:15:piecei0ee",
		"no piece":          "d8:msg_typei0ee",
		"negative piece":    "d8:msg_typei0e5:piecei-1ee",
		"huge piece":        "d8:msg_typei0e5:piecei99999999ee",
		"request trailing":  "d8:msg_typei0e5:piecei0eexyz",
		"data no size":      "d8:msg_typei1e5:piecei0eexyz",
		"data size zero":    "d8:msg_typei1e5:piecei0e10:total_sizei0eexyz",
		"data size huge":    "d8:msg_typei1e5:piecei0e10:total_sizei999999999eexyz",
		"data past size":    "d8:msg_typei1e5:piecei1e10:total_sizei100eexyz",
		"data empty":        "d8:msg_typei1e5:piecei0e10:total_sizei100ee",
		"data over a piece": "d8:msg_typei1e5:piecei0e10:total_sizei100000ee" + strings.Repeat("x", MetadataPieceSize+1),
	}
	for name, in := range cases {
		if _, err := ParseMetadataMsg([]byte(in)); !errors.Is(err, ErrMetadataMsg) {
			t.Errorf("%s: %v, want ErrMetadataMsg", name, err)
		}
	}
}

// TestExtHandshakeSizeCap: a valid handshake over MaxExtHandshakeLen (a
// huge "v", say) is refused before it is decoded.
func TestExtHandshakeSizeCap(t *testing.T) {
	pad := strings.Repeat("x", MaxExtHandshakeLen)
	big := []byte("d1:md11:ut_metadatai2ee1:v" + strconv.Itoa(len(pad)) + ":" + pad + "e")
	if _, err := ParseExtHandshake(big); !errors.Is(err, ErrExtension) {
		t.Fatalf("handshake of %d bytes: err %v, want ErrExtension", len(big), err)
	}
	small := []byte("d1:md11:ut_metadatai2ee1:v3:abce")
	if _, err := ParseExtHandshake(small); err != nil {
		t.Fatal(err)
	}
	meta := AppendMetadataMsg(nil, MetadataMsg{Type: MetadataRequest, Piece: 1})
	if _, err := ParseMetadataMsg(append(meta, make([]byte, MaxMetadataMsgLen)...)); !errors.Is(err, ErrMetadataMsg) {
		t.Fatalf("oversized ut_metadata message: err %v", err)
	}
}
