package webseed

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// awkwardFiles are names that need percent-encoding in URLs, with BEP 47
// pad files between them and files that share pieces.
func awkwardFiles(pieceLen int64) []fspec {
	return padded(pieceLen, []fspec{
		{path: "dir one/a b.bin", length: 3*pieceLen + 1234},
		{path: "hash#tag.bin", length: pieceLen / 3},
		{path: "100%.bin", length: 2*pieceLen - 7},
		{path: "ünïcödé/файл 文件.bin", length: 5000},
		{path: "q?mark&amp;=+;,:@!$'().bin", length: pieceLen},
		{path: "empty.bin", length: 0},
		{path: "tail", length: 777},
	})
}

// checkRun fetches the whole torrent in one FetchRun and checks every
// piece's hash.
func checkRun(t *testing.T, ctx context.Context, s *Seed, fx *fixture) {
	t.Helper()
	buf := make([]byte, fx.info.PieceLength)
	next := 0
	err := s.FetchRun(ctx, 0, fx.info.NumPieces(), buf, func(p int, data []byte) error {
		if p != next {
			t.Errorf("piece %d delivered, want %d", p, next)
		}
		next++
		if !fx.verify(p, data) {
			t.Errorf("piece %d from FetchRun fails its hash", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != fx.info.NumPieces() {
		t.Fatalf("%d pieces delivered, want %d", next, fx.info.NumPieces())
	}
}

func TestNginxMultiFile(t *testing.T) {
	const pl = 32 << 10
	fx := makeFixture(t, "My Torrent #1 100% ü", pl, awkwardFiles(pl), 1)
	base := startNginx(t, fx.dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Piece by piece, as the picker would, several at once.
	s := newSeed(t, base, fx, Config{MaxConns: 3})
	errs := make(chan error, fx.info.NumPieces())
	for i := range fx.info.NumPieces() {
		go func() {
			buf := make([]byte, fx.info.PieceSize(i))
			err := s.Fetch(ctx, i, buf)
			if err == nil && !fx.verify(i, buf) {
				t.Errorf("piece %d fails its hash", i)
			}
			errs <- err
		}()
	}
	for range fx.info.NumPieces() {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Status(); st.State != StateOK || st.MissingFiles != 0 || st.Faults != 0 {
		t.Fatalf("status after fetching: %+v", st)
	}

	// The whole torrent as one run: one request per non-empty file, pad
	// files never requested, every body byte counted.
	s2 := newSeed(t, base[:len(base)-1], fx, Config{}) // no final "/": still a directory
	checkRun(t, ctx, s2, fx)
	var fileBytes int64
	nonEmpty := 0
	for _, f := range fx.info.Files {
		fileBytes += f.Length
		if f.Length > 0 {
			nonEmpty++
		}
	}
	st := s2.Status()
	if st.Requests != int64(nonEmpty) || st.Downloaded != fileBytes || st.Wasted != 0 {
		t.Fatalf("one run: %d requests, %d bytes, %d wasted; want %d requests, %d bytes, 0 wasted",
			st.Requests, st.Downloaded, st.Wasted, nonEmpty, fileBytes)
	}
}

func TestNginxSingleFile(t *testing.T) {
	const pl = 16 << 10
	fx := makeFixture(t, "single file #2.bin", pl, []fspec{{length: 10*pl + 99}}, 2)
	base := startNginx(t, fx.dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range []string{
		base,                                // a directory: the name is appended
		base + url.PathEscape(fx.info.Name), // the file itself
		base + url.PathEscape(fx.info.Name) + "#frag", // fragments are not sent
	} {
		s := newSeed(t, u, fx, Config{})
		if i, err := fetchAll(ctx, fx, s); err != nil {
			t.Fatalf("%s: piece %d: %v", u, i, err)
		}
		checkRun(t, ctx, s, fx)
	}
}
