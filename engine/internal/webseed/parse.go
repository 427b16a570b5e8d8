package webseed

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// contentRange is a parsed "Content-Range: bytes first-last/size" header.
type contentRange struct {
	first, last int64 // inclusive byte positions, first <= last
	size        int64 // complete length, -1 for "*"
}

// maxDigits keeps parsed numbers far below overflow (10^18 < 2^63).
const maxDigits = 18

// parseDigits parses a non-empty run of at most maxDigits ASCII digits.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

var errContentRange = errors.New("malformed")

// parseContentRange parses the value of a 206 response's Content-Range
// header (RFC 9110 14.4): "bytes FIRST-LAST/SIZE" or "bytes FIRST-LAST/*".
// The unsatisfied form "bytes */SIZE" and anything else is an error.
func parseContentRange(v string) (contentRange, error) {
	v = strings.TrimSpace(v)
	unit, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return contentRange{}, errContentRange
	}
	rest = strings.TrimLeft(rest, " ")
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return contentRange{}, errContentRange
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return contentRange{}, errContentRange
	}
	cr := contentRange{size: -1}
	if cr.first, ok = parseDigits(a); !ok {
		return contentRange{}, errContentRange
	}
	if cr.last, ok = parseDigits(b); !ok || cr.last < cr.first {
		return contentRange{}, errContentRange
	}
	if size != "*" {
		if cr.size, ok = parseDigits(size); !ok || cr.last >= cr.size {
			return contentRange{}, errContentRange
		}
	}
	return cr, nil
}

// parseRetryAfter parses a Retry-After value (RFC 9110 10.2.3): delay
// seconds or an HTTP-date, relative to now. A date in the past gives 0.
// The result is capped at limit.
func parseRetryAfter(v string, now time.Time, limit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, ok := parseDigits(v)
		if !ok {
			// Only digits but too many of them: far beyond any cap.
			if strings.Trim(v, "0123456789") == "" {
				return limit, true
			}
			return 0, false
		}
		if secs >= int64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), limit), true
}
