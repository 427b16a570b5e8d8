package webseed

import (
	"fmt"
	"testing"
	"time"
)

// FuzzContentRange checks that parseContentRange never panics and accepts
// only ranges that make sense, which print back to an equivalent header.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 10-19/*", "bytes */100", "BYTES 1-2/3", "bytes 5-4/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		if err != nil {
			return
		}
		if cr.first < 0 || cr.last < cr.first || (cr.size != -1 && cr.size <= cr.last) || cr.size < -1 {
			t.Fatalf("%q: accepted %+v", s, cr)
		}
		size := "*"
		if cr.size >= 0 {
			size = fmt.Sprint(cr.size)
		}
		again, err := parseContentRange(fmt.Sprintf("bytes %d-%d/%s", cr.first, cr.last, size))
		if err != nil || again != cr {
			t.Fatalf("%q: %+v does not round-trip: %+v, %v", s, cr, again, err)
		}
	})
}

// FuzzRetryAfter checks that parseRetryAfter never panics and stays within
// [0, limit].
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "Tue, 01 Dec 2026 12:01:30 GMT", "Tuesday, 01-Dec-26 12:00:10 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const limit = 10 * time.Minute
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now, limit)
		if d < 0 || d > limit || (!ok && d != 0) {
			t.Fatalf("%q: %v, %v", s, d, ok)
		}
	})
}
