package fs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const benchSize = 512 << 20

var benchData = sync.OnceValue(func() []byte { return randomBytes(99, benchSize) })

// readAll reads f from the start with buf-sized reads and returns the count.
func readAll(b *testing.B, f *os.File, buf []byte) int64 {
	var total int64
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		total += int64(n)
		off += int64(n)
		if err == io.EOF {
			return total
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchMode is one way of reading the benchmark file.
type benchMode struct {
	name  string
	ra    int           // Options.ReadAheadKB
	cache PageCacheMode // Options.PageCache
}

var benchModes = []benchMode{
	{"ra128K", -1, PageCacheAlways},
	{"ra1M", 1024, PageCacheAlways},
	{"ra2M", 2048, PageCacheAlways},
	{"ra4M", 4096, PageCacheAlways},
	{"ra8M", 8192, PageCacheAlways},
	{"directio", -1, PageCacheNever},
}

// BenchmarkSequentialRead reads a 512 MiB file of an in-memory fake torrent
// through the mount, cold (its page cache dropped before each pass), in
// page-cache mode with several kernel readahead settings and with
// direct_io, beside a plain read of the same bytes from a tmpfs file. Each
// iteration reads once in every mode, interleaved, so that the ratios hold
// on a busy machine; each mode's median rate over the passes is reported as
// "<mode>-MB/s".
func BenchmarkSequentialRead(b *testing.B) {
	data := benchData()
	tmp, err := os.MkdirTemp("/dev/shm", "swarmfs-bench")
	if err != nil {
		b.Skip("no /dev/shm tmpfs")
	}
	defer os.RemoveAll(tmp)
	ref := filepath.Join(tmp, "data")
	if err := os.WriteFile(ref, data, 0o644); err != nil {
		b.Fatal(err)
	}
	paths := map[string]string{"tmpfs": ref}
	fakes := map[string]*fakeTorrent{}
	for _, m := range benchModes {
		ft := newFake("bench.bin", []fakeFile{{path: []string{"bench.bin"}, data: data}},
			fakeOptions{pieceLength: 1 << 20, single: true})
		_, dir := mountT(b, []Torrent{ft}, Options{ReadAheadKB: m.ra, PageCache: m.cache})
		paths[m.name] = filepath.Join(dir, "bench.bin")
		fakes[m.name] = ft
	}
	names := []string{"tmpfs"}
	for _, m := range benchModes {
		names = append(names, m.name)
	}
	for _, bufSize := range []int{128 << 10, 1 << 20} {
		buf := make([]byte, bufSize)
		b.Run(fmt.Sprintf("buf=%dK", bufSize>>10), func(b *testing.B) {
			rates := map[string][]float64{}
			for b.Loop() {
				for _, name := range names {
					f, err := os.Open(paths[name])
					if err != nil {
						b.Fatal(err)
					}
					if name != "tmpfs" {
						// Drop the file's cached pages so the pass goes through FUSE.
						if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
							b.Fatal(err)
						}
					}
					var before int64
					if ft := fakes[name]; ft != nil {
						before = ft.served.Load()
					}
					start := time.Now()
					n := readAll(b, f, buf)
					rates[name] = append(rates[name], benchSize/1e6/time.Since(start).Seconds())
					f.Close()
					if n != benchSize {
						b.Fatalf("%s: read %d bytes", name, n)
					}
					if ft := fakes[name]; ft != nil && ft.served.Load()-before < benchSize {
						b.Fatalf("%s: only %d bytes came through FUSE: the page cache was not dropped", name, ft.served.Load()-before)
					}
				}
			}
			for _, name := range names {
				r := rates[name]
				sort.Float64s(r)
				b.ReportMetric(r[len(r)/2], name+"-MB/s")
			}
		})
	}
}
