package metainfo

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"reflect"
	"strconv"
	"time"
)

// Limits applied to torrents and info dictionaries. Anything past them is
// rejected with an error wrapping ErrInvalid before any large allocation.
const (
	// MaxTorrentSize caps the bytes Load reads from a .torrent file.
	MaxTorrentSize = 64 << 20
	// MaxPieceLength caps the piece length of a torrent.
	MaxPieceLength = 256 << 20
	// MaxFiles caps the number of entries in an info dictionary's file list.
	MaxFiles = 1 << 20
	// MaxPathDepth caps the number of components of one file path.
	MaxPathDepth = 64
	// MaxComponentLength caps one path component in bytes (NAME_MAX on Linux).
	MaxComponentLength = 255
	// MaxPathLength caps a file's path below the directory it is saved or
	// mounted in, Info.Name and the components joined with "/", in bytes:
	// PATH_MAX on Linux (4096) less the terminating NUL.
	MaxPathLength = 4096 - 1
	// maxURLs caps the number of tracker and web seed URLs kept from a torrent.
	maxURLs = 1000
)

// torrentKeys are the keys of a .torrent's outer dictionary that swarmfs
// reads, in the order of the tk constants. Optional values are kept raw
// and parsed leniently: a malformed comment must not make an otherwise good
// torrent unusable (libtorrent behaves the same way).
var torrentKeys = []string{"info", "announce", "announce-list", "url-list", "httpseeds", "nodes",
	"comment", "comment.utf-8", "created by", "creation date"}

const (
	tkInfo = iota
	tkAnnounce
	tkAnnounceList
	tkURLList
	tkHTTPSeeds
	tkNodes
	tkComment
	tkCommentUTF8
	tkCreatedBy
	tkCreationDate
	tkCount
)

// Load reads a .torrent file (at most MaxTorrentSize bytes) and returns it
// parsed and validated. Errors wrap ErrInvalid for malformed input and
// ErrUnsupported for BitTorrent v2-only torrents.
func Load(r io.Reader) (*MetaInfo, error) { return load(r, 0) }

// load is Load reading into a buffer of hint bytes to begin with.
func load(r io.Reader, hint int) (*MetaInfo, error) {
	data, err := readAll(io.LimitReader(r, MaxTorrentSize+1), hint)
	if err != nil {
		return nil, fmt.Errorf("metainfo: reading torrent: %w", err)
	}
	if len(data) > MaxTorrentSize {
		return nil, fmt.Errorf("%w: torrent file larger than %d MiB", ErrInvalid, MaxTorrentSize>>20)
	}
	return parseTorrent(data)
}

// readAll is io.ReadAll starting with a buffer of hint bytes (and one to
// spare, so that reaching the end of a file of that size needs no growth).
func readAll(r io.Reader, hint int) ([]byte, error) {
	b := make([]byte, 0, max(hint, 512-1)+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// LoadFile reads and parses the .torrent file at path, as Load does.
func LoadFile(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A buffer of the file's size, not one grown while reading: a torrent
	// of many files can be tens of MiB.
	hint := 0
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		hint = int(min(fi.Size(), MaxTorrentSize))
	}
	mi, err := load(f, hint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mi, nil
}

// parseTorrent parses a .torrent's bytes in one pass: the info dictionary
// is parsed where it is met in the outer one (see walkDict).
func parseTorrent(data []byte) (*MetaInfo, error) {
	if len(data) == 0 || data[0] != 'd' {
		return nil, fmt.Errorf("%w: torrent is not a bencoded dictionary", ErrInvalid)
	}
	var (
		raw      [tkCount]RawMessage
		info     *Info
		hybrid   bool
		infoHash Hash
		d        = decoder{data: data}
	)
	err := d.walkDict(0, torrentKeys, func(k int) error {
		start := d.pos
		var err error
		switch {
		case k == tkInfo && data[start] == 'd' && len(data)-start >= hashAheadMin:
			// A long info dictionary is hashed beside its parse.
			d.hash = startHasher(data, start)
			info, hybrid, err = parseInfoAt(&d, 1)
			if err != nil {
				d.hash.abort()
			} else {
				infoHash = d.hash.finish(d.pos)
			}
			d.hash = nil
		case k == tkInfo && data[start] == 'd':
			info, hybrid, err = parseInfoAt(&d, 1)
			infoHash = sha1.Sum(data[start:d.pos])
		default:
			err = d.skip(1)
		}
		raw[k] = data[start:d.pos:d.pos]
		return err
	})
	if err == nil && d.pos != len(data) {
		err = &SyntaxError{d.pos, "trailing data after value"}
	}
	if err != nil {
		return nil, wrapSyntax("torrent", err)
	}
	if len(raw[tkInfo]) == 0 {
		return nil, fmt.Errorf("%w: torrent has no info dictionary", ErrInvalid)
	}
	if info == nil {
		return nil, invalidf("info is not a dictionary")
	}
	mi := &MetaInfo{
		Info:      info,
		InfoBytes: raw[tkInfo], // a sub-slice of data, which only we hold
		InfoHash:  infoHash,
		Hybrid:    hybrid,
	}
	mi.Announce = rawString(raw[tkAnnounce])
	mi.AnnounceList = rawTiers(raw[tkAnnounceList])
	if len(mi.AnnounceList) == 0 && mi.Announce != "" {
		mi.AnnounceList = [][]string{{mi.Announce}}
	}
	mi.WebSeeds = rawStrings(raw[tkURLList])
	mi.HTTPSeeds = rawStrings(raw[tkHTTPSeeds])
	mi.Nodes = rawNodes(raw[tkNodes])
	mi.Comment = rawString(raw[tkCommentUTF8])
	if mi.Comment == "" {
		mi.Comment = rawString(raw[tkComment])
	}
	mi.CreatedBy = rawString(raw[tkCreatedBy])
	if n, ok := rawInt(raw[tkCreationDate]); ok && n > 0 && n < 1<<40 {
		mi.CreationDate = time.Unix(n, 0).UTC()
	}
	return mi, nil
}

// rawString returns the string in raw, or "" when raw is absent or not a string.
func rawString(raw RawMessage) string {
	var s string
	if len(raw) == 0 || Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func rawInt(raw RawMessage) (int64, bool) {
	var n int64
	if len(raw) == 0 || Unmarshal(raw, &n) != nil {
		return 0, false
	}
	return n, true
}

// rawList splits a bencoded list into its raw items without decoding them,
// stopping after max items (more reports ok=false with the first max items).
// Decoding a long list of tiny items straight into a slice would let a
// hostile torrent allocate many times its own size.
func rawList(raw RawMessage, max int) (items []RawMessage, complete bool, err error) {
	if len(raw) == 0 || raw[0] != 'l' {
		return nil, false, &SyntaxError{0, "not a list"}
	}
	d := decoder{data: raw, pos: 1}
	for d.pos < len(raw) && raw[d.pos] != 'e' {
		if len(items) == max {
			return items, false, nil
		}
		start := d.pos
		if err := d.value(reflect.Value{}, 1); err != nil {
			return nil, false, err
		}
		items = append(items, raw[start:d.pos:d.pos])
	}
	if d.pos != len(raw)-1 {
		return nil, false, &SyntaxError{d.pos, "malformed list"}
	}
	return items, true, nil
}

// rawStrings accepts a single string or a list of strings (BEP 19 allows
// both for url-list); non-string items and empty strings are dropped, as are
// duplicates.
func rawStrings(raw RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	if s := rawString(raw); s != "" {
		return []string{s}
	}
	items, _, err := rawList(raw, maxURLs)
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		s := rawString(it)
		if s == "" || seen[s] || len(out) >= maxURLs {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// rawTiers parses a BEP 12 announce-list, dropping malformed entries and
// empty tiers.
func rawTiers(raw RawMessage) [][]string {
	tiers, _, err := rawList(raw, maxURLs)
	if err != nil {
		return nil
	}
	var out [][]string
	n := 0
	for _, t := range tiers {
		items, _, err := rawList(t, maxURLs)
		if err != nil {
			continue
		}
		var tier []string
		for _, it := range items {
			if s := rawString(it); s != "" && n < maxURLs {
				tier = append(tier, s)
				n++
			}
		}
		if len(tier) > 0 {
			out = append(out, tier)
		}
	}
	return out
}

// rawNodes parses the "nodes" list of [host, port] pairs into "host:port".
func rawNodes(raw RawMessage) []string {
	pairs, _, err := rawList(raw, maxURLs)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pairs {
		hp, _, err := rawList(p, 2)
		if err != nil || len(hp) != 2 {
			continue
		}
		host := rawString(hp[0])
		port, ok := rawInt(hp[1])
		if host == "" || !ok || port <= 0 || port > math.MaxUint16 || len(out) >= maxURLs {
			continue
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		if h, _, err := net.SplitHostPort(addr); err != nil || h != host {
			continue // a host that cannot be written as host:port unambiguously
		}
		out = append(out, addr)
	}
	return out
}

// Bytes re-encodes the torrent. The info dictionary is written verbatim, so
// the result loads with the same info hash.
func (m *MetaInfo) Bytes() ([]byte, error) {
	if len(m.InfoBytes) == 0 {
		return nil, errors.New("metainfo: MetaInfo has no info bytes")
	}
	type node [2]any
	out := struct {
		Announce     string     `bencode:"announce,omitempty"`
		AnnounceList [][]string `bencode:"announce-list,omitempty"`
		Comment      string     `bencode:"comment,omitempty"`
		CreatedBy    string     `bencode:"created by,omitempty"`
		CreationDate int64      `bencode:"creation date,omitempty"`
		HTTPSeeds    []string   `bencode:"httpseeds,omitempty"`
		Info         RawMessage `bencode:"info"`
		Nodes        []node     `bencode:"nodes,omitempty"`
		URLList      []string   `bencode:"url-list,omitempty"`
	}{
		Announce:  m.Announce,
		Comment:   m.Comment,
		CreatedBy: m.CreatedBy,
		HTTPSeeds: m.HTTPSeeds,
		Info:      RawMessage(m.InfoBytes),
		URLList:   m.WebSeeds,
	}
	if out.Announce == "" && len(m.AnnounceList) > 0 {
		out.Announce = m.AnnounceList[0][0]
	}
	if !(len(m.AnnounceList) == 1 && len(m.AnnounceList[0]) == 1 && m.AnnounceList[0][0] == out.Announce) {
		out.AnnounceList = m.AnnounceList
	}
	if !m.CreationDate.IsZero() {
		out.CreationDate = m.CreationDate.Unix()
	}
	for _, n := range m.Nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			continue
		}
		out.Nodes = append(out.Nodes, node{host, p})
	}
	return Marshal(out)
}
