package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
)

const (
	kib = int64(1024)
	gib = 1024 * 1024 * kib
)

// sparse is a file of size bytes that holds regions of bytes and zeros
// elsewhere, so tests can build files of many gigabytes.
type sparse struct {
	size    int64
	regions []region
}

type region struct {
	off int64
	b   []byte
}

func (s *sparse) put(off int64, b []byte) { s.regions = append(s.regions, region{off, b}) }

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	clear(p[:n])
	for _, r := range s.regions {
		lo, hi := max(off, r.off), min(off+int64(n), r.off+int64(len(r.b)))
		if lo < hi {
			copy(p[lo-off:hi-off], r.b[lo-r.off:hi-r.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// steps runs a Probe over r and returns the ranges it asked for.
func steps(t *testing.T, r io.ReaderAt, size int64, cfg Config) ([]Range, Result, error) {
	t.Helper()
	p := New(size, cfg)
	var asked []Range
	for {
		need, more := p.Next()
		if !more {
			res, err := p.Result()
			return asked, res, err
		}
		asked = append(asked, need)
		if len(asked) > 100 {
			t.Fatal("the probe never finishes")
		}
		buf := make([]byte, need.Len())
		n, _ := r.ReadAt(buf, need.Off)
		if err := p.Feed(need.Off, buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
}

// box builds an MP4 box with a 32-bit size.
func box(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

// box64 builds the header of a box of size bytes (header included) with a
// 64-bit size.
func box64(typ string, size int64) []byte {
	b := append(binary.BigEndian.AppendUint32(nil, 1), typ...)
	return binary.BigEndian.AppendUint64(b, uint64(size))
}

func TestMP4MoovAtTheEndOfAHugeFile(t *testing.T) {
	const size = 6 * gib
	f := &sparse{size: size}
	ftyp := box("ftyp", []byte("isom\x00\x00\x02\x00isomavc1"))
	moov := box("moov", make([]byte, 3000))
	moovOff := size - int64(len(moov))
	f.put(0, ftyp)
	f.put(int64(len(ftyp)), box64("mdat", moovOff-int64(len(ftyp))))
	f.put(moovOff, moov)
	asked, res, err := steps(t, f, size, Config{Data: 100 * kib})
	if err != nil {
		t.Fatal(err)
	}
	// The head, then one read where mdat says the next box is.
	wantAsked := []Range{{0, 64 * kib}, {moovOff, size}}
	if !slices.Equal(asked, wantAsked) {
		t.Fatalf("asked for %v, want %v", asked, wantAsked)
	}
	data := int64(len(ftyp)) + 16
	want := Result{Format: MP4, Start: []Range{{0, data + 100*kib}, {moovOff, size}}}
	if !equalResult(res, want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
}

func TestMP4Faststart(t *testing.T) {
	var b []byte
	b = append(b, box("ftyp", []byte("isom\x00\x00\x02\x00"))...)
	b = append(b, box("moov", make([]byte, 5000))...)
	b = append(b, box("free", nil)...)
	data := int64(len(b)) + 8
	b = append(b, box("mdat", make([]byte, 200_000))...)
	asked, res, err := steps(t, bytes.NewReader(b), int64(len(b)), Config{Data: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 {
		t.Fatalf("asked %v, want only the head", asked)
	}
	want := Result{Format: MP4, Start: []Range{{0, data + 1000}}}
	if !equalResult(res, want) {
		t.Fatalf("result %+v, want %+v", res, want)
	}
}

func TestMP4Errors(t *testing.T) {
	ftyp := box("ftyp", []byte("isom\x00\x00\x02\x00"))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	many := slices.Clone(ftyp)
	for range maxBoxes {
		many = append(many, box("free", nil)...)
	}
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"not a container", []byte("hello, world: not a video"), ErrUnknown},
		{"too short", []byte("\x00\x00\x00\x08ftyp"), ErrUnknown},
		{"no moov", cat(ftyp, box("mdat", make([]byte, 100))), ErrNoIndex},
		{"mdat to the end, no moov", cat(ftyp, []byte("\x00\x00\x00\x00mdat"), make([]byte, 100)), ErrNoIndex},
		{"box past the end", cat(ftyp, []byte("\x00\x01\x00\x00moov"), make([]byte, 100)), ErrMalformed},
		{"box smaller than its header", cat(ftyp, []byte("\x00\x00\x00\x04moov"), make([]byte, 100)), ErrMalformed},
		{"64-bit size smaller than its header", cat(ftyp, box64("mdat", 12), make([]byte, 100)), ErrMalformed},
		{"64-bit size overflows", cat(ftyp, box64("mdat", -1), make([]byte, 100)), ErrMalformed},
		{"binary box type", cat(ftyp, []byte("\x00\x00\x00\x10mo\x00v"), make([]byte, 100)), ErrMalformed},
		{"too many boxes", many, ErrMalformed},
	}
	for _, tt := range tests {
		_, res, err := steps(t, bytes.NewReader(tt.file), int64(len(tt.file)), Config{})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		if tt.want != ErrUnknown && (res.Format != MP4 || len(res.Start) == 0) {
			t.Errorf("%s: result %+v, want the head at least", tt.name, res)
		}
	}
}

// TestMaxSteps walks an MP4 whose boxes are so far apart that every one
// costs a read: the walk stops after MaxSteps reads.
func TestMaxSteps(t *testing.T) {
	const size = 1 << 30
	f := &sparse{size: size}
	f.put(0, box("ftyp", []byte("isom\x00\x00\x02\x00")))
	off := int64(16)
	for off < size-100*kib {
		f.put(off, box64("free", 100*kib))
		off += 100 * kib
	}
	asked, _, err := steps(t, f, size, Config{MaxSteps: 5})
	if !errors.Is(err, ErrTooManySteps) || len(asked) != 5 {
		t.Fatalf("after %d reads: %v, want ErrTooManySteps after 5", len(asked), err)
	}
}

func TestFeed(t *testing.T) {
	var b []byte
	b = append(b, box("ftyp", []byte("isom\x00\x00\x02\x00"))...)
	b = append(b, box("mdat", make([]byte, 300*kib))...)
	moovOff := int64(len(b))
	b = append(b, box("moov", make([]byte, 100))...)
	p := New(int64(len(b)), Config{})
	if _, err := p.Result(); err == nil {
		t.Fatal("Result before the walk is over returned no error")
	}
	need, _ := p.Next()
	if err := p.Feed(need.Off+1, b[need.Off+1:need.End]); !errors.Is(err, ErrShortFeed) {
		t.Fatalf("feeding less than asked: %v", err)
	}
	if err := p.Feed(0, b[:need.End-1]); !errors.Is(err, ErrShortFeed) {
		t.Fatalf("feeding less than asked: %v", err)
	}
	// More than asked is fine: a whole piece around the range.
	if err := p.Feed(0, b); err != nil {
		t.Fatal(err)
	}
	need, more := p.Next()
	if !more || need.Off != moovOff {
		t.Fatalf("next %v %v, want the moov header at %d", need, more, moovOff)
	}
	if err := p.Feed(moovOff-1000, b[moovOff-1000:]); err != nil {
		t.Fatal(err)
	}
	if _, more := p.Next(); more {
		t.Fatal("walk not over")
	}
	res, err := p.Result()
	if err != nil || len(res.Start) != 2 || res.Start[1] != (Range{moovOff, int64(len(b))}) {
		t.Fatalf("result %+v, %v", res, err)
	}
	if err := p.Feed(0, nil); err != nil {
		t.Fatalf("Feed after the end: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	got := normalize([]Range{{50, 60}, {-5, 10}, {10, 20}, {30, 40}, {35, 38}, {90, 200}, {70, 70}}, 100)
	want := []Range{{0, 20}, {30, 40}, {50, 60}, {90, 100}}
	if !slices.Equal(got, want) {
		t.Fatalf("normalize %v, want %v", got, want)
	}
	got = subtract([]Range{{0, 100}, {200, 300}}, []Range{{10, 20}, {50, 250}})
	want = []Range{{0, 10}, {20, 50}, {250, 300}}
	if !slices.Equal(got, want) {
		t.Fatalf("subtract %v, want %v", got, want)
	}
}

func equalResult(a, b Result) bool {
	return a.Format == b.Format && slices.Equal(a.Start, b.Start) && slices.Equal(a.Seek, b.Seek)
}
