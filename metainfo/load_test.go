package metainfo

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func torrentBytes(t testing.TB, outer map[string]any) []byte {
	t.Helper()
	if _, ok := outer["info"]; !ok {
		outer["info"] = RawMessage(infoBytes(t, 16, rawEntry{"a", 20, ""}))
	}
	b, err := Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadOuterKeys(t *testing.T) {
	b := torrentBytes(t, map[string]any{
		"announce":      "http://a/announce",
		"announce-list": []any{[]any{"http://a/announce", "http://b/announce"}, []any{}, []any{"udp://c:1", 5}, "junk"},
		"url-list":      []any{"http://w1/", "http://w1/", "http://w2/"},
		"httpseeds":     []any{"http://h/"},
		"nodes":         []any{[]any{"127.0.0.1", 6881}, []any{"::1", 6882}, []any{"bad"}, []any{"x", 0}},
		"comment":       "plain",
		"comment.utf-8": "ütf",
		"created by":    "test",
		"creation date": 1700000000,
	})
	mi, err := Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	wantTiers := [][]string{{"http://a/announce", "http://b/announce"}, {"udp://c:1"}}
	if !reflect.DeepEqual(mi.Trackers(), wantTiers) {
		t.Errorf("tiers %q, want %q", mi.Trackers(), wantTiers)
	}
	if !reflect.DeepEqual(mi.WebSeeds, []string{"http://w1/", "http://w2/"}) || !reflect.DeepEqual(mi.HTTPSeeds, []string{"http://h/"}) {
		t.Errorf("web seeds %q http seeds %q", mi.WebSeeds, mi.HTTPSeeds)
	}
	if !reflect.DeepEqual(mi.Nodes, []string{"127.0.0.1:6881", "[::1]:6882"}) {
		t.Errorf("nodes %q", mi.Nodes)
	}
	if mi.Comment != "ütf" || mi.CreatedBy != "test" || !mi.CreationDate.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("comment %q created by %q date %v", mi.Comment, mi.CreatedBy, mi.CreationDate)
	}

	// Re-encoding keeps the info bytes, so the hash, and the outer keys.
	again, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	mi2, err := Load(bytes.NewReader(again))
	if err != nil {
		t.Fatal(err)
	}
	if mi2.InfoHash != mi.InfoHash || !bytes.Equal(mi2.InfoBytes, mi.InfoBytes) {
		t.Fatal("info hash changed on re-encode")
	}
	mi2.Info, mi.Info = nil, nil
	if !reflect.DeepEqual(mi, mi2) {
		t.Errorf("re-encode changed fields:\n%+v\n%+v", mi, mi2)
	}
}

func TestLoadURLListString(t *testing.T) {
	mi, err := Load(bytes.NewReader(torrentBytes(t, map[string]any{"url-list": "http://w/", "announce": "http://a/"})))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mi.WebSeeds, []string{"http://w/"}) || !reflect.DeepEqual(mi.AnnounceList, [][]string{{"http://a/"}}) {
		t.Fatalf("web seeds %q tiers %q", mi.WebSeeds, mi.AnnounceList)
	}
	b, _ := mi.Bytes()
	if bytes.Contains(b, []byte("announce-list")) {
		t.Errorf("single tracker re-encoded with an announce-list: %q", b)
	}
}

func TestLoadLenientOuterValues(t *testing.T) {
	// Wrong types in optional outer keys are ignored, as libtorrent does.
	mi, err := Load(bytes.NewReader(torrentBytes(t, map[string]any{
		"announce": 7, "announce-list": "x", "url-list": 3, "comment": []any{}, "creation date": "y", "nodes": "z",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Trackers() != nil || mi.WebSeeds != nil || mi.Comment != "" || !mi.CreationDate.IsZero() || mi.Nodes != nil {
		t.Fatalf("malformed optional keys leaked through: %+v", mi)
	}
}

func TestLoadHybrid(t *testing.T) {
	mi, err := LoadFile(filepath.Join(fixtureDir, "good", "libtorrent-hybrid.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if !mi.Hybrid {
		t.Error("hybrid torrent not marked Hybrid")
	}
	mi, err = LoadFile(filepath.Join(fixtureDir, "good", "libtorrent-v1-multi.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if mi.Hybrid {
		t.Error("v1 torrent marked Hybrid")
	}
}

func TestLoadSizeCap(t *testing.T) {
	big := bytes.NewReader(make([]byte, MaxTorrentSize+1))
	_, err := Load(big)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized input: %v", err)
	}
}

func TestLoadFixtureFields(t *testing.T) {
	mi, err := LoadFile(filepath.Join(fixtureDir, "good", "mktorrent-multi.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	wantTiers := [][]string{{"http://127.0.0.1:6969/announce", "http://127.0.0.2:6969/announce"}, {"udp://127.0.0.3:6969"}}
	if !reflect.DeepEqual(mi.Trackers(), wantTiers) || !mi.Info.Private || mi.Comment != "multi-file fixture" ||
		!reflect.DeepEqual(mi.WebSeeds, []string{"http://127.0.0.1:8080/seed/"}) {
		t.Fatalf("mktorrent fields: tiers %q private %v comment %q web seeds %q", mi.Trackers(), mi.Info.Private, mi.Comment, mi.WebSeeds)
	}
	mi, err = LoadFile(filepath.Join(fixtureDir, "good", "handmade-pads.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mi.WebSeeds, []string{"http://127.0.0.1:8080/pads/"}) || len(mi.HTTPSeeds) != 1 || len(mi.Nodes) != 2 {
		t.Fatalf("handmade fields: %+v", mi)
	}
	last := mi.Info.Files[len(mi.Info.Files)-1]
	if !last.Executable || !last.Hidden {
		t.Errorf("attr xh not applied: %+v", last)
	}
}

func TestLoadCapsListAllocations(t *testing.T) {
	// MaxFiles+1 tiny file entries: rejected at the first one past the
	// cap, so that no more than MaxFiles are ever held.
	var b bytes.Buffer
	b.WriteString("d4:infod5:filesl")
	for range MaxFiles + 1 {
		b.WriteString("d6:lengthi1e4:pathl1:aee")
	}
	b.WriteString("e4:name1:x12:piece lengthi16384e6:pieces0:ee")
	_, err := Load(&b)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many files: %v", err)
	}
	// A huge announce-list is truncated, not decoded whole.
	b.Reset()
	b.WriteString("d13:announce-listl")
	for range 100000 {
		b.WriteString("l1:ue")
	}
	b.WriteString("e4:info")
	b.Write(infoBytes(t, 16, rawEntry{"a", 20, ""}))
	b.WriteString("e")
	mi, err := Load(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.AnnounceList) != maxURLs {
		t.Fatalf("%d tiers kept, want the cap %d", len(mi.AnnounceList), maxURLs)
	}
}
