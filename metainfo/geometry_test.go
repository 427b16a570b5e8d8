package metainfo

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// buildInfo bencodes a multi-file info dictionary from (path, length, attr)
// entries and parses it back, so geometry tests go through the real parser.
func buildInfo(t testing.TB, pl int64, files ...rawEntry) *Info {
	t.Helper()
	b := infoBytes(t, pl, files...)
	in, err := ParseInfo(b)
	if err != nil {
		t.Fatalf("ParseInfo: %v", err)
	}
	return in
}

type rawEntry struct {
	path   string
	length int64
	attr   string
}

func infoBytes(t testing.TB, pl int64, files ...rawEntry) []byte {
	t.Helper()
	type fe struct {
		Attr   string   `bencode:"attr,omitempty"`
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	var total int64
	var list []fe
	for _, f := range files {
		list = append(list, fe{f.attr, f.length, strings.Split(f.path, "/")})
		total += f.length
	}
	n := (total + pl - 1) / pl
	b, err := Marshal(map[string]any{
		"name": "t", "piece length": pl, "pieces": string(make([]byte, n*HashSize)), "files": list,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPieceSizes(t *testing.T) {
	tests := []struct {
		pl, total int64
		want      []int64 // sizes of all pieces
	}{
		{16384, 16384, []int64{16384}},
		{16384, 16385, []int64{16384, 1}},
		{16384, 50001, []int64{16384, 16384, 16384, 849}},
		{4, 3, []int64{3}},
		{4, 12, []int64{4, 4, 4}},
	}
	for _, tt := range tests {
		in := buildInfo(t, tt.pl, rawEntry{"f", tt.total, ""})
		var got []int64
		for i := range in.NumPieces() {
			got = append(got, in.PieceSize(i))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pl %d total %d: sizes %v, want %v", tt.pl, tt.total, got, tt.want)
		}
		if in.PieceSize(-1) != 0 || in.PieceSize(in.NumPieces()) != 0 {
			t.Errorf("out-of-range PieceSize not 0")
		}
	}
}

func TestFilePartsAcrossBoundaries(t *testing.T) {
	// Files: a[0,10) empty@10 b[10,25) pad[25,32) c[32,40) ; piece length 8.
	in := buildInfo(t, 8,
		rawEntry{"a", 10, ""},
		rawEntry{"empty", 0, ""},
		rawEntry{"dir/b", 15, "x"},
		rawEntry{".pad/7", 7, "p"},
		rawEntry{"dir/c", 8, "h"},
	)
	if got := len(in.Files); got != 4 {
		t.Fatalf("%d files, want 4 (pad hidden, empty kept)", got)
	}
	wantFiles := []File{
		{Path: []string{"a"}, Length: 10, Offset: 0},
		{Path: []string{"empty"}, Length: 0, Offset: 10},
		{Path: []string{"dir", "b"}, Length: 15, Offset: 10, Executable: true},
		{Path: []string{"dir", "c"}, Length: 8, Offset: 32, Hidden: true},
	}
	if !reflect.DeepEqual(in.Files, wantFiles) {
		t.Fatalf("files %+v, want %+v", in.Files, wantFiles)
	}
	if in.TotalLength != 40 || in.NumPieces() != 5 {
		t.Fatalf("total %d pieces %d", in.TotalLength, in.NumPieces())
	}
	tests := []struct {
		off, n int64
		want   []FilePart
	}{
		{0, 8, []FilePart{{0, 0, 0, 8}}},
		{8, 8, []FilePart{{0, 8, 8, 2}, {2, 0, 10, 6}}},
		{24, 8, []FilePart{{2, 14, 24, 1}}}, // rest is padding
		{26, 4, nil},                        // only padding
		{30, 10, []FilePart{{3, 0, 32, 8}}},
		{0, 40, []FilePart{{0, 0, 0, 10}, {2, 0, 10, 15}, {3, 0, 32, 8}}},
		{10, 0, nil},
		{39, 100, []FilePart{{3, 7, 39, 1}}},
	}
	for _, tt := range tests {
		got := in.FileParts(tt.off, tt.n)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FileParts(%d, %d) = %+v, want %+v", tt.off, tt.n, got, tt.want)
		}
	}
	spans := []struct {
		file        int
		first, end  int
		description string
	}{
		{0, 0, 2, "a spans pieces 0-1"},
		{1, 1, 1, "empty file spans nothing"},
		{2, 1, 4, "b spans 1-3"},
		{3, 4, 5, "c starts after the pad on a piece boundary"},
	}
	for _, s := range spans {
		f, e := in.FileSpan(in.Files[s.file])
		if f != s.first || e != s.end {
			t.Errorf("%s: FileSpan = [%d,%d), want [%d,%d)", s.description, f, e, s.first, s.end)
		}
	}
}

func TestLegacyPadDirectoryHidden(t *testing.T) {
	in := buildInfo(t, 4, rawEntry{"a", 3, ""}, rawEntry{".pad/1", 1, ""}, rawEntry{"b", 4, ""})
	if len(in.Files) != 2 || in.Files[1].Offset != 4 || in.Files[1].DisplayPath() != "b" {
		t.Fatalf("files %+v", in.Files)
	}
}

func TestPathValidation(t *testing.T) {
	tests := []struct {
		files []rawEntry
		ok    bool
	}{
		{[]rawEntry{{"a/b", 1, ""}, {"a/c", 1, ""}}, true},
		{[]rawEntry{{"a", 1, ""}, {"A", 1, ""}}, true}, // case-sensitive
		{[]rawEntry{{"a", 1, ""}, {"a", 1, ""}}, false},
		{[]rawEntry{{"a/b", 1, ""}, {"a/b/c", 1, ""}}, false},
		{[]rawEntry{{"a/b/c", 1, ""}, {"a/b", 1, ""}}, false},
		{[]rawEntry{{"a/../b", 1, ""}}, false},
		{[]rawEntry{{"./b", 1, ""}}, false},
		{[]rawEntry{{"a//b", 1, ""}}, false},
		{[]rawEntry{{strings.Repeat("x", 256), 1, ""}}, false},
		{[]rawEntry{{strings.Repeat("x", 255), 1, ""}}, true},
		{[]rawEntry{{strings.Repeat("d/", MaxPathDepth-1) + "f", 1, ""}}, true},
		{[]rawEntry{{strings.Repeat("d/", MaxPathDepth) + "f", 1, ""}}, false},
		// PATH_MAX: "t/" and the path, 4095 bytes at most
		{[]rawEntry{{pathOfLength(MaxPathLength - 2), 1, ""}}, true},
		{[]rawEntry{{pathOfLength(MaxPathLength - 1), 1, ""}}, false},
		{[]rawEntry{{"ok", 1, ""}, {pathOfLength(8000), 1, ""}}, false},
		// a pad file's path is never used, so it may collide
		{[]rawEntry{{"a", 1, ""}, {"a", 1, "p"}}, true},
	}
	for _, tt := range tests {
		_, err := ParseInfo(infoBytes(t, 16, tt.files...))
		if (err == nil) != tt.ok {
			t.Errorf("%v: err = %v, want ok=%v", tt.files, err, tt.ok)
		}
	}
}

// pathOfLength returns a path of n bytes made of components of at most
// 250 bytes.
func pathOfLength(n int) string {
	var comps []string
	for n > 0 {
		c := min(n, 250)
		if n-c == 1 {
			c-- // leave room for a component after the separator
		}
		comps = append(comps, strings.Repeat("x", c))
		n -= c + 1
	}
	return strings.Join(comps, "/")
}

func TestPathLengthError(t *testing.T) {
	_, err := ParseInfo(infoBytes(t, 16, rawEntry{"a", 1, ""}, rawEntry{pathOfLength(5000), 1, ""}))
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "file 1: path of 5002 bytes") ||
		!strings.Contains(err.Error(), "PATH_MAX") {
		t.Errorf("err = %v, want an ErrInvalid naming file 1, its length and PATH_MAX", err)
	}
}

func TestParseInfoSingleFile(t *testing.T) {
	b, _ := Marshal(map[string]any{
		"name": "x.bin", "name.utf-8": "ü.bin", "piece length": 4, "length": 9,
		"pieces": string(make([]byte, 60)), "private": 1, "source": "TRK", "attr": "x",
	})
	in, err := ParseInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &Info{Name: "ü.bin", PieceLength: 4, Pieces: make([]Hash, 3), TotalLength: 9, SingleFile: true,
		Private: true, Source: "TRK", Files: []File{{Path: []string{"ü.bin"}, Length: 9, Executable: true}}}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("got %+v\nwant %+v", in, want)
	}
	// The info hash is the SHA-1 of exactly these bytes inside a torrent.
	tb := append(append([]byte("d4:info"), b...), 'e')
	mi, err := Load(strings.NewReader(string(tb)))
	if err != nil {
		t.Fatal(err)
	}
	if mi.InfoHash != Hash(sha1.Sum(b)) {
		t.Fatal("info hash is not the SHA-1 of the info bytes")
	}
}

func TestParseInfoErrors(t *testing.T) {
	base := func(mod func(m map[string]any)) []byte {
		m := map[string]any{"name": "x", "piece length": 16, "length": 20, "pieces": string(make([]byte, 40))}
		mod(m)
		b, _ := Marshal(m)
		return b
	}
	tests := map[string][]byte{
		"no name":          base(func(m map[string]any) { delete(m, "name") }),
		"no piece length":  base(func(m map[string]any) { delete(m, "piece length") }),
		"negative pl":      base(func(m map[string]any) { m["piece length"] = -16 }),
		"no length":        base(func(m map[string]any) { delete(m, "length") }),
		"negative length":  base(func(m map[string]any) { m["length"] = -1 }),
		"both":             base(func(m map[string]any) { m["files"] = []any{map[string]any{"length": 1, "path": []any{"a"}}} }),
		"no pieces":        base(func(m map[string]any) { delete(m, "pieces") }),
		"pieces list":      base(func(m map[string]any) { m["pieces"] = []any{} }),
		"name int":         base(func(m map[string]any) { m["name"] = 3 }),
		"pad single":       base(func(m map[string]any) { m["attr"] = "p" }),
		"file tree only":   base(func(m map[string]any) { delete(m, "pieces"); m["file tree"] = map[string]any{} }),
		"empty files":      base(func(m map[string]any) { delete(m, "length"); m["files"] = []any{} }),
		"not a dictionary": []byte("li1ee"),
		"empty":            nil,
	}
	for name, b := range tests {
		if _, err := ParseInfo(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "metainfo: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func ExampleInfo_FileParts() {
	b, _ := Marshal(map[string]any{"name": "t", "piece length": 8, "pieces": string(make([]byte, 100)),
		"files": []any{map[string]any{"length": 10, "path": []any{"a"}}, map[string]any{"length": 30, "path": []any{"b"}}}})
	in, _ := ParseInfo(b)
	for _, p := range in.FileParts(in.PieceOffset(1), in.PieceSize(1)) {
		fmt.Printf("%s [%d,+%d)\n", in.Files[p.File].DisplayPath(), p.FileOffset, p.Length)
	}
	// Output:
	// a [8,+2)
	// b [0,+6)
}
