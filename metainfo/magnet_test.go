package metainfo

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const hexHash = "74b00f163d092c80144d8d328b826d256f3e6e5f"

func TestParseMagnet(t *testing.T) {
	h, _ := ParseHash(hexHash)
	tests := []struct {
		uri  string
		want Magnet
	}{
		{"magnet:?xt=urn:btih:" + hexHash, Magnet{InfoHash: h}},
		{"magnet:?xt=urn:btih:" + strings.ToUpper(hexHash), Magnet{InfoHash: h}},
		// base32 of the same hash, upper and lower case
		{"magnet:?xt=urn:btih:OSYA6FR5BEWIAFCNRUZIXATNEVXT43S7", Magnet{InfoHash: h}},
		{"MAGNET:?xt=urn:btih:osya6fr5bewiafcnruzixatnevxt43s7", Magnet{InfoHash: h}},
		{"magnet:?xt=urn:btih:" + hexHash + "&dn=My+File%21&xl=8196&tr=http%3A%2F%2Fa%2Fann&tr=udp://b:1&tr=http%3A%2F%2Fa%2Fann" +
			"&x.pe=127.0.0.1:6881&x.pe=[::1]:6882&ws=http://w/&so=0-3&foo=bar",
			Magnet{InfoHash: h, Name: "My File!", Length: 8196, Trackers: []string{"http://a/ann", "udp://b:1"},
				Peers: []string{"127.0.0.1:6881", "[::1]:6882"}, WebSeeds: []string{"http://w/"}}},
		// hybrid magnet: btih and btmh both present
		{"magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e&xt=urn:btih:" + hexHash,
			Magnet{InfoHash: h}},
		// numbered variants
		{"magnet:?xt.1=urn:btih:" + hexHash + "&tr.2=http://b/&tr.1=http://a/", Magnet{InfoHash: h, Trackers: []string{"http://a/", "http://b/"}}},
	}
	for _, tt := range tests {
		got, err := ParseMagnet(tt.uri)
		if err != nil {
			t.Errorf("%s: %v", tt.uri, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.uri, *got, tt.want)
		}
		again, err := ParseMagnet(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %s via %s: %+v, %v", tt.uri, got.String(), again, err)
		}
	}
}

func TestParseMagnetErrors(t *testing.T) {
	tests := []struct {
		uri  string
		want error
	}{
		{"", ErrInvalid},
		{"http://example.com/?xt=urn:btih:" + hexHash, ErrInvalid},
		{"magnet:?dn=x", ErrInvalid},
		{"magnet:?xt=urn:btih:abc", ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash[:39] + "g", ErrInvalid},
		{"magnet:?xt=urn:btih:OSYA6FR5BEWIAFCNRUZILATNEVXT43S1", ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash + "&xt=urn:btih:" + strings.Repeat("0", 40), ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash + "&x.pe=nohost", ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash + "&x.pe=1.2.3.4:99999", ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash + "&xl=-1", ErrInvalid},
		{"magnet:?xt=urn:btih:" + hexHash + "&dn=%zz", ErrInvalid},
		{"magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e", ErrUnsupported},
		{"magnet:?xt=urn:ed2k:31D6CFE0D16AE931B73C59D7E0C089C0", ErrUnsupported},
		{"magnet:?xt=urn:btih:" + hexHash + "&tr=" + strings.Repeat("a", MaxMagnetLength), ErrInvalid},
	}
	for _, tt := range tests {
		_, err := ParseMagnet(tt.uri)
		if !errors.Is(err, tt.want) {
			t.Errorf("%.80s: err %v, want %v", tt.uri, err, tt.want)
		}
	}
}

func TestMetaInfoMagnet(t *testing.T) {
	mi, err := LoadFile(filepath.Join(fixtureDir, "good", "mktorrent-multi.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	m := mi.Magnet()
	if m.InfoHash != mi.InfoHash || m.Name != mi.Info.Name || m.Length != mi.Info.TotalLength ||
		len(m.Trackers) != 3 || len(m.WebSeeds) != 1 {
		t.Fatalf("magnet %+v", m)
	}
	back, err := ParseMagnet(m.String())
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip %s: %+v %v", m, back, err)
	}
}
