package bitfield

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalid is wrapped by errors about malformed received bitfields.
var ErrInvalid = errors.New("bitfield: invalid")

// Bitfield is a bitmap of n pieces.
type Bitfield struct {
	b []byte
	n int
}

// New returns an empty bitfield of n pieces (n >= 0).
func New(n int) Bitfield {
	return Bitfield{b: make([]byte, ByteLen(n)), n: n}
}

// ByteLen is the number of bytes a bitfield of n pieces takes on the wire.
func ByteLen(n int) int { return (n + 7) / 8 }

// FromBools returns a bitfield with bit i set where have[i] is true.
func FromBools(have []bool) Bitfield {
	bf := New(len(have))
	for i, h := range have {
		if h {
			bf.Set(i)
		}
	}
	return bf
}

// Full returns a bitfield of n pieces with every bit set.
func Full(n int) Bitfield {
	bf := New(n)
	for i := range bf.b {
		bf.b[i] = 0xff
	}
	bf.clearSpare()
	return bf
}

// Validate checks that data is a well-formed bitfield for n pieces: exactly
// ByteLen(n) bytes with the spare bits after piece n-1 zero.
func Validate(data []byte, n int) error {
	if len(data) != ByteLen(n) {
		return fmt.Errorf("%w: %d bytes for %d pieces, want %d", ErrInvalid, len(data), n, ByteLen(n))
	}
	if r := n % 8; r != 0 && len(data) > 0 {
		if spare := data[len(data)-1] & (0xff >> r); spare != 0 {
			return fmt.Errorf("%w: spare bits set after piece %d", ErrInvalid, n-1)
		}
	}
	return nil
}

// Parse validates data (see Validate) and returns a bitfield holding a copy
// of it.
func Parse(data []byte, n int) (Bitfield, error) {
	if err := Validate(data, n); err != nil {
		return Bitfield{}, err
	}
	b := make([]byte, len(data))
	copy(b, data)
	return Bitfield{b: b, n: n}, nil
}

// Len returns the number of pieces.
func (bf Bitfield) Len() int { return bf.n }

// Get reports whether piece i is set.
func (bf Bitfield) Get(i int) bool {
	bf.check(i)
	return bf.b[i>>3]&(0x80>>(i&7)) != 0
}

// Set sets piece i.
func (bf Bitfield) Set(i int) {
	bf.check(i)
	bf.b[i>>3] |= 0x80 >> (i & 7)
}

// Clear clears piece i.
func (bf Bitfield) Clear(i int) {
	bf.check(i)
	bf.b[i>>3] &^= 0x80 >> (i & 7)
}

// Count returns the number of set pieces.
func (bf Bitfield) Count() int {
	c := 0
	for _, x := range bf.b {
		c += bits.OnesCount8(x)
	}
	return c
}

// All reports whether every piece is set (true for zero pieces).
func (bf Bitfield) All() bool { return bf.Count() == bf.n }

// None reports whether no piece is set.
func (bf Bitfield) None() bool {
	for _, x := range bf.b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Bytes returns the wire encoding. It aliases the bitfield: copy it before
// changing the bitfield if it is still in use (for example queued to send).
func (bf Bitfield) Bytes() []byte { return bf.b }

// Clone returns an independent copy.
func (bf Bitfield) Clone() Bitfield {
	b := make([]byte, len(bf.b))
	copy(b, bf.b)
	return Bitfield{b: b, n: bf.n}
}

// Bools returns the bitfield as one bool per piece.
func (bf Bitfield) Bools() []bool {
	out := make([]bool, bf.n)
	for i := range out {
		out[i] = bf.Get(i)
	}
	return out
}

func (bf Bitfield) check(i int) {
	if i < 0 || i >= bf.n {
		panic(fmt.Sprintf("bitfield: index %d out of range [0,%d)", i, bf.n))
	}
}

func (bf Bitfield) clearSpare() {
	if r := bf.n % 8; r != 0 {
		bf.b[len(bf.b)-1] &^= 0xff >> r
	}
}
