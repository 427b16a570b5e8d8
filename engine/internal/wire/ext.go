package wire

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Extension names and the extended message ids we advertise for them in our
// extension handshake (the numbers libtorrent uses). A peer's own ids for
// the messages it wants to receive are in its ExtHandshake.M.
const (
	// ExtHandshakeID is the ExtID of the extension handshake itself.
	ExtHandshakeID uint8 = 0

	ExtMetadata = "ut_metadata" // BEP 9
	ExtPex      = "ut_pex"      // BEP 11

	// ExtMetadataID is the id on which we receive ut_metadata messages.
	ExtMetadataID uint8 = 2
	// ExtPexID is the id on which we receive ut_pex messages.
	ExtPexID uint8 = 1
)

// Caps on what we accept in a peer's extension handshake.
const (
	// MaxExtensions is the most entries accepted in the "m" dictionary;
	// more is an error.
	MaxExtensions = 128
	// MaxExtNameLen is the longest extension name kept; longer ones are
	// skipped.
	MaxExtNameLen = 64
	// MaxClientNameLen is the longest "v" kept; longer ones are truncated.
	MaxClientNameLen = 128
	// MaxReqq caps the advertised request queue length we believe.
	MaxReqq = 4096
	// MaxExtHandshakeLen is the largest extension handshake payload
	// accepted. Real ones are a few hundred bytes (libtorrent gives up on
	// handshakes of more than 1000 bencode tokens); a larger one is an
	// error, before it is decoded.
	MaxExtHandshakeLen = 64 << 10
)

// ErrExtension is wrapped by errors about malformed extension handshakes.
var ErrExtension = errors.New("wire: bad extension handshake")

// ExtHandshake is the BEP 10 extension handshake dictionary (the payload of
// an Extended message with ExtID 0). Zero values mean "absent" and are not
// encoded.
type ExtHandshake struct {
	// M maps extension names to the extended message id the sender wants to
	// receive that extension on; 0 means the sender disables it.
	M map[string]int
	// V is the client name and version ("v").
	V string
	// P is the sender's TCP listen port ("p").
	P int
	// Reqq is how many outstanding requests the sender accepts ("reqq").
	Reqq int
	// MetadataSize is the size of the info dictionary in bytes (BEP 9).
	MetadataSize int
	// YourIP is the address the sender sees us at ("yourip").
	YourIP netip.Addr
	// IPv4 and IPv6 are the sender's own addresses, when it says.
	IPv4, IPv6 netip.Addr
	// UploadOnly is set by peers that only seed (BEP 21 "upload_only").
	UploadOnly bool
}

// ID returns the extended message id the sender wants ext sent on, and
// whether it supports ext at all.
func (h *ExtHandshake) ID(ext string) (uint8, bool) {
	id, ok := h.M[ext]
	if !ok || id <= 0 || id > 255 {
		return 0, false
	}
	return uint8(id), true
}

type extHandshakeWire struct {
	M            map[string]int `bencode:"m"`
	V            string         `bencode:"v,omitempty"`
	P            int            `bencode:"p,omitempty"`
	Reqq         int            `bencode:"reqq,omitempty"`
	MetadataSize int            `bencode:"metadata_size,omitempty"`
	YourIP       []byte         `bencode:"yourip,omitempty"`
	IPv4         []byte         `bencode:"ipv4,omitempty"`
	IPv6         []byte         `bencode:"ipv6,omitempty"`
	UploadOnly   int            `bencode:"upload_only,omitempty"`
}

// Marshal encodes h as a bencoded dictionary ("m" is always present).
func (h *ExtHandshake) Marshal() ([]byte, error) {
	w := extHandshakeWire{
		M: h.M, V: h.V, P: h.P, Reqq: h.Reqq, MetadataSize: h.MetadataSize,
		YourIP: addrBytes(h.YourIP), IPv4: addrBytes(h.IPv4.Unmap()), IPv6: addrBytes(h.IPv6),
	}
	if w.M == nil {
		w.M = map[string]int{}
	}
	if h.UploadOnly {
		w.UploadOnly = 1
	}
	return metainfo.Marshal(&w)
}

func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// ParseExtHandshake decodes an extension handshake payload. It is lenient
// where clients differ (fields of an unexpected type are ignored, entries
// in "m" that are not integers in 0..255 are dropped, an over-long client
// name is truncated) and strict about what could cost memory or confuse the
// engine: the payload must be one bencoded dictionary of at most
// MaxExtHandshakeLen bytes, "m" may hold at most MaxExtensions entries and
// metadata_size at most MaxMetadataSize. Errors wrap ErrExtension.
func ParseExtHandshake(payload []byte) (ExtHandshake, error) {
	var h ExtHandshake
	if len(payload) > MaxExtHandshakeLen {
		return h, fmt.Errorf("%w: %d bytes, over the cap of %d", ErrExtension, len(payload), MaxExtHandshakeLen)
	}
	v, err := metainfo.Decode(payload)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrExtension, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return h, fmt.Errorf("%w: not a dictionary", ErrExtension)
	}
	if m, ok := d["m"].(map[string]any); ok {
		if len(m) > MaxExtensions {
			return h, fmt.Errorf("%w: %d extensions, more than %d", ErrExtension, len(m), MaxExtensions)
		}
		h.M = make(map[string]int, len(m))
		for _, name := range slices.Sorted(maps.Keys(m)) {
			id, ok := m[name].(int64)
			if !ok || id < 0 || id > 255 || len(name) > MaxExtNameLen {
				continue
			}
			h.M[name] = int(id)
		}
	}
	if s, ok := d["v"].(string); ok {
		if len(s) > MaxClientNameLen {
			s = s[:MaxClientNameLen]
		}
		h.V = s
	}
	if p, ok := d["p"].(int64); ok && p > 0 && p < 65536 {
		h.P = int(p)
	}
	if q, ok := d["reqq"].(int64); ok && q > 0 {
		h.Reqq = int(min(q, MaxReqq))
	}
	if n, ok := d["metadata_size"].(int64); ok {
		if n < 0 || n > MaxMetadataSize {
			return h, fmt.Errorf("%w: metadata_size %d outside 0..%d", ErrExtension, n, MaxMetadataSize)
		}
		h.MetadataSize = int(n)
	}
	h.YourIP = parseAddr(d["yourip"])
	if a := parseAddr(d["ipv4"]); a.Is4() {
		h.IPv4 = a
	}
	if a := parseAddr(d["ipv6"]); a.Is6() {
		h.IPv6 = a
	}
	if u, ok := d["upload_only"].(int64); ok && u != 0 {
		h.UploadOnly = true
	}
	return h, nil
}

func parseAddr(v any) netip.Addr {
	s, ok := v.(string)
	if !ok || (len(s) != 4 && len(s) != 16) {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice([]byte(s))
	return a
}
