package bitfield

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte{0xff, 0xc0}, 10)
	f.Add([]byte{0xff, 0xe0}, 10)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		bf, err := Parse(data, n)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if bf.Len() != n || !bytes.Equal(bf.Bytes(), data) {
			t.Fatal("parse changed the bits")
		}
		// Count, Bools and FromBools agree.
		back := FromBools(bf.Bools())
		if !bytes.Equal(back.Bytes(), data) || back.Count() != bf.Count() {
			t.Fatal("bools round trip differs")
		}
		if bf.All() != (bf.Count() == n) || bf.None() != (bf.Count() == 0) {
			t.Fatal("All/None disagree with Count")
		}
	})
}
