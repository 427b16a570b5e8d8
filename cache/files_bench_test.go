package cache

import (
	"crypto/sha1"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

// BenchmarkFilesVerify measures verifying a torrent's files in place with
// no state (what `seed DIR` of foreign data does) with one worker and with
// GOMAXPROCS workers, beside a sequential sha1sum-like pass over the same
// files, in the same run. SWARMFS_BENCH_MIB sets the size (default 256
// MiB, in 8 files, 1 MiB pieces). The files are read from the page cache
// after the first pass; on a cold cache the disk bounds all three.
func BenchmarkFilesVerify(b *testing.B) {
	mib := 256
	if n, err := strconv.Atoi(os.Getenv("SWARMFS_BENCH_MIB")); err == nil && n > 0 {
		mib = n
	}
	total := int64(mib) << 20
	const pl = 1 << 20
	info := &metainfo.Info{Name: "bench", PieceLength: pl, TotalLength: total}
	payload := make([]byte, total)
	rand.NewChaCha8([32]byte{7}).Read(payload)
	var off int64
	for i := range 8 {
		n := total/8 + int64(i*1001) - 3500
		if i == 7 {
			n = total - off
		}
		info.Files = append(info.Files, metainfo.File{Path: []string{fmt.Sprintf("f%d.bin", i)}, Length: n, Offset: off})
		off += n
	}
	tt := hashTorrent(info, payload)
	dir := b.TempDir()
	for _, f := range info.Files {
		p := filePath(dir, tt, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, payload[f.Offset:f.Offset+f.Length], 0o644); err != nil {
			b.Fatal(err)
		}
	}
	payload, tt.payload = nil, nil
	verify := func(b *testing.B, workers int) {
		b.SetBytes(total)
		for range b.N {
			s, err := Open(b.TempDir(), tt.hash, info, Config{Layout: Files{Dir: dir}, VerifyWorkers: workers})
			if err != nil {
				b.Fatal(err)
			}
			<-s.VerifyDone()
			if n, _ := s.Present(); n != info.NumPieces() {
				b.Fatalf("%d of %d pieces verified", n, info.NumPieces())
			}
			s.Close()
		}
	}
	b.Run("workers=1", func(b *testing.B) { verify(b, 1) })
	b.Run(fmt.Sprintf("workers=%d", runtime.GOMAXPROCS(0)), func(b *testing.B) { verify(b, 0) })
	b.Run("sha1sum", func(b *testing.B) {
		b.SetBytes(total)
		buf := make([]byte, hashChunk)
		for range b.N {
			for _, f := range info.Files {
				fh, err := os.Open(filePath(dir, tt, f))
				if err != nil {
					b.Fatal(err)
				}
				h := sha1.New()
				if _, err := io.CopyBuffer(h, fh, buf); err != nil {
					b.Fatal(err)
				}
				fh.Close()
			}
		}
	})
}
