package metainfo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HashSize is the length of a SHA-1 digest, used for piece hashes and v1 info hashes.
const HashSize = 20

// Hash is a SHA-1 digest: a v1 info hash or a piece hash.
type Hash [HashSize]byte

// String returns the hash as 40 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether every byte of h is zero.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 40 hex digits into a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("%w: hash %q: want 40 hex digits", ErrInvalid, s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: hash %q: %v", ErrInvalid, s, err)
	}
	return h, nil
}

// ErrInvalid is wrapped by every error about a malformed torrent, info
// dictionary or magnet URI.
var ErrInvalid = errors.New("metainfo: invalid")

// ErrUnsupported is wrapped by errors about valid input swarmfs cannot use,
// such as BitTorrent v2-only torrents.
var ErrUnsupported = errors.New("metainfo: not supported")

// File is one file of a torrent's content, as it appears in the mount.
// Pad files (BEP 47) are never listed; their bytes still count in Offset.
type File struct {
	// Path is the cleaned, validated path components below the torrent's
	// directory. For a single-file torrent it is []string{Info.Name}.
	Path []string
	// Length is the file's size in bytes.
	Length int64
	// Offset is where the file starts in the torrent's concatenated content.
	Offset int64
	// Executable and Hidden reflect the BEP 47 attr flags 'x' and 'h'.
	Executable, Hidden bool
}

// DisplayPath returns Path joined with "/".
func (f File) DisplayPath() string { return strings.Join(f.Path, "/") }

// Info is a validated, immutable v1 info dictionary. Build one with
// ParseInfo; never modify it afterwards.
type Info struct {
	// Name is the suggested name of the file or top directory (validated as
	// a single path component).
	Name string
	// PieceLength is the nominal piece size; the last piece may be shorter.
	PieceLength int64
	// Pieces holds one SHA-1 per piece.
	Pieces []Hash
	// Files lists the content's files in torrent order, pad files removed.
	Files []File
	// TotalLength is the size of the concatenated content, pad files included.
	TotalLength int64
	// SingleFile is true when the info dict had "length" and no "files".
	SingleFile bool
	// Private is the BEP 27 private flag: no DHT, no PEX.
	Private bool
	// Source is the optional "source" key some trackers require.
	Source string
}

// NumPieces returns the number of pieces.
func (in *Info) NumPieces() int { return len(in.Pieces) }

// PieceOffset returns the torrent offset of piece i's first byte.
func (in *Info) PieceOffset(i int) int64 { return int64(i) * in.PieceLength }

// PieceSize returns the length in bytes of piece i (the last one may be short).
func (in *Info) PieceSize(i int) int64 {
	if i < 0 || i >= len(in.Pieces) {
		return 0
	}
	if i == len(in.Pieces)-1 {
		return in.TotalLength - in.PieceOffset(i)
	}
	return in.PieceLength
}

// PieceAt returns the index of the piece holding torrent offset off.
func (in *Info) PieceAt(off int64) int { return int(off / in.PieceLength) }

// PieceSpan returns the half-open range [first, end) of pieces that hold the
// torrent bytes [off, off+n). For n <= 0 it returns an empty range at off.
func (in *Info) PieceSpan(off, n int64) (first, end int) {
	if n <= 0 {
		p := in.PieceAt(off)
		return p, p
	}
	return in.PieceAt(off), in.PieceAt(off+n-1) + 1
}

// FileSpan returns the pieces that hold file f: [first, end).
func (in *Info) FileSpan(f File) (first, end int) { return in.PieceSpan(f.Offset, f.Length) }

// FilePart is the overlap of a byte range with one file.
type FilePart struct {
	File       int   // index into Info.Files
	FileOffset int64 // offset inside the file
	TorrentOff int64 // same byte, as a torrent offset
	Length     int64
}

// FileParts returns the parts of the files (pad files excluded) that the
// torrent bytes [off, off+n) cover, in order.
func (in *Info) FileParts(off, n int64) []FilePart {
	var parts []FilePart
	end := off + n
	// binary search for the first file ending after off
	lo, hi := 0, len(in.Files)
	for lo < hi {
		m := (lo + hi) / 2
		if in.Files[m].Offset+in.Files[m].Length <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(in.Files) && in.Files[i].Offset < end; i++ {
		f := in.Files[i]
		s, e := max(off, f.Offset), min(end, f.Offset+f.Length)
		if e <= s {
			continue
		}
		parts = append(parts, FilePart{File: i, FileOffset: s - f.Offset, TorrentOff: s, Length: e - s})
	}
	return parts
}

// MetaInfo is a parsed .torrent file.
type MetaInfo struct {
	Info *Info
	// InfoBytes are the exact bencoded bytes of the info dictionary.
	InfoBytes []byte
	// InfoHash is the SHA-1 of InfoBytes.
	InfoHash Hash
	// Announce is the single "announce" URL (may be empty).
	Announce string
	// AnnounceList holds the BEP 12 tiers; when the torrent had none it is
	// built from Announce. Use Trackers to get the effective tiers.
	AnnounceList [][]string
	// WebSeeds holds BEP 19 url-list entries; HTTPSeeds the BEP 17 httpseeds.
	WebSeeds  []string
	HTTPSeeds []string
	// Nodes are DHT bootstrap nodes ("host:port") from the "nodes" key.
	Nodes        []string
	Comment      string
	CreatedBy    string
	CreationDate time.Time // zero when absent
	// Hybrid is true when the torrent also carries a v2 part (loaded by v1).
	Hybrid bool
}

// Trackers returns the effective announce tiers: AnnounceList when present,
// otherwise a single tier holding Announce, otherwise nil.
func (m *MetaInfo) Trackers() [][]string {
	if len(m.AnnounceList) > 0 {
		return m.AnnounceList
	}
	if m.Announce != "" {
		return [][]string{{m.Announce}}
	}
	return nil
}
