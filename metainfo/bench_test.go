package metainfo

import (
	"bytes"
	"crypto/sha1"
	"math/rand/v2"
	"strconv"
	"testing"
)

// bigTorrent builds a torrent with n pieces of 16 KiB over 1000 files and
// random piece hashes, as a realistic large .torrent (about 2 MB for 100k
// pieces).
func bigTorrent(b *testing.B, n int) []byte {
	b.Helper()
	const pl = 16 << 10
	r := rand.New(rand.NewPCG(1, 2))
	pieces := make([]byte, n*HashSize)
	for i := range pieces {
		pieces[i] = byte(r.Uint32())
	}
	total := int64(n) * pl
	const nfiles = 1000
	files := make([]any, nfiles)
	for i := range files {
		l := total / nfiles
		if i == nfiles-1 {
			l = total - l*(nfiles-1)
		}
		files[i] = map[string]any{"length": l, "path": []any{"dir" + strconv.Itoa(i%10), "file" + strconv.Itoa(i) + ".bin"}}
	}
	data, err := Marshal(map[string]any{
		"announce": "http://127.0.0.1:6969/announce",
		"info":     map[string]any{"name": "big", "piece length": pl, "pieces": pieces, "files": files},
	})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// Benchmark100kPieces measures bencode decoding and torrent loading of a
// torrent with 100k pieces, beside copying and SHA-1 hashing the same bytes
// in the same run for scale.
func Benchmark100kPieces(b *testing.B) {
	data := bigTorrent(b, 100_000)
	b.Run("ref-copy", func(b *testing.B) {
		dst := make([]byte, len(data))
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, data)
		}
	})
	b.Run("ref-sha1", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			sha1.Sum(data)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			mi, err := Load(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if mi.Info.NumPieces() != 100_000 {
				b.Fatal("wrong piece count")
			}
		}
	})
}
