package metainfo

// The loader as it was before it parsed in one pass: the outer dictionary
// and the info dictionary are decoded by Unmarshal into raw values, then the
// file list is parsed from its raw bytes. Kept as the reference that the
// one-pass loader must agree with (TestLoadAgreesWithReference,
// FuzzLoadAgreesWithReference).

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

type refTorrent struct {
	Info         RawMessage `bencode:"info"`
	Announce     RawMessage `bencode:"announce"`
	AnnounceList RawMessage `bencode:"announce-list"`
	URLList      RawMessage `bencode:"url-list"`
	HTTPSeeds    RawMessage `bencode:"httpseeds"`
	Nodes        RawMessage `bencode:"nodes"`
	Comment      RawMessage `bencode:"comment"`
	CommentUTF8  RawMessage `bencode:"comment.utf-8"`
	CreatedBy    RawMessage `bencode:"created by"`
	CreationDate RawMessage `bencode:"creation date"`
}

type refInfo struct {
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

func refParseTorrent(data []byte) (*MetaInfo, error) {
	if len(data) == 0 || data[0] != 'd' {
		return nil, fmt.Errorf("%w: torrent is not a bencoded dictionary", ErrInvalid)
	}
	var raw refTorrent
	if err := Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: torrent: %w", ErrInvalid, err)
	}
	if len(raw.Info) == 0 {
		return nil, fmt.Errorf("%w: torrent has no info dictionary", ErrInvalid)
	}
	info, hybrid, err := refParseInfo(raw.Info)
	if err != nil {
		return nil, err
	}
	mi := &MetaInfo{
		Info:      info,
		InfoBytes: raw.Info, // a sub-slice of data, which only we hold
		InfoHash:  sha1.Sum(raw.Info),
		Hybrid:    hybrid,
	}
	mi.Announce = rawString(raw.Announce)
	mi.AnnounceList = rawTiers(raw.AnnounceList)
	if len(mi.AnnounceList) == 0 && mi.Announce != "" {
		mi.AnnounceList = [][]string{{mi.Announce}}
	}
	mi.WebSeeds = rawStrings(raw.URLList)
	mi.HTTPSeeds = rawStrings(raw.HTTPSeeds)
	mi.Nodes = rawNodes(raw.Nodes)
	mi.Comment = rawString(raw.CommentUTF8)
	if mi.Comment == "" {
		mi.Comment = rawString(raw.Comment)
	}
	mi.CreatedBy = rawString(raw.CreatedBy)
	if n, ok := rawInt(raw.CreationDate); ok && n > 0 && n < 1<<40 {
		mi.CreationDate = time.Unix(n, 0).UTC()
	}
	return mi, nil
}

func refParseInfo(data []byte) (*Info, bool, error) {
	if len(data) == 0 || data[0] != 'd' {
		return nil, false, invalidf("info is not a dictionary")
	}
	var raw refInfo
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
		if in.TotalLength, in.Files, err = refParseFiles(raw.Files, len(in.Name)); err != nil {
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

func refParseFiles(list RawMessage, nameLen int) (int64, []File, error) {
	if len(list) == 0 || list[0] != 'l' {
		return 0, nil, invalidf("info files: not a list")
	}
	var (
		total int64
		files []File
		spans []refSpan
		arena strings.Builder // becomes the paths' string without a copy
		comps int
		f     fileFields
		d     = decoder{data: list, pos: 1}
	)
	arena.Grow(len(list) / 2) // paths are about half of a typical file list
	for i := 0; ; i++ {
		if d.pos >= len(list) {
			return 0, nil, invalidf("info files: unterminated list")
		}
		if list[d.pos] == 'e' {
			if d.pos != len(list)-1 {
				return 0, nil, invalidf("info files: malformed list")
			}
			break
		}
		if i == MaxFiles {
			return 0, nil, invalidf("more than %d files", MaxFiles)
		}
		start := d.pos
		if err := d.skipNested(0); err != nil {
			return 0, nil, fmt.Errorf("%w: info files: %w", ErrInvalid, err)
		}
		if err := decodeFileSlow(list[start:d.pos:d.pos], &f); err != nil {
			return 0, nil, fmt.Errorf("%w: file %d: %w", ErrInvalid, i, err)
		}
		if files == nil {
			// Entries of one torrent are alike: guess the count from the
			// first one's size, so that the slices rarely grow.
			guess := min((len(list)-1)/(d.pos-start)+16, MaxFiles)
			files, spans = make([]File, 0, guess), make([]refSpan, 0, guess)
		}
		if !f.hasLength || f.length < 0 {
			return 0, nil, invalidf("file %d: missing or negative length", i)
		}
		if total > math.MaxInt64-f.length {
			return 0, nil, invalidf("file %d: total length overflows", i)
		}
		offset := total
		total += f.length
		if bytes.IndexByte(f.attr, 'p') >= 0 || isLegacyPad(f.path) {
			continue // pad file: bytes count, never shown
		}
		if bytes.IndexByte(f.attr, 'l') >= 0 {
			if f.length != 0 {
				return 0, nil, invalidf("file %d: symlink with length %d", i, f.length)
			}
			continue // BEP 47 symlink: not materialized
		}
		path := f.path
		if f.hasUTF8 {
			path = f.pathUTF8 // the utf-8 variant wins when present
		}
		if err := checkPath(path, nameLen); err != nil {
			return 0, nil, fmt.Errorf("%w: file %d: %w", ErrInvalid, i, err)
		}
		files = append(files, File{Length: f.length, Offset: offset,
			Executable: bytes.IndexByte(f.attr, 'x') >= 0, Hidden: bytes.IndexByte(f.attr, 'h') >= 0})
		first := arena.Len()
		for j, c := range path {
			if j > 0 {
				arena.WriteByte('/')
			}
			arena.Write(c)
		}
		// The arena is at most the info's size, below MaxTorrentSize.
		spans = append(spans, refSpan{uint32(first), uint32(arena.Len())})
		comps += len(path)
	}
	if len(files) == 0 {
		return 0, nil, invalidf("file list has no files besides padding")
	}
	all := arena.String()
	parts := make([]string, 0, comps)
	for i, sp := range spans {
		first := len(parts)
		p := all[sp.start:sp.end]
		for {
			j := strings.IndexByte(p, '/')
			if j < 0 {
				break
			}
			parts = append(parts, p[:j])
			p = p[j+1:]
		}
		parts = append(parts, p)
		files[i].Path = parts[first:len(parts):len(parts)]
	}
	if err := refCheckCollisions(len(files), func(i int32) string { return all[spans[i].start:spans[i].end] }); err != nil {
		return 0, nil, err
	}
	return total, files, nil
}

// refSpan is where a file's path, joined with "/", lies in the arena.
type refSpan struct{ start, end uint32 }

// refCheckCollisions rejects two files with the same path and a file whose path
// is also a directory of another file (a/b and a/b/c), among n files whose
// paths, joined with "/", path returns. In the order of paths compared component by
// component, a file's descendants come right after it, so comparing
// neighbours finds both; lists are usually in that order already, and are
// sorted (by index, without touching files) only when not.
func refCheckCollisions(n int, path func(int32) string) error {
	at := func(i int) int32 { return int32(i) }
	for i := 1; i < n; i++ {
		if refComparePaths(path(int32(i-1)), path(int32(i))) > 0 {
			order := make([]int32, n)
			for i := range order {
				order[i] = int32(i)
			}
			slices.SortFunc(order, func(a, b int32) int { return refComparePaths(path(a), path(b)) })
			at = func(i int) int32 { return order[i] }
			break
		}
	}
	for i := 1; i < n; i++ {
		p, q := path(at(i-1)), path(at(i))
		switch {
		case p == q:
			return fmt.Errorf("%w: duplicate file path %q", ErrInvalid, p)
		case len(q) > len(p) && q[len(p)] == '/' && q[:len(p)] == p:
			return fmt.Errorf("%w: %q is both a file and a directory", ErrInvalid, p)
		}
	}
	return nil
}

// refComparePaths compares two "/"-joined paths component by component: as
// strings in which "/" sorts below every other byte (components hold no
// NUL, so "/" can stand for it).
func refComparePaths(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		if x < y {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// agreesWithReference loads data with both loaders: they must accept the
// same torrents and give the same result.
func agreesWithReference(t *testing.T, data []byte) {
	t.Helper()
	got, err := parseTorrent(data)
	want, werr := refParseTorrent(data)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%.200q: one-pass loader says %v, the reference %v", data, err, werr)
	}
	if err != nil {
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.200q:\none-pass  %+v\nreference %+v", data, got, want)
	}
	in, err := ParseInfo(got.InfoBytes)
	if err != nil || !reflect.DeepEqual(in, got.Info) {
		t.Fatalf("ParseInfo(InfoBytes) = %+v, %v; Load gave %+v", in, err, got.Info)
	}
}

// referenceSeeds are torrents that reach every branch of the one-pass
// loader: file lists the fast entry decoder declines, keys out of order
// and repeated at each level, values of the wrong type, nesting at the
// depth limit, a name that makes a path too long.
func referenceSeeds() []string {
	info := func(files string, rest string) string {
		return "d5:filesl" + files + "e4:name1:t12:piece lengthi16e6:pieces20:" + strings.Repeat("p", 20) + rest + "e"
	}
	var out []string
	for _, e := range fileEntrySeeds {
		out = append(out, "d4:info"+info(e, "")+"e")
	}
	deep := strings.Repeat("l", MaxDepth-4) + strings.Repeat("e", MaxDepth-4)
	out = append(out,
		"d4:info"+info("d6:lengthi5e4:pathl1:aee", "")+"8:url-list1:xe",
		"d8:announce1:a4:info"+info("d6:lengthi5e4:pathl1:aee", "")+"e",              // unsorted outer keys
		"d4:info"+info("d6:lengthi5e4:pathl1:aee", "")+"4:infoi1ee",                  // info twice
		"d4:info"+info("d6:lengthi5e4:pathl1:aee", "")+"8:announce1:a8:announce1:be", // adjacent duplicate
		"d4:infoi1ee", "d4:info0:e", "d4:infole8:announce1:xe", "d1:xi1ee",
		"d4:info"+info("d6:lengthi5e4:pathl1:aee", "")+"ex",
		"d4:info"+info("d6:lengthi5e4:pathl1:a1:x"+deep+"ee", "")+"e",
		"d4:info"+info("d6:lengthi5e1:x"+deep+"4:pathl1:aee", "")+"e",
		"d4:info"+info("d6:lengthi5e1:x"+deep+"l"+"e"+"4:pathl1:aee", "")+"e",
		"d4:info"+info("d6:lengthi5e4:pathl"+strings.Repeat("250:"+strings.Repeat("x", 250), 16)+"1:aee", "")+"e",
		"d4:info"+info("d6:lengthi5e4:pathl"+strings.Repeat("250:"+strings.Repeat("x", 250), 16)+"ee", "")+"e",
		"d4:info"+"d5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e4:name1:t4:name1:u12:piece lengthi16e6:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d4:name1:t5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e12:piece lengthi16e6:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d5:filesi1e4:name1:t12:piece lengthi16e6:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e6:lengthi5e4:name1:t12:piece lengthi16e6:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e4:namei1e12:piece lengthi16e6:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e4:name1:t12:piece length2:166:pieces20:"+strings.Repeat("p", 20)+"ee",
		"d4:info"+"d5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e12:meta versioni2e4:name1:t12:piece lengthi16ee",
		"d4:info"+"d9:file treede5:filesl"+"d6:lengthi5e4:pathl1:aee"+"e4:name1:t12:piece lengthi16ee",
	)
	return out
}

func TestLoadAgreesWithReference(t *testing.T) {
	for _, s := range referenceSeeds() {
		agreesWithReference(t, []byte(s))
	}
	// Long file lists, hashed beside the parse: good, with a bad path at
	// the end (the hasher is stopped), and cut short.
	big := manyFilesTorrent(t, 30_000)
	if len(big) < hashAheadMin+2*hashChunk {
		t.Fatalf("a torrent of %d bytes does not reach the hasher", len(big))
	}
	agreesWithReference(t, big)
	bad := bytes.Replace(big, []byte("11:f029999.bin"), []byte("11:f02999/.bin"), 1)
	if bytes.Equal(bad, big) {
		t.Fatal("no last file to spoil")
	}
	agreesWithReference(t, bad)
	agreesWithReference(t, big[:len(big)-1000])
	// A short list before a long pieces string: the guessed room is
	// given back.
	short, err := Marshal(map[string]any{"info": map[string]any{"name": "t", "piece length": 16,
		"pieces": make([]byte, 3*(100<<10)/16*HashSize), "files": []any{
			map[string]any{"length": 100 << 10, "path": []any{"a", "b"}},
			map[string]any{"length": 100 << 10, "path": []any{"a", "c"}, "attr": "p"},
			map[string]any{"length": 100 << 10, "path": []any{"d"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	agreesWithReference(t, short)
	if mi, err := Load(bytes.NewReader(short)); err != nil || cap(mi.Info.Files) > 18 || cap(mi.Info.Files[0].Path) != 2 {
		t.Errorf("short list: %v, room for %d files kept", err, cap(mi.Info.Files))
	}
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "*.torrent"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		agreesWithReference(t, b)
	}
}

func FuzzLoadAgreesWithReference(f *testing.F) {
	addFixtureSeeds(f)
	for _, s := range referenceSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { agreesWithReference(t, data) })
}
