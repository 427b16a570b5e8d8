package webseed

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestMain fails the run when goroutines of this package outlive the tests.
func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/webseed."))
}

// fspec is one file of a test torrent; pad makes a BEP 47 pad file of
// zeros that is not written to disk.
type fspec struct {
	path   string // "a/b.bin"; "" for the only file of a single-file torrent
	length int64
	pad    bool
}

// fixture is a test torrent written below dir, the directory a server
// serves: dir/<name> is the file of a single-file torrent or the top
// directory of a multi-file one.
type fixture struct {
	info    *metainfo.Info
	raw     []byte // bencoded info dictionary
	content []byte // the torrent's bytes, pads included
	dir     string
}

// padded inserts a pad file after every file but the last so that each
// next file starts on a piece boundary, as BEP 47 creators do.
func padded(pieceLen int64, files []fspec) []fspec {
	var out []fspec
	var off int64
	for i, f := range files {
		out = append(out, f)
		off += f.length
		if rem := off % pieceLen; rem != 0 && i < len(files)-1 {
			pad := pieceLen - rem
			out = append(out, fspec{path: ".pad/" + strconv.FormatInt(pad, 10), length: pad, pad: true})
			off += pad
		}
	}
	return out
}

// makeFixture writes pseudo-random files and builds their info dictionary
// by hand (metainfo.Create makes no pad files).
func makeFixture(t testing.TB, name string, pieceLen int64, files []fspec, seed uint64) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir()}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type entry struct {
		Attr   string   `bencode:"attr,omitempty"`
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	var entries []entry
	for _, f := range files {
		data := make([]byte, f.length)
		if !f.pad {
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			p := filepath.Join(fx.dir, name, filepath.FromSlash(f.path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fx.content = append(fx.content, data...)
		e := entry{Length: f.length, Path: strings.Split(f.path, "/")}
		if f.pad {
			e.Attr = "p"
		}
		entries = append(entries, e)
	}
	var pieces []byte
	for off := int64(0); off < int64(len(fx.content)); off += pieceLen {
		h := sha1.Sum(fx.content[off:min(off+pieceLen, int64(len(fx.content)))])
		pieces = append(pieces, h[:]...)
	}
	info := struct {
		Files       []entry `bencode:"files,omitempty"`
		Length      *int64  `bencode:"length"`
		Name        string  `bencode:"name"`
		PieceLength int64   `bencode:"piece length"`
		Pieces      []byte  `bencode:"pieces"`
	}{Name: name, PieceLength: pieceLen, Pieces: pieces}
	if len(files) == 1 && files[0].path == "" {
		info.Length = &files[0].length // written at dir/name
	} else {
		info.Files = entries
	}
	raw, err := metainfo.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if fx.info, err = metainfo.ParseInfo(raw); err != nil {
		t.Fatal(err)
	}
	fx.raw = raw
	return fx
}

// verify checks data against piece i's hash.
func (fx *fixture) verify(i int, data []byte) bool {
	return sha1.Sum(data) == [20]byte(fx.info.Pieces[i])
}

// fetchAll plays the picker: every piece from the first seed that is
// Usable and delivers bytes that pass the hash check; a seed whose piece
// fails is charged with Failed. It returns the first piece no seed could
// give, with the errors, or -1.
func fetchAll(ctx context.Context, fx *fixture, seeds ...*Seed) (int, error) {
	buf := make([]byte, fx.info.PieceLength)
	for i := range fx.info.NumPieces() {
		var errs []error
		ok := false
		for _, s := range seeds {
			if !s.Usable(i) {
				continue
			}
			if err := s.Fetch(ctx, i, buf); err != nil {
				errs = append(errs, err)
				continue
			}
			if !fx.verify(i, buf[:fx.info.PieceSize(i)]) {
				s.Failed(i)
				errs = append(errs, fmt.Errorf("%s: piece %d: hash mismatch", s.URL(), i))
				continue
			}
			ok = true
			break
		}
		if !ok {
			return i, errors.Join(errs...)
		}
	}
	return -1, nil
}

// startNginx serves root with nginx (enginetest.StartNginx).
func startNginx(t testing.TB, root string) string { return enginetest.StartNginx(t, root) }

// newSeed makes a seed with short timings for tests and closes it at the
// end of the test.
func newSeed(t testing.TB, url string, fx *fixture, cfg Config) *Seed {
	t.Helper()
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 5 * time.Millisecond
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 10 * time.Millisecond
	}
	s, err := New(url, fx.info, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// parseHop parses the escaped path "/hop/N/rest" of the redirect test.
func parseHop(path string) (n int, rest string, ok bool) {
	p, ok := strings.CutPrefix(path, "/hop/")
	if !ok {
		return 0, "", false
	}
	num, tail, ok := strings.Cut(p, "/")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	return n, "/" + tail, err == nil
}
