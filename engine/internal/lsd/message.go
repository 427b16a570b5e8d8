package lsd

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Multicast groups and port of BEP 14.
const (
	// GroupV4 is the IPv4 group (organization-local scope).
	GroupV4 = "239.192.152.143:6771"
	// GroupV6 is the IPv6 group (site-local scope).
	GroupV6 = "[ff15::efc0:988f]:6771"
)

// MaxMessage is the largest announce we send or accept: BEP 14 asks that
// an announce carrying several info hashes stay under 1400 bytes, and
// anything much larger is not an announce.
const MaxMessage = 1400

// MaxHashes is how many info hashes one accepted announce may carry; a
// message within MaxMessage cannot hold many more.
const MaxHashes = 32

// Announce is a parsed BT-SEARCH message.
type Announce struct {
	// Port is the sender's BitTorrent listen port (1..65535).
	Port uint16
	// Cookie is the sender's cookie ("" when absent); an instance ignores
	// announces with its own cookie, which multicast loops back to it.
	Cookie string
	// InfoHashes are the torrents announced (at least one, at most
	// MaxHashes, without duplicates).
	InfoHashes [][20]byte
}

// ParseAnnounce parses a BT-SEARCH datagram. Header names are matched
// without regard to case, unknown headers are ignored, and the Host header
// is not checked (clients disagree on its form). It errors with ErrMalformed
// (wrapped) for anything else.
func ParseAnnounce(b []byte) (Announce, error) {
	var a Announce
	if len(b) > MaxMessage {
		return a, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	if string(bytes.TrimRight(line, "\r")) != "BT-SEARCH * HTTP/1.1" {
		return a, fmt.Errorf("%w: request line %q", ErrMalformed, truncate(line))
	}
	havePort := false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return a, fmt.Errorf("%w: header line %q", ErrMalformed, truncate(line))
		}
		v := strings.TrimSpace(string(value))
		switch strings.ToLower(strings.TrimSpace(string(name))) {
		case "port":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || p == 0 {
				return a, fmt.Errorf("%w: port %q", ErrMalformed, truncate([]byte(v)))
			}
			a.Port, havePort = uint16(p), true
		case "infohash":
			var h [20]byte
			if len(v) != 40 {
				return a, fmt.Errorf("%w: info hash %q", ErrMalformed, truncate([]byte(v)))
			}
			if _, err := hex.Decode(h[:], []byte(v)); err != nil {
				return a, fmt.Errorf("%w: info hash %q", ErrMalformed, truncate([]byte(v)))
			}
			dup := false
			for _, o := range a.InfoHashes {
				dup = dup || o == h
			}
			if !dup {
				if len(a.InfoHashes) == MaxHashes {
					return a, fmt.Errorf("%w: more than %d info hashes", ErrMalformed, MaxHashes)
				}
				a.InfoHashes = append(a.InfoHashes, h)
			}
		case "cookie":
			if len(v) > 64 {
				return a, fmt.Errorf("%w: cookie of %d bytes", ErrMalformed, len(v))
			}
			a.Cookie = v
		}
	}
	if !havePort {
		return a, fmt.Errorf("%w: no port", ErrMalformed)
	}
	if len(a.InfoHashes) == 0 {
		return a, fmt.Errorf("%w: no info hash", ErrMalformed)
	}
	return a, nil
}

// hashesPerMessage is how many info hashes fit in one announce within
// MaxMessage (the fixed part is under 150 bytes, each hash line 52).
const hashesPerMessage = 24

// formatAnnounce builds a BT-SEARCH message for host (GroupV4 or GroupV6).
// The caller passes at most hashesPerMessage hashes.
func formatAnnounce(host string, port uint16, cookie string, hashes [][20]byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "BT-SEARCH * HTTP/1.1\r\nHost: %s\r\nPort: %d\r\n", host, port)
	for _, h := range hashes {
		fmt.Fprintf(&b, "Infohash: %x\r\n", h)
	}
	fmt.Fprintf(&b, "cookie: %s\r\n\r\n\r\n", cookie)
	return b.Bytes()
}

// truncate shortens untrusted bytes quoted in an error.
func truncate(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}
