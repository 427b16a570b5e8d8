package metainfo

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// addFixtureSeeds adds every .torrent under the top-level testdata to f.
func addFixtureSeeds(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "*.torrent"))
	if len(paths) == 0 {
		f.Fatal("no fixtures to seed from")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDecode(f *testing.F) {
	addFixtureSeeds(f)
	for _, s := range []string{"i0e", "i-1e", "0:", "le", "de", "d1:ai1e1:bl0:ee", "l" + strings.Repeat("l", 70) + "e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(data) {
				t.Fatalf("error %v is not a SyntaxError with an offset inside the input", err)
			}
			return
		}
		// Lenient decode: re-encoding sorts keys; the result decodes
		// strictly to the same value.
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Decode(x)): %v", err)
		}
		var again any
		if err := UnmarshalStrict(enc, &again); err != nil {
			t.Fatalf("strict decode of our own encoding %q: %v", enc, err)
		}
		if !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip changed the value: %#v -> %#v", v, again)
		}
		// Strict decode: the input was canonical, so encoding gives it back.
		var strict any
		if UnmarshalStrict(data, &strict) == nil && !bytes.Equal(enc, data) {
			t.Fatalf("encode(decode(x)) = %q, want %q", enc, data)
		}
	})
}

func FuzzLoad(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		mi, err := Load(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if mi.InfoHash != Hash(sha1.Sum(mi.InfoBytes)) {
			t.Fatal("info hash is not the SHA-1 of the info bytes")
		}
		checkInvariants(t, mi)
		in, err := ParseInfo(mi.InfoBytes)
		if err != nil || !reflect.DeepEqual(in, mi.Info) {
			t.Fatalf("ParseInfo(InfoBytes) = %+v, %v; Load gave %+v", in, err, mi.Info)
		}
		b, err := mi.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		again, err := Load(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded torrent does not load: %v", err)
		}
		// Bytes fills a missing "announce" from the first tier; nothing
		// else may change.
		want := *mi
		if want.Announce == "" && len(want.AnnounceList) > 0 {
			want.Announce = want.AnnounceList[0][0]
		}
		if !reflect.DeepEqual(again, &want) {
			t.Fatalf("re-encode changed the torrent:\n%+v\n%+v", mi, again)
		}
	})
}

func FuzzParseMagnet(f *testing.F) {
	for _, s := range []string{
		"magnet:?xt=urn:btih:" + hexHash + "&dn=a+b&tr=http%3A%2F%2Fa%2F&x.pe=127.0.0.1:1&ws=http://w/&xl=5",
		"magnet:?xt=urn:btih:OSYA6FR5BEWIAFCNRUZIXATNEVXT43S7&tr.1=udp://x:1&tr.2=udp://y:2",
		"magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
		"magnet:?xt=urn:btih:" + hexHash + "&x.pe=[::1]:6881",
		"magnet:?",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		m, err := ParseMagnet(uri)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
			}
			return
		}
		s := m.String()
		again, err := ParseMagnet(s)
		if err != nil {
			t.Fatalf("ParseMagnet(%q) from String: %v", s, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip through %q: %+v != %+v", s, again, m)
		}
	})
}
