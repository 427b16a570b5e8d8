package readahead

import (
	"errors"
	"fmt"
	"testing"
)

func TestNextFile(t *testing.T) {
	files := []File{
		{"show/ep10.mkv", 100},
		{"show/ep9.mkv", 100},
		{"show/ep9.srt", 10},
		{"show/ep11.MKV", 100},
		{"show/empty12.mkv", 0},
		{"show/extras/ep1.mkv", 100},
		{"show/Ep1.mkv", 100},
		{"other/ep10.mkv", 100},
	}
	tests := []struct {
		cur  int
		want int
		ok   bool
	}{
		{6, 1, true},  // Ep1 -> ep9 (case and leading text ignored)
		{1, 0, true},  // ep9 -> ep10: numbers compare as numbers
		{0, 3, true},  // ep10 -> ep11 (extension case ignored)
		{3, 0, false}, // the last: the empty file and other dirs do not count
		{2, 0, false}, // a subtitle has no next subtitle
		{7, 0, false}, // alone in its directory
		{5, 0, false},
		{-1, 0, false},
		{8, 0, false},
	}
	for _, tt := range tests {
		got, ok := NextFile(files, tt.cur)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("NextFile(%d) = %d, %v; want %d, %v", tt.cur, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	ordered := []string{"a", "a1", "a2", "a02x", "a10", "a010b", "b", "B1", "ep 9", "ep 10"}
	for i := range ordered {
		for j := range ordered {
			if got := naturalLess(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("naturalLess(%q, %q) = %v", ordered[i], ordered[j], got)
			}
		}
	}
}

func TestWarmDue(t *testing.T) {
	tests := []struct {
		pos, length int64
		at          float64
		want        bool
	}{
		{0, 1000, 0, false},
		{899, 1000, 0, false}, // below the default 90%
		{900, 1000, 0, true},
		{1000, 1000, 0, true},
		{500, 1000, 0.5, true},
		{499, 1000, 0.5, false},
		{0, 0, 0, false}, // an empty file never warms
		{899, 1000, 7, false},
	}
	for _, tt := range tests {
		if got := WarmDue(tt.pos, tt.length, tt.at); got != tt.want {
			t.Errorf("WarmDue(%d, %d, %v) = %v", tt.pos, tt.length, tt.at, got)
		}
	}
}

func TestParsePrefetch(t *testing.T) {
	const size = 10 << 30
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"all", 0, size, true},
		{"ALL\n", 0, size, true},
		{"0", 0, size, true},
		{"1000+500", 1000, 1500, true},
		{" 5G + 100M \x00", 5 << 30, 5<<30 + 100<<20, true},
		{"9G+4G", 9 << 30, size, true}, // cut at the end
		{"1k", 1024, size, true},
		{"", 0, 0, false},
		{"-5", 0, 0, false},
		{"10G", 0, 0, false}, // at the end
		{"100+0", 0, 0, false},
		{"100+", 0, 0, false},
		{"+100", 0, 0, false},
		{"1e9", 0, 0, false},
		{"0x10", 0, 0, false},
		{"1+2+3", 0, 0, false},
		{"9223372036854775807", 0, 0, false},
		{"99999999999T", 0, 0, false},
		{"1000000000000000000000000000000000000000000000000000000000000000000", 0, 0, false},
	}
	for _, tt := range tests {
		s, e, err := ParsePrefetch([]byte(tt.in), size)
		if (err == nil) != tt.ok || (tt.ok && (s != tt.start || e != tt.end)) {
			t.Errorf("ParsePrefetch(%q) = %d, %d, %v; want %d, %d ok=%v", tt.in, s, e, err, tt.start, tt.end, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadPrefetch) {
			t.Errorf("ParsePrefetch(%q): error %v does not wrap ErrBadPrefetch", tt.in, err)
		}
	}
	if _, _, err := ParsePrefetch([]byte("all"), 0); err == nil {
		t.Error("empty file: no error")
	}
}

// FuzzParsePrefetch checks that any value either fails with ErrBadPrefetch
// or gives a non-empty range inside the file that its canonical form
// parses back to.
func FuzzParsePrefetch(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte, size int64) {
		s, e, err := ParsePrefetch(value, size)
		if err != nil {
			if !errors.Is(err, ErrBadPrefetch) {
				t.Fatalf("error %v does not wrap ErrBadPrefetch", err)
			}
			return
		}
		if s < 0 || e > size || s >= e {
			t.Fatalf("%q in %d bytes: [%d, %d)", value, size, s, e)
		}
		s2, e2, err := ParsePrefetch([]byte(fmt.Sprintf("%d+%d", s, e-s)), size)
		if err != nil || s2 != s || e2 != e {
			t.Fatalf("canonical form of [%d, %d): [%d, %d), %v", s, e, s2, e2, err)
		}
	})
}
