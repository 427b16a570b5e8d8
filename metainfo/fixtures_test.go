package metainfo

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The fixtures live in the repository's top-level testdata directory and are
// made by scripts/gen-testdata.sh with mktorrent, transmission-create and
// libtorrent; golden.json holds what libtorrent reported for each.
const fixtureDir = "../testdata/torrents"

type goldenFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
}

type goldenTorrent struct {
	InfoHash    string       `json:"info_hash"`
	Name        string       `json:"name"`
	PieceLength int64        `json:"piece_length"`
	NumPieces   int          `json:"num_pieces"`
	TotalSize   int64        `json:"total_size"`
	Files       []goldenFile `json:"files"`
}

type golden struct {
	Good map[string]goldenTorrent `json:"good"`
	Bad  map[string]string        `json:"bad"`
}

func readGolden(t testing.TB) golden {
	t.Helper()
	b, err := os.ReadFile("../testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Good) == 0 || len(g.Bad) == 0 {
		t.Fatal("golden.json lists no fixtures")
	}
	return g
}

// summarize describes a loaded torrent the way libtorrent's reports do: file
// paths include the torrent name for multi-file torrents, pad files (BEP 47
// and the legacy .pad/ directory) are left out.
func summarize(mi *MetaInfo) goldenTorrent {
	in := mi.Info
	s := goldenTorrent{
		InfoHash:    mi.InfoHash.String(),
		Name:        in.Name,
		PieceLength: in.PieceLength,
		NumPieces:   in.NumPieces(),
		TotalSize:   in.TotalLength,
	}
	for _, f := range in.Files {
		p := f.DisplayPath()
		if !in.SingleFile {
			p = in.Name + "/" + p
		}
		s.Files = append(s.Files, goldenFile{Path: p, Size: f.Length, Offset: f.Offset})
	}
	return s
}

// dropLegacyPads removes files libtorrent lists but swarmfs hides as pads
// by the pre-BEP 47 ".pad/" convention, which libtorrent does not know.
func dropLegacyPads(g goldenTorrent) goldenTorrent {
	var files []goldenFile
	for _, f := range g.Files {
		if strings.HasPrefix(f.Path, g.Name+"/.pad/") {
			continue
		}
		files = append(files, f)
	}
	g.Files = files
	return g
}

func compareSummary(t *testing.T, name string, got, want goldenTorrent) {
	t.Helper()
	want = dropLegacyPads(want)
	if got.InfoHash != want.InfoHash || got.Name != want.Name || got.PieceLength != want.PieceLength ||
		got.NumPieces != want.NumPieces || got.TotalSize != want.TotalSize {
		t.Errorf("%s: got hash %s name %q pieces %d x %d total %d; want hash %s name %q pieces %d x %d total %d",
			name, got.InfoHash, got.Name, got.NumPieces, got.PieceLength, got.TotalSize,
			want.InfoHash, want.Name, want.NumPieces, want.PieceLength, want.TotalSize)
	}
	if len(got.Files) != len(want.Files) {
		t.Errorf("%s: %d files %v, want %d %v", name, len(got.Files), got.Files, len(want.Files), want.Files)
		return
	}
	for i := range got.Files {
		if got.Files[i] != want.Files[i] {
			t.Errorf("%s: file %d = %+v, want %+v", name, i, got.Files[i], want.Files[i])
		}
	}
}

func TestGoldenFixtures(t *testing.T) {
	g := readGolden(t)
	names := sortedKeys(g.Good)
	for _, name := range names {
		mi, err := LoadFile(filepath.Join(fixtureDir, "good", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		compareSummary(t, name, summarize(mi), g.Good[name])
		checkInvariants(t, mi)
	}
	// Every fixture on disk is in the golden file.
	ents, err := os.ReadDir(filepath.Join(fixtureDir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(g.Good) {
		t.Errorf("%d good fixtures on disk, %d in golden.json", len(ents), len(g.Good))
	}
}

func TestBadFixtures(t *testing.T) {
	g := readGolden(t)
	for _, name := range sortedKeys(g.Bad) {
		_, err := LoadFile(filepath.Join(fixtureDir, "bad", name+".torrent"))
		want := ErrInvalid
		if g.Bad[name] == "unsupported" {
			want = ErrUnsupported
		}
		switch {
		case err == nil:
			t.Errorf("%s: loaded without error", name)
		case !errors.Is(err, want):
			t.Errorf("%s: error %q does not wrap %v", name, err, want)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: error spans lines: %q", name, err)
		default:
			t.Logf("%s: %v", name, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(fixtureDir, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(g.Bad) {
		t.Errorf("%d bad fixtures on disk, %d in golden.json", len(ents), len(g.Bad))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkInvariants verifies geometry facts every loaded torrent must satisfy.
func checkInvariants(t testing.TB, mi *MetaInfo) {
	t.Helper()
	in := mi.Info
	if in.NumPieces() == 0 || in.TotalLength <= 0 || in.PieceLength <= 0 {
		t.Fatalf("degenerate geometry: %d pieces, total %d, piece length %d", in.NumPieces(), in.TotalLength, in.PieceLength)
	}
	var sum int64
	for i := range in.NumPieces() {
		sz := in.PieceSize(i)
		if sz <= 0 || sz > in.PieceLength {
			t.Fatalf("piece %d size %d", i, sz)
		}
		sum += sz
	}
	if sum != in.TotalLength {
		t.Fatalf("piece sizes sum to %d, total %d", sum, in.TotalLength)
	}
	prevEnd := int64(0)
	for i, f := range in.Files {
		if f.Offset < prevEnd || f.Length < 0 || f.Offset+f.Length > in.TotalLength {
			t.Fatalf("file %d %q at %d+%d overlaps or leaves the torrent (prev end %d, total %d)",
				i, f.DisplayPath(), f.Offset, f.Length, prevEnd, in.TotalLength)
		}
		prevEnd = f.Offset + f.Length
		for _, c := range f.Path {
			if checkComponent(c) != nil {
				t.Fatalf("file %d has bad component %q", i, c)
			}
		}
		if f.Length > 0 {
			parts := in.FileParts(f.Offset, f.Length)
			if len(parts) != 1 || parts[0].File != i || parts[0].Length != f.Length {
				t.Fatalf("FileParts of file %d = %+v", i, parts)
			}
		}
	}
	if checkComponent(in.Name) != nil {
		t.Fatalf("bad name %q", in.Name)
	}
}
