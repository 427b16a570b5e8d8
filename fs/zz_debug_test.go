package fs

import (
	"os"
	"testing"
	"time"
	"path/filepath"
)

func TestZZDebug(t *testing.T) {
	data := randomBytes(1, 256<<20)
	for _, ra := range []int{-1, 1024, 2048, 4096, 8192} {
		for _, bs := range []int{128<<10, 1<<20} {
		ft := newFake("bench.bin", []fakeFile{{path: []string{"bench.bin"}, data: data}}, fakeOptions{pieceLength: 1 << 20, single: true})
		s, dir := mountT(t, []Torrent{ft}, Options{ReadAheadKB: ra})
		f, _ := os.Open(filepath.Join(dir, "bench.bin"))
		buf := make([]byte, bs)
		st := time.Now()
		for { n, _ := f.Read(buf); if n == 0 { break } }
		d := time.Since(st)
		f.Close()
		t.Logf("ra %d bs %dK: %.0f MB/s, %d calls, avg %d KiB", ra, bs>>10, 256*1.048576/d.Seconds(), ft.calls.Load(), ft.served.Load()/ft.calls.Load()>>10)
		s.Unmount()
		}
	}
}
