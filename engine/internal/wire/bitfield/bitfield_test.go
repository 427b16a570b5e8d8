package bitfield

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBitfieldBasics(t *testing.T) {
	bf := New(10)
	if bf.Len() != 10 || len(bf.Bytes()) != 2 || !bf.None() || bf.All() {
		t.Fatalf("new: %+v", bf)
	}
	bf.Set(0)
	bf.Set(9)
	// Most significant bit first: piece 0 is 0x80 of byte 0, piece 9 is
	// 0x40 of byte 1.
	if got := bf.Bytes(); got[0] != 0x80 || got[1] != 0x40 {
		t.Fatalf("bytes % x", got)
	}
	if !bf.Get(0) || bf.Get(1) || !bf.Get(9) || bf.Count() != 2 {
		t.Fatal("get/count wrong")
	}
	bf.Clear(0)
	if bf.Get(0) || bf.Count() != 1 {
		t.Fatal("clear failed")
	}
	c := bf.Clone()
	c.Set(3)
	if bf.Get(3) {
		t.Fatal("clone shares storage")
	}
	full := Full(10)
	if !full.All() || full.Count() != 10 || full.Bytes()[1] != 0xc0 {
		t.Fatalf("full: % x", full.Bytes())
	}
	if !New(0).All() || Full(0).Count() != 0 {
		t.Fatal("zero pieces")
	}
}

func TestBitfieldBoolsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 70 {
		have := make([]bool, n)
		for i := range have {
			have[i] = r.IntN(2) == 1
		}
		bf := FromBools(have)
		if !slices.Equal(bf.Bools(), have) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		parsed, err := Parse(bf.Bytes(), n)
		if err != nil || !slices.Equal(parsed.Bools(), have) {
			t.Fatalf("n=%d: parse: %v", n, err)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		data []byte
		n    int
		ok   bool
	}{
		{[]byte{0xff, 0xc0}, 10, true},
		{[]byte{0xff, 0xe0}, 10, false}, // spare bit set
		{[]byte{0xff}, 10, false},       // too short
		{[]byte{0xff, 0, 0}, 10, false}, // too long
		{[]byte{0xff}, 8, true},
		{[]byte{}, 0, true},
		{[]byte{0}, 0, false},
		{[]byte{0x01}, 7, false},
	}
	for _, c := range cases {
		err := Validate(c.data, c.n)
		if (err == nil) != c.ok {
			t.Errorf("Validate(% x, %d) = %v", c.data, c.n, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("error %v does not wrap ErrInvalid", err)
		}
	}
}

func TestOutOfRangePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Get(10) on 10 pieces did not panic")
		}
	}()
	New(10).Get(10)
}
