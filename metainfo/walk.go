package metainfo

import (
	"bytes"
	"fmt"
)

// A .torrent of many files is mostly its file list, inside the info
// dictionary, inside the outer dictionary. Decoding each level into raw
// values first and parsing them afterwards would read those bytes once per
// level; instead the loader walks the dictionaries in place with walkDict
// and parses the info dictionary and the file list where it meets them, so
// every byte is read once. walkDict accepts and rejects exactly what
// Unmarshal into a struct of those keys does.

// walkDict walks the dictionary whose 'd' is at d.pos, depth levels deep,
// as lenient Unmarshal into a struct with the given keys does: keys are
// strings, a key equal to the one before it or a known key given twice is
// a duplicate, and unknown keys' values are checked and skipped. For each
// known key it calls field with the key's index in keys and d.pos at the
// value, which field must consume; the value is depth+1 levels deep.
// Syntax errors are *SyntaxError; errors from field are returned as they
// are.
func (d *decoder) walkDict(depth int, keys []string, field func(k int) error) error {
	d.pos++ // 'd'
	var prev []byte
	var seen uint64
	for first := true; ; first = false {
		if d.pos >= len(d.data) {
			return d.errf("unterminated dictionary")
		}
		if d.data[d.pos] == 'e' {
			d.pos++
			return nil
		}
		keyPos := d.pos
		if c := d.data[d.pos]; c < '0' || c > '9' {
			return d.errf("dictionary key is not a string")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		k := keyIndex(keys, key)
		if (!first && bytes.Equal(prev, key)) || (k >= 0 && seen&(1<<k) != 0) {
			return &SyntaxError{keyPos, fmt.Sprintf("duplicate key %q", key)}
		}
		prev = key
		if depth+1 > MaxDepth {
			return d.errf("nesting deeper than %d", MaxDepth)
		}
		if d.pos >= len(d.data) {
			return d.errf("unexpected end of input")
		}
		if k < 0 {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			continue
		}
		seen |= 1 << k
		if err := field(k); err != nil {
			return err
		}
	}
}

// keyIndex returns the index of key in keys (at most 64), or -1.
func keyIndex(keys []string, key []byte) int {
	for i, k := range keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}

// rawValue checks and passes over the value at d.pos, depth levels deep,
// and returns its bytes.
func (d *decoder) rawValue(depth int) (RawMessage, error) {
	start := d.pos
	if err := d.skip(depth); err != nil {
		return nil, err
	}
	return d.data[start:d.pos:d.pos], nil
}

// intValue decodes the integer at d.pos; key names it in the error when
// the value is something else.
func (d *decoder) intValue(key string) (int64, error) {
	if d.data[d.pos] != 'i' {
		return 0, d.errf("%q is not an integer", key)
	}
	return d.integer()
}

// intField decodes the integer at d.pos, as intValue does, into a new
// variable.
func (d *decoder) intField(key string) (*int64, error) {
	n, err := d.intValue(key)
	return &n, err
}

// stringValue decodes the string at d.pos; key names it in the error when
// the value is something else.
func (d *decoder) stringValue(key string) (string, error) {
	if c := d.data[d.pos]; c < '0' || c > '9' {
		return "", d.errf("%q is not a string", key)
	}
	s, err := d.str()
	return string(s), err
}
