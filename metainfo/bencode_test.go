package metainfo

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"i0e", int64(0)},
		{"i-42e", int64(-42)},
		{"4:spam", "spam"},
		{"0:", ""},
		{"le", []any{}},
		{"l4:spami3ee", []any{"spam", int64(3)}},
		{"d3:cow3:moo4:spam4:eggse", map[string]any{"cow": "moo", "spam": "eggs"}},
		{"d1:ad1:bli1eeee", map[string]any{"a": map[string]any{"b": []any{int64(1)}}}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in))
		if err != nil {
			t.Errorf("Decode(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Decode(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		enc, err := Marshal(got)
		if err != nil || string(enc) != tt.in {
			t.Errorf("Marshal(Decode(%q)) = %q, %v", tt.in, enc, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
	}{
		{"", 0},
		{"i01e", 1},
		{"i-0e", 1},
		{"ie", 1},
		{"i1", 1},
		{"i99999999999999999999e", 1},
		{"05:hello", 0},
		{"5:hell", 0},
		{"l", 1},
		{"d1:b0:1:a0:e", 6},
		{"d1:a0:1:a0:e", 6},
		{"di1e0:e", 1},
		{"i1ei2e", 3},
		{"x", 0},
		{"-1:", 0},
		{"9999999999999999999:x", 0},            // length would overflow int
		{"i" + "1234567890123456789012345e", 1}, // too many digits
		{"l" + "i1234567890123456789012345", 2}, // unterminated, too long
	}
	for _, tt := range tests {
		var v any
		err := UnmarshalStrict([]byte(tt.in), &v)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrBencode) {
			t.Errorf("UnmarshalStrict(%q) = %v, want a SyntaxError", tt.in, err)
			continue
		}
		if se.Offset != tt.offset {
			t.Errorf("UnmarshalStrict(%q) offset %d, want %d (%v)", tt.in, se.Offset, tt.offset, err)
		}
	}
}

func TestDecodeDepthCap(t *testing.T) {
	deep := make([]byte, 0, 2*(MaxDepth+2))
	for range MaxDepth + 2 {
		deep = append(deep, 'l')
	}
	for range MaxDepth + 2 {
		deep = append(deep, 'e')
	}
	if _, err := Decode(deep); err == nil {
		t.Fatal("deep nesting accepted")
	}
}

func TestLenientKeyOrderStillRejectsDuplicates(t *testing.T) {
	if _, err := Decode([]byte("d1:b0:1:a0:e")); err != nil {
		t.Fatalf("lenient decode of unsorted keys: %v", err)
	}
	if _, err := Decode([]byte("d1:a0:1:b0:1:a0:e")); err == nil {
		t.Fatal("non-adjacent duplicate key accepted")
	}
}

type sample struct {
	Name   string     `bencode:"name"`
	Len    int64      `bencode:"length"`
	Flag   bool       `bencode:"private,omitempty"`
	Tags   []string   `bencode:"tags,omitempty"`
	Raw    RawMessage `bencode:"raw,omitempty"`
	Nested *sample    `bencode:"nested,omitempty"`
	Hash   [4]byte    `bencode:"h"`
}

func TestStructRoundTrip(t *testing.T) {
	in := sample{Name: "x", Len: 7, Flag: true, Tags: []string{"a", "b"}, Raw: RawMessage("li1ee"),
		Nested: &sample{Name: "y"}, Hash: [4]byte{1, 2, 3, 4}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := UnmarshalStrict(b, &out); err != nil {
		t.Fatalf("%v in %q", err, b)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
}

func TestUnmarshalTypeMismatch(t *testing.T) {
	var s sample
	if err := Unmarshal([]byte("d4:namei3ee"), &s); err == nil {
		t.Fatal("integer into string accepted")
	}
	if err := Unmarshal([]byte("d6:lengthi-1ee"), &struct {
		L uint32 `bencode:"length"`
	}{}); err == nil {
		t.Fatal("negative into uint accepted")
	}
}
