package metainfo

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Bencode limits against hostile input.
const (
	// MaxDepth is the deepest nesting of lists and dictionaries accepted.
	MaxDepth = 64
	// maxIntDigits bounds an integer's digits (int64 has at most 19).
	maxIntDigits = 19
)

// ErrBencode is wrapped by every bencode syntax error.
var ErrBencode = errors.New("metainfo: bencode")

// SyntaxError describes malformed bencode and the byte offset where it was
// found. It wraps ErrBencode.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bencode: %s at byte %d", e.Msg, e.Offset)
}

// Unwrap returns ErrBencode.
func (e *SyntaxError) Unwrap() error { return ErrBencode }

// RawMessage is a raw encoded bencode value. Unmarshal stores the exact bytes
// of the value into it (a sub-slice of the input); Marshal writes it verbatim.
type RawMessage []byte

// Decode parses exactly one bencoded value occupying all of data. Values
// come back as int64, string, []any and map[string]any. Dictionary keys must
// be unique; with strict set they must also be sorted.
func Decode(data []byte) (any, error) {
	v, n, err := DecodePrefix(data)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, &SyntaxError{n, "trailing data after value"}
	}
	return v, nil
}

// DecodePrefix parses one bencoded value at the start of data and returns it
// with the number of bytes it used; bytes after it are left alone (BEP 9
// metadata messages append raw data after a dictionary).
func DecodePrefix(data []byte) (any, int, error) {
	d := decoder{data: data}
	var v any
	err := d.value(reflect.ValueOf(&v).Elem(), 0)
	return v, d.pos, err
}

// Unmarshal decodes data, which must hold exactly one value, into v, a
// non-nil pointer. Structs map dictionary keys through `bencode:"key"` tags
// (untagged exported fields use their name); unknown keys are skipped;
// bool fields accept integers (non-zero is true). Unmarshal is lenient about
// key order; see UnmarshalStrict.
func Unmarshal(data []byte, v any) error {
	return unmarshal(data, v, false)
}

// UnmarshalStrict is Unmarshal that also rejects unsorted dictionary keys,
// for data whose hash must survive a re-encode (info dictionaries).
func UnmarshalStrict(data []byte, v any) error {
	return unmarshal(data, v, true)
}

func unmarshal(data []byte, v any, strict bool) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Unmarshal needs a non-nil pointer, got %T", ErrBencode, v)
	}
	d := decoder{data: data, strict: strict}
	if err := d.value(rv.Elem(), 0); err != nil {
		return err
	}
	if d.pos != len(data) {
		return &SyntaxError{d.pos, "trailing data after value"}
	}
	return nil
}

type decoder struct {
	data   []byte
	pos    int
	strict bool
	// hash, when set, is told how far a file list is parsed (see
	// infoHasher).
	hash *infoHasher
}

func (d *decoder) errf(format string, args ...any) error {
	return &SyntaxError{d.pos, fmt.Sprintf(format, args...)}
}

var rawType = reflect.TypeFor[RawMessage]()

// value decodes one value into dst. An invalid dst means skip.
func (d *decoder) value(dst reflect.Value, depth int) error {
	if depth > MaxDepth {
		return d.errf("nesting deeper than %d", MaxDepth)
	}
	if d.pos >= len(d.data) {
		return d.errf("unexpected end of input")
	}
	if !dst.IsValid() {
		return d.skip(depth)
	}
	if dst.Type() == rawType {
		start := d.pos
		if err := d.value(reflect.Value{}, depth); err != nil {
			return err
		}
		dst.SetBytes(d.data[start:d.pos:d.pos])
		return nil
	}
	if dst.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return d.value(dst.Elem(), depth)
	}
	switch c := d.data[d.pos]; {
	case c == 'i':
		start := d.pos
		n, err := d.integer()
		if err != nil {
			return err
		}
		return d.setInt(dst, n, start)
	case c >= '0' && c <= '9':
		start := d.pos
		s, err := d.str()
		if err != nil {
			return err
		}
		return d.setString(dst, s, start)
	case c == 'l':
		return d.list(dst, depth)
	case c == 'd':
		return d.dict(dst, depth)
	default:
		return d.errf("unexpected byte %q", c)
	}
}

func (d *decoder) integer() (int64, error) {
	d.pos++ // 'i'
	start := d.pos
	end := -1
	for i, c := range d.data[start:min(len(d.data), start+maxIntDigits+2)] {
		if c == 'e' {
			end = i
			break
		}
	}
	if end < 0 {
		if len(d.data)-start > maxIntDigits+1 {
			return 0, d.errf("integer too long")
		}
		return 0, d.errf("unterminated integer")
	}
	digits := d.data[start : start+end]
	neg := len(digits) > 0 && digits[0] == '-'
	body := digits
	if neg {
		body = digits[1:]
	}
	switch {
	case len(body) == 0:
		return 0, d.errf("empty integer")
	case len(body) > maxIntDigits:
		return 0, d.errf("integer too long")
	case body[0] == '0' && (len(body) > 1 || neg):
		return 0, d.errf("non-canonical integer %q", digits)
	}
	// At most 19 digits: below 10^19, which fits a uint64.
	var u uint64
	for _, b := range body {
		if b < '0' || b > '9' {
			return 0, d.errf("bad integer %q", digits)
		}
		u = u*10 + uint64(b-'0')
	}
	if u > math.MaxInt64 && !(neg && u == math.MaxInt64+1) {
		return 0, d.errf("integer out of range %q", digits)
	}
	d.pos = start + end + 1
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// str parses a byte string and returns a sub-slice of the input. A short
// canonical length is read in one pass; anything else goes through
// strChecked, which gives the errors.
func (d *decoder) str() ([]byte, error) {
	n, i := 0, d.pos
	for end := min(len(d.data), d.pos+6); i < end; i++ {
		c := d.data[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	if i == d.pos || i == len(d.data) || d.data[i] != ':' || (d.data[d.pos] == '0' && i > d.pos+1) || n > len(d.data)-i-1 {
		return d.strChecked()
	}
	d.pos = i + 1 + n
	return d.data[i+1 : d.pos : d.pos], nil
}

// strChecked is str for any input, with its errors.
func (d *decoder) strChecked() ([]byte, error) {
	start := d.pos
	colon := -1
	for i, c := range d.data[start:min(len(d.data), start+maxIntDigits+1)] {
		if c == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return nil, d.errf("bad string length")
	}
	lenb := d.data[start : start+colon]
	if len(lenb) > 1 && lenb[0] == '0' {
		return nil, d.errf("non-canonical string length %q", lenb)
	}
	var n int
	for _, b := range lenb {
		if b < '0' || b > '9' {
			return nil, d.errf("bad string length %q", lenb)
		}
		n = n*10 + int(b-'0')
		if n > len(d.data) {
			// Checked per digit so that n can never overflow.
			return nil, d.errf("string length %q runs past end of input", lenb)
		}
	}
	body := start + colon + 1
	if n > len(d.data)-body {
		return nil, d.errf("string of %d bytes runs past end of input", n)
	}
	d.pos = body + n
	return d.data[body:d.pos:d.pos], nil
}

// skip checks and passes over one value whose first byte is at d.pos,
// depth levels deep, as value does with an invalid destination but without
// reflection: the same values are accepted, with the same errors.
func (d *decoder) skip(depth int) error {
	switch c := d.data[d.pos]; {
	case c == 'i':
		_, err := d.integer()
		return err
	case c >= '0' && c <= '9':
		_, err := d.str()
		return err
	case c == 'l':
		d.pos++
		for {
			if d.pos >= len(d.data) {
				return d.errf("unterminated list")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return nil
			}
			if err := d.skipNested(depth + 1); err != nil {
				return err
			}
		}
	case c == 'd':
		d.pos++
		var prev []byte
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
			if !first {
				switch cmp := bytes.Compare(prev, key); {
				case cmp == 0:
					return &SyntaxError{keyPos, fmt.Sprintf("duplicate key %q", key)}
				case cmp > 0 && d.strict:
					return &SyntaxError{keyPos, fmt.Sprintf("key %q out of order", key)}
				}
			}
			prev = key
			if err := d.skipNested(depth + 1); err != nil {
				return err
			}
		}
	default:
		return d.errf("unexpected byte %q", c)
	}
}

// skipNested is skip with value's checks of depth and end of input.
func (d *decoder) skipNested(depth int) error {
	if depth > MaxDepth {
		return d.errf("nesting deeper than %d", MaxDepth)
	}
	if d.pos >= len(d.data) {
		return d.errf("unexpected end of input")
	}
	return d.skip(depth)
}

func (d *decoder) list(dst reflect.Value, depth int) error {
	d.pos++ // 'l'
	var elemType reflect.Type
	generic := false
	if dst.IsValid() {
		switch {
		case dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() != reflect.Uint8:
			elemType = dst.Type().Elem()
			dst.Set(dst.Slice(0, 0))
		case dst.Kind() == reflect.Interface && dst.NumMethod() == 0:
			generic = true
		default:
			return d.errf("list cannot go into %s", dst.Type())
		}
	}
	var items []any
	for {
		if d.pos >= len(d.data) {
			return d.errf("unterminated list")
		}
		if d.data[d.pos] == 'e' {
			d.pos++
			break
		}
		switch {
		case generic:
			var v any
			if err := d.value(reflect.ValueOf(&v).Elem(), depth+1); err != nil {
				return err
			}
			items = append(items, v)
		case elemType != nil:
			dst.Set(reflect.Append(dst, reflect.Zero(elemType)))
			if err := d.value(dst.Index(dst.Len()-1), depth+1); err != nil {
				return err
			}
		default:
			if err := d.value(reflect.Value{}, depth+1); err != nil {
				return err
			}
		}
	}
	if generic {
		if items == nil {
			items = []any{}
		}
		dst.Set(reflect.ValueOf(items))
	}
	return nil
}

func (d *decoder) dict(dst reflect.Value, depth int) error {
	d.pos++ // 'd'
	var (
		fields  map[string]int
		generic map[string]any
		mapVal  reflect.Value
	)
	if dst.IsValid() {
		switch {
		case dst.Kind() == reflect.Struct:
			fields = structFields(dst.Type()).byKey
		case dst.Kind() == reflect.Map && dst.Type().Key().Kind() == reflect.String:
			if dst.IsNil() {
				dst.Set(reflect.MakeMap(dst.Type()))
			}
			mapVal = dst
		case dst.Kind() == reflect.Interface && dst.NumMethod() == 0:
			generic = map[string]any{}
		default:
			return d.errf("dictionary cannot go into %s", dst.Type())
		}
	}
	var prev []byte
	first := true
	for {
		if d.pos >= len(d.data) {
			return d.errf("unterminated dictionary")
		}
		if d.data[d.pos] == 'e' {
			d.pos++
			break
		}
		keyPos := d.pos
		if c := d.data[d.pos]; c < '0' || c > '9' {
			return d.errf("dictionary key is not a string")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if !first {
			switch cmp := bytes.Compare(prev, key); {
			case cmp == 0:
				return &SyntaxError{keyPos, fmt.Sprintf("duplicate key %q", key)}
			case cmp > 0 && d.strict:
				return &SyntaxError{keyPos, fmt.Sprintf("key %q out of order", key)}
			case cmp > 0 && (generic != nil || mapVal.IsValid() || fields != nil):
				// Lenient mode: still catch duplicates that are not adjacent.
				if d.seenKey(dst, generic, mapVal, fields, key) {
					return &SyntaxError{keyPos, fmt.Sprintf("duplicate key %q", key)}
				}
			}
		}
		prev, first = key, false
		switch {
		case generic != nil:
			var v any
			if err := d.value(reflect.ValueOf(&v).Elem(), depth+1); err != nil {
				return err
			}
			generic[string(key)] = v
		case mapVal.IsValid():
			ev := reflect.New(mapVal.Type().Elem()).Elem()
			if err := d.value(ev, depth+1); err != nil {
				return err
			}
			mapVal.SetMapIndex(reflect.ValueOf(string(key)).Convert(mapVal.Type().Key()), ev)
		case fields != nil:
			target := reflect.Value{}
			if i, ok := fields[string(key)]; ok {
				target = dst.Field(i)
			}
			if err := d.value(target, depth+1); err != nil {
				return err
			}
		default:
			if err := d.value(reflect.Value{}, depth+1); err != nil {
				return err
			}
		}
	}
	if generic != nil {
		dst.Set(reflect.ValueOf(generic))
	}
	return nil
}

// seenKey reports whether key was already stored in the destination, for
// duplicate detection in unsorted (lenient) dictionaries. For structs only
// known keys are tracked, through non-zero fields; good enough to stop a
// later value from silently replacing an earlier one in the common case.
func (d *decoder) seenKey(dst reflect.Value, generic map[string]any, mapVal reflect.Value, fields map[string]int, key []byte) bool {
	switch {
	case generic != nil:
		_, ok := generic[string(key)]
		return ok
	case mapVal.IsValid():
		return mapVal.MapIndex(reflect.ValueOf(string(key)).Convert(mapVal.Type().Key())).IsValid()
	default:
		i, ok := fields[string(key)]
		return ok && !dst.Field(i).IsZero()
	}
}

func (d *decoder) setInt(dst reflect.Value, n int64, at int) error {
	if !dst.IsValid() {
		return nil
	}
	switch dst.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if dst.OverflowInt(n) {
			return &SyntaxError{at, fmt.Sprintf("integer %d overflows %s", n, dst.Type())}
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n < 0 || dst.OverflowUint(uint64(n)) {
			return &SyntaxError{at, fmt.Sprintf("integer %d overflows %s", n, dst.Type())}
		}
		dst.SetUint(uint64(n))
	case reflect.Bool:
		dst.SetBool(n != 0)
	case reflect.Interface:
		if dst.NumMethod() != 0 {
			return &SyntaxError{at, "integer cannot go into " + dst.Type().String()}
		}
		dst.Set(reflect.ValueOf(n))
	default:
		return &SyntaxError{at, "integer cannot go into " + dst.Type().String()}
	}
	return nil
}

func (d *decoder) setString(dst reflect.Value, s []byte, at int) error {
	if !dst.IsValid() {
		return nil
	}
	switch {
	case dst.Kind() == reflect.String:
		dst.SetString(string(s))
	case dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() == reflect.Uint8:
		dst.SetBytes(slices.Clone(s))
	case dst.Kind() == reflect.Interface && dst.NumMethod() == 0:
		dst.Set(reflect.ValueOf(string(s)))
	case dst.Kind() == reflect.Array && dst.Type().Elem().Kind() == reflect.Uint8:
		if len(s) != dst.Len() {
			return &SyntaxError{at, fmt.Sprintf("string of %d bytes, want %d", len(s), dst.Len())}
		}
		reflect.Copy(dst, reflect.ValueOf(s))
	default:
		return &SyntaxError{at, "string cannot go into " + dst.Type().String()}
	}
	return nil
}

type fieldInfo struct {
	key       string
	index     int
	omitempty bool
}

type structInfo struct {
	byKey  map[string]int
	sorted []fieldInfo // by key, for encoding
}

var structCache sync.Map // reflect.Type -> *structInfo

func structFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byKey: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("bencode")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		si.byKey[name] = i
		si.sorted = append(si.sorted, fieldInfo{key: name, index: i, omitempty: opts == "omitempty"})
	}
	slices.SortFunc(si.sorted, func(a, b fieldInfo) int { return strings.Compare(a.key, b.key) })
	structCache.Store(t, si)
	return si
}

// Marshal encodes v as bencode. Dictionary keys (struct tags or map keys)
// are written in sorted order. Supported: integers, bool (as 0/1), string,
// []byte and byte arrays, slices, maps with string keys, structs, pointers,
// interfaces holding those, and RawMessage (written verbatim). Nil pointers
// and interfaces in structs are omitted; omitempty omits zero fields.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() {
		return fmt.Errorf("%w: cannot encode nil", ErrBencode)
	}
	if v.Type() == rawType {
		if len(v.Bytes()) == 0 {
			return fmt.Errorf("%w: empty RawMessage", ErrBencode)
		}
		b.Write(v.Bytes())
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return fmt.Errorf("%w: cannot encode nil", ErrBencode)
		}
		return encode(b, v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteByte('i')
		b.WriteString(strconv.FormatInt(v.Int(), 10))
		b.WriteByte('e')
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteByte('i')
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
		b.WriteByte('e')
	case reflect.Bool:
		if v.Bool() {
			b.WriteString("i1e")
		} else {
			b.WriteString("i0e")
		}
	case reflect.String:
		writeString(b, v.String())
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			var s []byte
			if v.Kind() == reflect.Slice {
				s = v.Bytes()
			} else {
				s = make([]byte, v.Len())
				reflect.Copy(reflect.ValueOf(s), v)
			}
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.Write(s)
			return nil
		}
		b.WriteByte('l')
		for i := range v.Len() {
			if err := encode(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%w: map key type %s is not a string", ErrBencode, v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		b.WriteByte('d')
		for _, k := range keys {
			writeString(b, k.String())
			if err := encode(b, v.MapIndex(k)); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case reflect.Struct:
		b.WriteByte('d')
		for _, f := range structFields(v.Type()).sorted {
			fv := v.Field(f.index)
			if (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Interface) && fv.IsNil() {
				continue
			}
			if f.omitempty && fv.IsZero() {
				continue
			}
			if f.omitempty && (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0 {
				continue
			}
			writeString(b, f.key)
			if err := encode(b, fv); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	default:
		return fmt.Errorf("%w: cannot encode %s", ErrBencode, v.Type())
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}
