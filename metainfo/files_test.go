package metainfo

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fileEntrySeeds are file list entries of every shape the decoder meets.
var fileEntrySeeds = []string{
	"d6:lengthi5e4:pathl1:a1:bee",
	"d4:attr1:x6:lengthi5e4:pathl1:aee",
	"d4:attr1:p6:lengthi5e4:pathl4:.pad1:1ee",
	"d6:lengthi5e4:pathl1:ae10:path.utf-8l2:\xc3\xa9ee",
	"d6:lengthi5e6:md5sum32:0123456789abcdef0123456789abcdef4:pathl1:aee",
	"d4:pathl1:ae6:lengthi5ee",                 // unsorted keys
	"d6:lengthi5e6:lengthi6e4:pathl1:aee",      // duplicate key
	"d4:attri1e6:lengthi5e4:pathl1:aee",        // attr not a string
	"d6:length1:54:pathl1:aee",                 // length not an integer
	"d6:lengthi5e4:pathl1:ai3eee",              // path item not a string
	"d6:lengthi5e4:path1:ae",                   // path not a list
	"d6:lengthi5e4:pathl1:ae10:path.utf-8i1ee", // path.utf-8 not a list
	"d6:lengthi5e4:pathl1:ae1:xd1:yl1:zeee",    // nested unknown key
	"d6:lengthi5e4:pathl1:aeex",                // trailing byte
	"d6:lengthi05e4:pathl1:aee",                // non-canonical integer
	"l6:lengthi5ee",                            // not a dictionary
	"d6:lengthi-1e4:pathl1:aee",                // negative length
}

// TestFileEntryFastAgreesWithUnmarshal decodes each seed both ways: where
// the fast decoder accepts an entry, Unmarshal must give the same fields.
func TestFileEntryFastAgreesWithUnmarshal(t *testing.T) {
	fast := 0
	for _, s := range fileEntrySeeds {
		if checkFileEntry(t, []byte(s)) {
			fast++
		}
	}
	if fast < 5 {
		t.Errorf("the fast decoder took only %d of %d entries", fast, len(fileEntrySeeds))
	}
}

// checkFileEntry compares the two decoders on r and reports whether the
// fast one accepted it.
func checkFileEntry(t *testing.T, r []byte) bool {
	t.Helper()
	var f, g fileFields
	if n, ok := decodeFileFast(r, &f, 0); !ok || n != len(r) {
		return false
	}
	if err := decodeFileSlow(r, &g); err != nil {
		t.Fatalf("%q: fast decoder accepted what Unmarshal rejects: %v", r, err)
	}
	norm := func(x fileFields) fileFields {
		if len(x.attr) == 0 {
			x.attr = nil
		}
		for _, p := range []*[][]byte{&x.path, &x.pathUTF8} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		return x
	}
	if !reflect.DeepEqual(norm(f), norm(g)) {
		t.Fatalf("%q: fast %+v, Unmarshal %+v", r, f, g)
	}
	return true
}

func FuzzFileEntry(f *testing.F) {
	for _, s := range fileEntrySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, r []byte) { checkFileEntry(t, r) })
}

// TestCollisionsUnsorted finds duplicates and file/directory clashes in
// file lists in any order, and accepts near misses.
func TestCollisionsUnsorted(t *testing.T) {
	tests := []struct {
		files []rawEntry
		want  string // "" for no error
	}{
		{[]rawEntry{{"b", 1, ""}, {"a/b", 1, ""}, {"a-b", 1, ""}, {"a.b/c", 1, ""}, {"a", 2, ""}}, `"a" is both`},
		{[]rawEntry{{"z/y", 1, ""}, {"a", 1, ""}, {"z/y", 1, ""}}, `duplicate file path "z/y"`},
		{[]rawEntry{{"a/b/c", 1, ""}, {"a-", 1, ""}, {"a/b", 1, ""}}, `"a/b" is both`},
		{[]rawEntry{{"a/b", 1, ""}, {"a-b/c", 1, ""}, {"a b", 1, ""}, {"ab", 1, ""}, {"a/c", 1, ""}}, ""},
	}
	for _, tt := range tests {
		_, err := ParseInfo(infoBytes(t, 16, tt.files...))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.files, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err %v, want %q", tt.files, err, tt.want)
		}
	}
}

// TestFilePathsShareArena checks that paths come out right when they are
// cut from the shared arena: appending to one never changes another.
func TestFilePathsShareArena(t *testing.T) {
	in := buildInfo(t, 16, rawEntry{"a/bb/ccc", 1, ""}, rawEntry{"pad", 1, "p"}, rawEntry{"d", 1, "x"}, rawEntry{"e/f", 1, "h"})
	want := [][]string{{"a", "bb", "ccc"}, {"d"}, {"e", "f"}}
	for i, f := range in.Files {
		if !reflect.DeepEqual(f.Path, want[i]) {
			t.Errorf("file %d: path %q, want %q", i, f.Path, want[i])
		}
	}
	if !in.Files[1].Executable || !in.Files[2].Hidden || in.Files[1].Offset != 2 {
		t.Errorf("attributes or offsets lost: %+v", in.Files)
	}
	_ = append(in.Files[0].Path, "x")
	if in.Files[1].Path[0] != "d" {
		t.Errorf("appending to one path changed the next: %q", in.Files[1].Path)
	}
}

// TestParseFilesMixedEntries parses a list in which entries the fast
// decoder declines (unsorted keys, a nested unknown key) sit between
// ordinary ones: each entry is read once, from where the last one ended.
func TestParseFilesMixedEntries(t *testing.T) {
	list := "l" + "d6:lengthi1e4:pathl1:aee" +
		"d4:pathl1:be6:lengthi2ee" + // unsorted: decoded by Unmarshal
		"d6:lengthi3e1:xd1:yl1:zee4:pathl1:c1:dee" +
		"d6:lengthi4e4:pathl1:eee" + "e"
	total, files, err := parseFilesOf(list)
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{Path: []string{"a"}, Length: 1}, {Path: []string{"b"}, Length: 2, Offset: 1},
		{Path: []string{"c", "d"}, Length: 3, Offset: 3}, {Path: []string{"e"}, Length: 4, Offset: 6}}
	if total != 10 || !reflect.DeepEqual(files, want) {
		t.Fatalf("total %d, files %+v, want 10, %+v", total, files, want)
	}
	for _, bad := range []string{list + "x", list[:len(list)-1], "l" + "d6:lengthi1e4:pathl1:aee" + "d4:path" + "e"} {
		if _, _, err := parseFilesOf(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", bad, err)
		}
	}
}

// parseFilesOf parses a bencoded file list that must be all of list.
func parseFilesOf(list string) (int64, []File, error) {
	d := decoder{data: []byte(list)}
	if list == "" || list[0] != 'l' {
		return 0, nil, ErrInvalid
	}
	l, err := parseFileList(&d, 0)
	if err == nil && d.pos != len(list) {
		err = fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if err != nil {
		return 0, nil, err
	}
	return l.total, l.files, nil
}
