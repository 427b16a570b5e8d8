package readahead

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PrefetchAttr is the extended attribute that asks for a range of a file
// in the background: `setfattr -n user.swarmfs.prefetch -v OFFSET[+LEN]`
// or `-v all`.
const PrefetchAttr = "user.swarmfs.prefetch"

// ErrBadPrefetch is wrapped by ParsePrefetch's errors.
var ErrBadPrefetch = errors.New("readahead: bad prefetch value")

// maxPrefetchValue caps the length of a prefetch value.
const maxPrefetchValue = 64

// ParsePrefetch parses a user.swarmfs.prefetch value for a file of size
// bytes and returns the range [start, end) to fetch. The value is "all"
// (the whole file) or OFFSET or OFFSET+LEN: decimal byte counts, each with
// an optional binary suffix K, M, G or T (KiB, MiB, ...). Without LEN the
// range runs to the end of the file; a LEN past the end is cut there.
// Spaces, a trailing newline and a trailing NUL byte (as some tools send)
// are ignored. OFFSET must lie inside the file and LEN must be positive.
func ParsePrefetch(value []byte, size int64) (start, end int64, err error) {
	if len(value) > maxPrefetchValue {
		return 0, 0, fmt.Errorf("%w: longer than %d bytes", ErrBadPrefetch, maxPrefetchValue)
	}
	v := strings.TrimSpace(strings.TrimRight(string(value), "\x00"))
	if size <= 0 {
		return 0, 0, fmt.Errorf("%w: the file is empty", ErrBadPrefetch)
	}
	if strings.EqualFold(v, "all") {
		return 0, size, nil
	}
	offStr, lenStr, hasLen := strings.Cut(v, "+")
	off, err := parseBytes(offStr)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: offset %q: %v", ErrBadPrefetch, offStr, err)
	}
	if off >= size {
		return 0, 0, fmt.Errorf("%w: offset %d at or past the end (%d bytes)", ErrBadPrefetch, off, size)
	}
	if !hasLen {
		return off, size, nil
	}
	n, err := parseBytes(lenStr)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: length %q: %v", ErrBadPrefetch, lenStr, err)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%w: zero length", ErrBadPrefetch)
	}
	return off, off + min(n, size-off), nil
}

// parseBytes parses a decimal byte count with an optional K, M, G or T
// (binary) suffix.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	shift := 0
	if k := len(s); k > 0 {
		switch s[k-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		case 't', 'T':
			shift = 40
		}
		if shift > 0 {
			s = s[:k-1]
		}
	}
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, errors.New("not a decimal number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)>>shift {
		return 0, errors.New("too large")
	}
	return n << shift, nil
}
