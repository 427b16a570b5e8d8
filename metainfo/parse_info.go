package metainfo

import (
	"fmt"
	"strings"
)

// rawInfo is an info dictionary as found on the wire. The file list is kept
// raw so that its length is checked against MaxFiles before each entry is
// decoded.
type rawInfo struct {
	Name        *string    `bencode:"name"`
	NameUTF8    RawMessage `bencode:"name.utf-8"`
	PieceLength *int64     `bencode:"piece length"`
	Pieces      RawMessage `bencode:"pieces"`
	Length      *int64     `bencode:"length"`
	Files       RawMessage `bencode:"files"`
	Attr        RawMessage `bencode:"attr"`
	Private     RawMessage `bencode:"private"`
	Source      RawMessage `bencode:"source"`
	MetaVersion *int64     `bencode:"meta version"`
	FileTree    RawMessage `bencode:"file tree"`
}

type rawFile struct {
	Length   *int64     `bencode:"length"`
	Path     []string   `bencode:"path"`
	PathUTF8 RawMessage `bencode:"path.utf-8"`
	Attr     RawMessage `bencode:"attr"`
}

// ParseInfo parses and validates a bencoded info dictionary, such as one
// fetched from peers with BEP 9. Errors wrap ErrInvalid or ErrUnsupported.
func ParseInfo(infoBytes []byte) (*Info, error) {
	info, _, err := parseInfo(infoBytes)
	return info, err
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parseInfo parses an info dictionary and reports whether it is a hybrid
// v1+v2 one.
func parseInfo(data []byte) (*Info, bool, error) {
	if len(data) == 0 || data[0] != 'd' {
		return nil, false, invalidf("info is not a dictionary")
	}
	var raw rawInfo
	if err := Unmarshal(data, &raw); err != nil {
		return nil, false, fmt.Errorf("%w: info: %w", ErrInvalid, err)
	}
	hybrid := false
	if raw.MetaVersion != nil {
		switch v := *raw.MetaVersion; {
		case v == 2 && len(raw.Pieces) == 0:
			return nil, false, fmt.Errorf("%w: BitTorrent v2-only torrent (meta version 2 without v1 pieces)", ErrUnsupported)
		case v == 2:
			hybrid = true
		case v != 1:
			return nil, false, fmt.Errorf("%w: torrent meta version %d", ErrUnsupported, v)
		}
	} else if len(raw.FileTree) > 0 && len(raw.Pieces) == 0 {
		return nil, false, fmt.Errorf("%w: BitTorrent v2-only torrent (file tree without v1 pieces)", ErrUnsupported)
	}

	in := &Info{}
	// Name: prefer name.utf-8 when it is a valid string.
	if s := rawString(raw.NameUTF8); s != "" {
		in.Name = s
	} else if raw.Name != nil {
		in.Name = *raw.Name
	}
	if err := checkComponent(in.Name); err != nil {
		return nil, false, fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}

	if raw.PieceLength == nil {
		return nil, false, invalidf("missing piece length")
	}
	in.PieceLength = *raw.PieceLength
	if in.PieceLength <= 0 || in.PieceLength > MaxPieceLength {
		return nil, false, invalidf("piece length %d outside 1..%d", in.PieceLength, MaxPieceLength)
	}
	in.Private = boolFlag(raw.Private)
	in.Source = rawString(raw.Source)

	switch {
	case raw.Length != nil && len(raw.Files) > 0:
		return nil, false, invalidf("info has both length and files")
	case raw.Length != nil:
		if *raw.Length < 0 {
			return nil, false, invalidf("negative length %d", *raw.Length)
		}
		in.SingleFile = true
		in.TotalLength = *raw.Length
		if attr := rawString(raw.Attr); strings.Contains(attr, "p") || strings.Contains(attr, "l") {
			return nil, false, invalidf("single-file torrent is a pad file or symlink")
		}
		f := File{Path: []string{in.Name}, Length: *raw.Length}
		setAttr(&f, rawString(raw.Attr))
		in.Files = []File{f}
	case len(raw.Files) > 0:
		var err error
		if in.TotalLength, in.Files, err = parseFiles(raw.Files, len(in.Name)); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, invalidf("info has neither length nor files")
	}
	if in.TotalLength == 0 {
		return nil, false, invalidf("torrent content is empty")
	}

	// Pieces: one SHA-1 per piece, exactly as many as the length needs.
	pieces, ok := rawBytes(raw.Pieces)
	if !ok {
		return nil, false, invalidf("missing or malformed pieces")
	}
	if len(pieces)%HashSize != 0 {
		return nil, false, invalidf("pieces length %d is not a multiple of %d", len(pieces), HashSize)
	}
	want := in.TotalLength / in.PieceLength
	if in.TotalLength%in.PieceLength != 0 {
		want++
	}
	if int64(len(pieces)/HashSize) != want {
		return nil, false, invalidf("%d piece hashes for %d bytes in pieces of %d (want %d)",
			len(pieces)/HashSize, in.TotalLength, in.PieceLength, want)
	}
	in.Pieces = make([]Hash, want)
	for i := range in.Pieces {
		copy(in.Pieces[i][:], pieces[i*HashSize:])
	}
	return in, hybrid, nil
}

// rawBytes returns the contents of the byte string in raw without copying.
func rawBytes(raw RawMessage) ([]byte, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return nil, false
	}
	d := decoder{data: raw}
	b, err := d.str()
	return b, err == nil && d.pos == len(raw)
}

// boolFlag reads a BEP 27 style flag: the integer 1 means set. Anything
// else, including a missing key, means unset.
func boolFlag(raw RawMessage) bool {
	n, ok := rawInt(raw)
	return ok && n == 1
}

func setAttr(f *File, attr string) {
	f.Executable = strings.Contains(attr, "x")
	f.Hidden = strings.Contains(attr, "h")
}
