package metainfo

import (
	"cmp"
	"encoding/base32"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxMagnetLength caps the length of a magnet URI accepted by ParseMagnet.
const MaxMagnetLength = 64 << 10

// Magnet is a parsed magnet URI (BEP 9 and the de-facto parameters).
type Magnet struct {
	// InfoHash is the v1 info hash from xt=urn:btih.
	InfoHash Hash
	// Name is the display name (dn); empty when absent.
	Name string
	// Trackers are the tr announce URLs, in order, without duplicates.
	Trackers []string
	// Peers are x.pe peer addresses as "host:port".
	Peers []string
	// WebSeeds are the ws URLs (BEP 19).
	WebSeeds []string
	// Length is the exact content length (xl); 0 when absent.
	Length int64
}

// ParseMagnet parses a magnet URI. It needs exactly one BitTorrent v1 info
// hash (xt=urn:btih: with 40 hex digits or 32 base32 characters); a magnet
// that only carries a v2 hash (urn:btmh) gives an error wrapping
// ErrUnsupported, anything else malformed one wrapping ErrInvalid. Unknown
// parameters are ignored.
func ParseMagnet(uri string) (*Magnet, error) {
	if len(uri) > MaxMagnetLength {
		return nil, fmt.Errorf("%w: magnet URI longer than %d bytes", ErrInvalid, MaxMagnetLength)
	}
	rest, ok := cutPrefixFold(uri, "magnet:?")
	if !ok {
		return nil, fmt.Errorf("%w: not a magnet URI (want magnet:?xt=urn:btih:...)", ErrInvalid)
	}
	q, err := url.ParseQuery(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: magnet: %v", ErrInvalid, err)
	}
	m := &Magnet{}
	var haveBTIH, haveBTMH bool
	var otherXT string
	for key, vals := range q {
		base := key
		// Numbered variants (xt.1, tr.2) as some clients write them.
		if i := strings.LastIndexByte(key, '.'); i > 0 && key != "x.pe" {
			if _, err := strconv.Atoi(key[i+1:]); err == nil {
				base = key[:i]
			}
		}
		if base != "xt" {
			continue
		}
		for _, v := range vals {
			switch {
			case hasPrefixFold(v, "urn:btih:"):
				h, err := parseBTIH(v[len("urn:btih:"):])
				if err != nil {
					return nil, err
				}
				if haveBTIH && h != m.InfoHash {
					return nil, fmt.Errorf("%w: magnet has two different btih info hashes", ErrInvalid)
				}
				m.InfoHash, haveBTIH = h, true
			case hasPrefixFold(v, "urn:btmh:"):
				haveBTMH = true
			default:
				otherXT = v
			}
		}
	}
	switch {
	case haveBTIH:
	case haveBTMH:
		return nil, fmt.Errorf("%w: BitTorrent v2-only magnet (urn:btmh without urn:btih)", ErrUnsupported)
	case otherXT != "":
		return nil, fmt.Errorf("%w: magnet xt %q is not urn:btih", ErrUnsupported, truncate(otherXT, 60))
	default:
		return nil, fmt.Errorf("%w: magnet has no xt=urn:btih", ErrInvalid)
	}
	// Parameters in a fixed order so the result does not depend on map order:
	// plain key first, then numbered variants in numeric order.
	m.Name = first(q, "dn")
	m.Trackers = collect(q, "tr")
	m.WebSeeds = collect(q, "ws")
	for _, p := range collect(q, "x.pe") {
		host, port, err := net.SplitHostPort(p)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%w: magnet x.pe %q is not host:port", ErrInvalid, truncate(p, 60))
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("%w: magnet x.pe %q has a bad port", ErrInvalid, truncate(p, 60))
		}
		m.Peers = append(m.Peers, p)
	}
	if xl := first(q, "xl"); xl != "" {
		n, err := strconv.ParseInt(xl, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: magnet xl %q is not a length", ErrInvalid, truncate(xl, 30))
		}
		m.Length = n
	}
	return m, nil
}

// parseBTIH parses the hash part of urn:btih: (40 hex or 32 base32).
func parseBTIH(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 40:
		return ParseHash(strings.ToLower(s))
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil || len(b) != HashSize {
			return h, fmt.Errorf("%w: magnet btih %q is not base32", ErrInvalid, s)
		}
		copy(h[:], b)
		return h, nil
	default:
		return h, fmt.Errorf("%w: magnet btih %q: want 40 hex or 32 base32 characters", ErrInvalid, truncate(s, 60))
	}
}

// keyVariants returns the values of key and of its numbered variants
// (key.1, key.2, ...) in that order.
func keyVariants(q url.Values, key string) []string {
	out := append([]string(nil), q[key]...)
	type numbered struct {
		n    int
		vals []string
	}
	var nums []numbered
	for k, vs := range q {
		if rest, ok := strings.CutPrefix(k, key+"."); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				nums = append(nums, numbered{n, vs})
			}
		}
	}
	slices.SortFunc(nums, func(a, b numbered) int { return cmp.Compare(a.n, b.n) })
	for _, nv := range nums {
		out = append(out, nv.vals...)
	}
	return out
}

func first(q url.Values, key string) string {
	for _, v := range keyVariants(q, key) {
		if v != "" {
			return v
		}
	}
	return ""
}

// collect returns the non-empty values of key without duplicates.
func collect(q url.Values, key string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range keyVariants(q, key) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if hasPrefixFold(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// String returns the magnet as a URI: xt first, then dn, xl, tr, ws and
// x.pe. ParseMagnet(m.String()) gives back an equal Magnet.
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(m.InfoHash.String())
	if m.Name != "" {
		b.WriteString("&dn=" + url.QueryEscape(m.Name))
	}
	if m.Length > 0 {
		b.WriteString("&xl=" + strconv.FormatInt(m.Length, 10))
	}
	for _, t := range m.Trackers {
		b.WriteString("&tr=" + url.QueryEscape(t))
	}
	for _, w := range m.WebSeeds {
		b.WriteString("&ws=" + url.QueryEscape(w))
	}
	for _, p := range m.Peers {
		b.WriteString("&x.pe=" + url.QueryEscape(p))
	}
	return b.String()
}

// Magnet returns a magnet URI for the torrent: its info hash, name, length,
// every tracker (tiers flattened in order) and its web seeds.
func (m *MetaInfo) Magnet() *Magnet {
	mg := &Magnet{InfoHash: m.InfoHash, WebSeeds: append([]string(nil), m.WebSeeds...)}
	if m.Info != nil {
		mg.Name = m.Info.Name
		mg.Length = m.Info.TotalLength
	}
	seen := map[string]bool{}
	for _, tier := range m.Trackers() {
		for _, t := range tier {
			if !seen[t] {
				seen[t] = true
				mg.Trackers = append(mg.Trackers, t)
			}
		}
	}
	return mg
}
