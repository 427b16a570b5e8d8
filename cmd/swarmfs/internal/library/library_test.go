package library_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/metainfo"
)

const hexHash = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36"

func TestParseSource(t *testing.T) {
	tb := librarytest.MakeTorrent(t, "album", map[string]int{"a.flac": 100, "b/c.txt": 5})
	src, err := library.ParseSource(tb)
	if err != nil || src.Meta == nil || src.Name() != "album" || len(src.Meta.Info.Files) != 2 {
		t.Fatalf("torrent: %+v, %v", src, err)
	}
	src, err = library.ParseSource([]byte("\n  magnet:?xt=urn:btih:" + hexHash + "&dn=movie \n"))
	if err != nil || src.Magnet == nil || src.Name() != "movie" || src.InfoHash().String() != hexHash {
		t.Fatalf("magnet: %+v, %v", src, err)
	}
	for _, bad := range []string{"", "hello", "magnet:?xt=urn:btih:zz", "d4:infoi1ee", tb2half(tb)} {
		if _, err := library.ParseSource([]byte(bad)); !errors.Is(err, library.ErrBadSource) {
			t.Errorf("ParseSource(%.20q) = %v, want ErrBadSource", bad, err)
		}
	}
}

// tb2half returns the first half of a torrent, as a half-written file holds.
func tb2half(b []byte) string { return string(b[:len(b)/2]) }

func TestFind(t *testing.T) {
	f := librarytest.NewFake()
	h1, _ := metainfo.ParseHash(hexHash)
	h2, h3 := metainfo.Hash{1}, metainfo.Hash{2}
	f.Put(h1, "one", nil, nil, nil)
	f.Put(h2, "twin", nil, nil, nil)
	f.Put(h3, "twin", nil, nil, nil)
	if got, err := library.Find(f, "one"); err != nil || got.InfoHash != h1 {
		t.Errorf("by name: %v %v", got.InfoHash, err)
	}
	if got, err := library.Find(f, "D2474E86C95B19B8BCFDB92BC12C9D44667CFA36"); err != nil || got.InfoHash != h1 {
		t.Errorf("by upper-case hash: %v %v", got.InfoHash, err)
	}
	if _, err := library.Find(f, "twin"); !errors.Is(err, library.ErrAmbiguous) {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := library.Find(f, "none"); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}

func TestTorrentJSONRoundTrip(t *testing.T) {
	f := librarytest.NewFake()
	h, _ := metainfo.ParseHash(hexHash)
	f.Put(h, "x <y>", []string{"a/b.mkv", "c"}, [][]byte{make([]byte, 10), make([]byte, 3)}, nil)
	want, _ := f.Torrent(h)
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"infohash":"`+hexHash+`"`)) || !bytes.Contains(b, []byte(`"progress":0.25`)) {
		t.Errorf("JSON lacks the hex hash or progress: %s", b)
	}
	var got library.Torrent
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if err := json.Unmarshal([]byte(`{"infohash":"nothex"}`), &got); err == nil {
		t.Error("a bad info hash decoded")
	}
}

func FuzzParseSource(f *testing.F) {
	f.Add([]byte("magnet:?xt=urn:btih:" + hexHash))
	f.Add([]byte("d4:infod4:name1:xee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := library.ParseSource(b)
		if err != nil {
			if !errors.Is(err, library.ErrBadSource) {
				t.Fatalf("error does not wrap ErrBadSource: %v", err)
			}
			return
		}
		if (src.Meta == nil) == (src.Magnet == nil) {
			t.Fatalf("want exactly one of Meta and Magnet: %+v", src)
		}
		if src.Name() == "" {
			t.Fatalf("no name: %+v", src)
		}
	})
}
