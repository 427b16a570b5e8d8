package metainfo

import (
	"bytes"
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// BenchmarkCreate hashes a 32 MiB file with one worker and with all cores,
// beside SHA-1 of the same bytes from memory on one core (the page cache
// makes the file reads nearly free after the first run).
func BenchmarkCreate(b *testing.B) {
	const size = 32 << 20
	dir := b.TempDir()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("ref-sha1-memory", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sha1.Sum(data)
		}
	})
	for _, w := range []int{1, 0} {
		name := "workers=" + strconv.Itoa(w)
		if w == 0 {
			name = "workers=all"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Create(p, CreateOptions{PieceLength: 256 << 10, NoDate: true, Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// manyFilesTorrent builds a torrent of n files of 4 KiB in directories of
// 100 below directories of 10 ("d007/s3/f000042.bin"), the shape of the
// 200,000-file torrent of fs.BenchmarkManyFiles.
func manyFilesTorrent(tb testing.TB, n int) []byte {
	tb.Helper()
	const fileLen, pieceLen = 4 << 10, 4 << 20
	files := make([]any, n)
	for i := range files {
		files[i] = map[string]any{"length": fileLen, "path": []any{
			"d" + strconv.Itoa(1000 + i/1000)[1:], "s" + strconv.Itoa(i/100%10), "f" + strconv.Itoa(1000000 + i)[1:] + ".bin"}}
	}
	total := int64(n) * fileLen
	data, err := Marshal(map[string]any{
		"announce": "http://127.0.0.1:6969/announce",
		"info": map[string]any{"name": "many", "piece length": pieceLen,
			"pieces": make([]byte, (total+pieceLen-1)/pieceLen*HashSize), "files": files},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkLoadManyFiles loads a torrent of 200,000 files (9.6 MB), beside
// SHA-1 of the same bytes (which loading does once) for scale.
func BenchmarkLoadManyFiles(b *testing.B) {
	data := manyFilesTorrent(b, 200_000)
	b.Run("ref-sha1", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sha1.Sum(data)
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Load(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
