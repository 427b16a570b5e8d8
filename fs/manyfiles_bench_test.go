package fs

import (
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
	"golang.org/x/sys/unix"
)

// manyShape is the layout of the many-files torrent: top directories, each
// with sub directories, each with files: "d007/s3/f000042.bin".
type manyShape struct{ top, sub, files int }

func (s manyShape) count() int { return s.top * s.sub * s.files }

func (s manyShape) path(i int) []string {
	t, rest := i/(s.sub*s.files), i%(s.sub*s.files)
	return []string{fmt.Sprintf("d%03d", t), fmt.Sprintf("s%d", rest/s.files), fmt.Sprintf("f%06d.bin", i)}
}

// manyFilesInfo bencodes the info dictionary of a torrent of shape s
// (files of 4 KiB, arbitrary piece hashes).
func manyFilesInfo(tb testing.TB, name string, s manyShape) []byte {
	tb.Helper()
	type fe struct {
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	const fileLen, pieceLen = 4 << 10, 4 << 20
	list := make([]fe, s.count())
	for i := range list {
		list[i] = fe{fileLen, s.path(i)}
	}
	total := int64(len(list)) * fileLen
	pieces := make([]byte, (total+pieceLen-1)/pieceLen*metainfo.HashSize)
	raw, err := metainfo.Marshal(map[string]any{"name": name, "piece length": pieceLen, "pieces": string(pieces), "files": list})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// infoTorrent is a Torrent with a known info and nothing downloaded: enough
// to mount and list, not to read.
type infoTorrent struct {
	info *metainfo.Info
	hash metainfo.Hash
}

func (t *infoTorrent) Name() string            { return t.info.Name }
func (t *infoTorrent) InfoHash() metainfo.Hash { return t.hash }
func (t *infoTorrent) Info() *metainfo.Info    { return t.info }
func (t *infoTorrent) CreationDate() time.Time { return time.Time{} }
func (t *infoTorrent) Status() Status          { return Status{Text: "idle", Total: t.info.TotalLength} }
func (t *infoTorrent) FileComplete(int) bool   { return false }
func (t *infoTorrent) InfoReady() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
func (t *infoTorrent) OpenFile(context.Context, int) (FileReader, error) {
	return nil, fmt.Errorf("infoTorrent: no data")
}

// memNow returns the live heap after a full collection and the process's
// resident set size, in bytes.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return ms.HeapAlloc, rss
}

// lsTime runs ls on dir (one level, like a first look at a mount) and
// returns how long it took and how many entries it printed.
func lsTime(b *testing.B, args ...string) (time.Duration, int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "ls", args...).Output()
	el := time.Since(start)
	if err != nil {
		b.Fatalf("ls %v: %v", args, err)
	}
	return el, strings.Count(string(out), "\n")
}

// BenchmarkManyFiles loads the info of a 200,000-file torrent (200
// directories of 10 directories of 100 files), mounts it and lists it for
// the first time: `ls` of the torrent's directory, then `ls -lR` of the
// whole tree. It reports the time from parsing the info to the end of the
// first ls (first-ls-ms; first-ls-cpu-ms is the CPU time that took, which
// a busy machine inflates less), of the parsing alone (parse-ms) and of
// that ls alone (ls-ms), the whole walk
// (lsR-ms), and the heap and RSS that the parsed info and the mount hold
// after the first ls (heap-MiB, rss-MiB), beside the same two ls runs over
// a real directory tree of the same shape on tmpfs (ref-*). With -short
// the torrent has 20,000 files.
func BenchmarkManyFiles(b *testing.B) {
	s := manyShape{top: 200, sub: 10, files: 100}
	if testing.Short() {
		s.top = 20
	}
	raw := manyFilesInfo(b, "many", s)
	for b.Loop() {
		heap0, rss0 := memNow()
		cpu0 := cpuTime()
		start := time.Now()
		info, err := metainfo.ParseInfo(raw)
		if err != nil {
			b.Fatal(err)
		}
		parsed := time.Since(start)
		t := &infoTorrent{info: info, hash: sha1.Sum(raw)}
		_, dir := mountT(b, []Torrent{t}, Options{})
		first, n := lsTime(b, filepath.Join(dir, "many"))
		firstAll := time.Since(start)
		firstCPU := cpuTime() - cpu0
		if n != s.top {
			b.Fatalf("ls listed %d entries, want %d", n, s.top)
		}
		heap1, rss1 := memNow()
		writeHeapProfile(b)
		lsR, lines := lsTime(b, "-lR", dir)
		if lines < s.count() {
			b.Fatalf("ls -lR printed %d lines for %d files", lines, s.count())
		}
		runtime.KeepAlive(t)

		ref := makeShapeTree(b, s)
		refFirst, _ := lsTime(b, ref)
		refR, _ := lsTime(b, "-lR", ref)

		b.ReportMetric(float64(firstAll.Milliseconds()), "first-ls-ms")
		b.ReportMetric(float64(firstCPU.Milliseconds()), "first-ls-cpu-ms")
		b.ReportMetric(float64(first.Microseconds())/1e3, "ls-ms")
		b.ReportMetric(float64(parsed.Milliseconds()), "parse-ms")
		b.ReportMetric(float64(lsR.Milliseconds()), "lsR-ms")
		b.ReportMetric(float64(int64(heap1)-int64(heap0))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(int64(rss1)-int64(rss0))/(1<<20), "rss-MiB")
		b.ReportMetric(float64(refFirst.Microseconds())/1e3, "ref-ls-ms")
		b.ReportMetric(float64(refR.Milliseconds()), "ref-lsR-ms")
	}
}

// cpuTime returns the CPU time used so far by this process and its waited
// children (ls), which a loaded machine inflates far less than wall time.
func cpuTime() time.Duration {
	var self, kids unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &self)
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &kids)
	var d time.Duration
	for _, tv := range []unix.Timeval{self.Utime, self.Stime, kids.Utime, kids.Stime} {
		d += time.Duration(tv.Nano())
	}
	return d
}

// writeHeapProfile writes the live heap to the file named by
// SWARMFS_HEAPPROFILE, if set (go tool pprof -sample_index=inuse_space).
func writeHeapProfile(b *testing.B) {
	name := os.Getenv("SWARMFS_HEAPPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// makeShapeTree makes empty files of shape s under a tmpfs directory (or
// the test's temporary directory without /dev/shm).
func makeShapeTree(b *testing.B, s manyShape) string {
	b.Helper()
	root, err := os.MkdirTemp("/dev/shm", "swarmfs-many")
	if err != nil {
		root = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(root) })
	}
	for i := range s.count() {
		p := filepath.Join(append([]string{root}, s.path(i)...)...)
		if i%s.files == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}
