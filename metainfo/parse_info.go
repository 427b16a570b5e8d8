package metainfo

import (
	"errors"
	"fmt"
	"strings"
)

// infoKeys are the keys of an info dictionary that swarmfs reads, in the
// order of the ik constants.
var infoKeys = []string{"name", "name.utf-8", "piece length", "pieces", "length", "files",
	"attr", "private", "source", "meta version", "file tree"}

const (
	ikName = iota
	ikNameUTF8
	ikPieceLength
	ikPieces
	ikLength
	ikFiles
	ikAttr
	ikPrivate
	ikSource
	ikMetaVersion
	ikFileTree
)

// infoFields are the values of an info dictionary's keys, as walked. Raw
// values are sub-slices of the info's bytes.
type infoFields struct {
	name                                    *string
	pieceLength, length, metaVersion        *int64
	nameUTF8, pieces, attr, private, source RawMessage
	fileTree                                RawMessage
	// files is the parsed file list; filesRaw is a "files" value that is
	// not a list.
	files    *fileList
	filesRaw RawMessage
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
	if len(infoBytes) == 0 || infoBytes[0] != 'd' {
		return nil, invalidf("info is not a dictionary")
	}
	d := decoder{data: infoBytes}
	info, _, err := parseInfoAt(&d, 0)
	if err == nil && d.pos != len(infoBytes) {
		err = &SyntaxError{d.pos, "trailing data after value"}
	}
	if err != nil {
		return nil, wrapSyntax("info", err)
	}
	return info, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// wrapSyntax returns err as it is when it already wraps ErrInvalid or
// ErrUnsupported, and a syntax error found in what (wrapping ErrInvalid)
// otherwise.
func wrapSyntax(what string, err error) error {
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnsupported) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
}

// parseInfoAt parses the info dictionary whose 'd' is at d.pos, depth
// levels deep, leaves d.pos after it, and reports whether it is a hybrid
// v1+v2 one. The file list is parsed where it is met. Syntax errors are
// returned as *SyntaxError, for the caller to place.
func parseInfoAt(d *decoder, depth int) (*Info, bool, error) {
	var raw infoFields
	err := d.walkDict(depth, infoKeys, func(k int) error {
		var err error
		switch k {
		case ikName:
			var s string
			s, err = d.stringValue("name")
			raw.name = &s
		case ikPieceLength:
			raw.pieceLength, err = d.intField("piece length")
		case ikLength:
			raw.length, err = d.intField("length")
		case ikMetaVersion:
			raw.metaVersion, err = d.intField("meta version")
		case ikFiles:
			if d.data[d.pos] == 'l' {
				raw.files, err = parseFileList(d, depth+1)
			} else {
				raw.filesRaw, err = d.rawValue(depth + 1)
			}
		case ikNameUTF8:
			raw.nameUTF8, err = d.rawValue(depth + 1)
		case ikPieces:
			raw.pieces, err = d.rawValue(depth + 1)
		case ikAttr:
			raw.attr, err = d.rawValue(depth + 1)
		case ikPrivate:
			raw.private, err = d.rawValue(depth + 1)
		case ikSource:
			raw.source, err = d.rawValue(depth + 1)
		case ikFileTree:
			raw.fileTree, err = d.rawValue(depth + 1)
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return raw.info()
}

// info validates the walked fields and builds the Info.
func (raw *infoFields) info() (*Info, bool, error) {
	hybrid := false
	if raw.metaVersion != nil {
		switch v := *raw.metaVersion; {
		case v == 2 && len(raw.pieces) == 0:
			return nil, false, fmt.Errorf("%w: BitTorrent v2-only torrent (meta version 2 without v1 pieces)", ErrUnsupported)
		case v == 2:
			hybrid = true
		case v != 1:
			return nil, false, fmt.Errorf("%w: torrent meta version %d", ErrUnsupported, v)
		}
	} else if len(raw.fileTree) > 0 && len(raw.pieces) == 0 {
		return nil, false, fmt.Errorf("%w: BitTorrent v2-only torrent (file tree without v1 pieces)", ErrUnsupported)
	}

	in := &Info{}
	// Name: prefer name.utf-8 when it is a valid string.
	if s := rawString(raw.nameUTF8); s != "" {
		in.Name = s
	} else if raw.name != nil {
		in.Name = *raw.name
	}
	if err := checkComponent(in.Name); err != nil {
		return nil, false, fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}

	if raw.pieceLength == nil {
		return nil, false, invalidf("missing piece length")
	}
	in.PieceLength = *raw.pieceLength
	if in.PieceLength <= 0 || in.PieceLength > MaxPieceLength {
		return nil, false, invalidf("piece length %d outside 1..%d", in.PieceLength, MaxPieceLength)
	}
	in.Private = boolFlag(raw.private)
	in.Source = rawString(raw.source)

	hasFiles := raw.files != nil || len(raw.filesRaw) > 0
	switch {
	case raw.length != nil && hasFiles:
		return nil, false, invalidf("info has both length and files")
	case raw.length != nil:
		if *raw.length < 0 {
			return nil, false, invalidf("negative length %d", *raw.length)
		}
		in.SingleFile = true
		in.TotalLength = *raw.length
		if attr := rawString(raw.attr); strings.Contains(attr, "p") || strings.Contains(attr, "l") {
			return nil, false, invalidf("single-file torrent is a pad file or symlink")
		}
		f := File{Path: []string{in.Name}, Length: *raw.length}
		setAttr(&f, rawString(raw.attr))
		in.Files = []File{f}
	case raw.files != nil:
		if err := raw.files.checkLength(len(in.Name)); err != nil {
			return nil, false, err
		}
		in.TotalLength, in.Files = raw.files.total, raw.files.files
	case hasFiles:
		return nil, false, invalidf("info files: not a list")
	default:
		return nil, false, invalidf("info has neither length nor files")
	}
	if in.TotalLength == 0 {
		return nil, false, invalidf("torrent content is empty")
	}

	// Pieces: one SHA-1 per piece, exactly as many as the length needs.
	pieces, ok := rawBytes(raw.pieces)
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
