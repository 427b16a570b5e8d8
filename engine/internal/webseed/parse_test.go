package webseed

import (
	"net/http"
	"testing"
	"time"
)

func TestParseContentRange(t *testing.T) {
	good := []struct {
		in   string
		want contentRange
	}{
		{"bytes 0-99/100", contentRange{0, 99, 100}},
		{"bytes 5-5/6", contentRange{5, 5, 6}},
		{"bytes 10-19/*", contentRange{10, 19, -1}},
		{"  BYTES 1-2/3 ", contentRange{1, 2, 3}},
		{"bytes 0-999999999999999998/999999999999999999", contentRange{0, 999999999999999998, 999999999999999999}},
	}
	for _, c := range good {
		got, err := parseContentRange(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "bytes", "bytes 0-99", "bytes */100", "bytes 5-4/10", "bytes 0-10/10", "bytes 0-9/",
		"bytes -1-5/10", "bytes 0--5/10", "bytes +1-5/10", "bytes 0-5/1x", "items 0-5/10", "bytes=0-5/10",
		"bytes 0-5,7-9/10", "bytes 0-9999999999999999999/*", "bytes 0x1-5/10", "bytes 1 -5/10",
	} {
		if got, err := parseContentRange(in); err == nil {
			t.Errorf("%q: accepted as %+v", in, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	const limit = 10 * time.Minute
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 30 ", 30 * time.Second, true},
		{"600", limit, true},
		{"99999999999999999999999", limit, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), limit, true},
		{"Tuesday, 01-Dec-26 12:00:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Tue Dec  1 12:00:20 2026", 20 * time.Second, true},        // asctime
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"12abc", 0, false},
		{"soon", 0, false},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now, limit)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
