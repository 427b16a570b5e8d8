package cache

import (
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/metainfo"
)

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// benchStore opens a fresh store for tt in a new directory under root.
func benchStore(b *testing.B, root string, tt *torrent) *Store {
	s, err := Open(root, tt.hash, tt.info, Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkWriteVerify measures write-and-verify throughput (WritePiece,
// and WriteBlock of every block followed by FinishPiece) beside raw
// crypto/sha1 of the same piece, timed alternately in the same loop so both
// see the same machine load. It reports both rates and their ratio, on wall
// time and on the calling thread's CPU time. The store does all its
// write-and-verify work on the calling thread (no helper goroutines), so the
// CPU ratio is the one-core cost; it leaves out the background persister's
// fdatasync, which the kernel's writeback would do anyway.
func BenchmarkWriteVerify(b *testing.B) {
	for _, pl := range []int64{256 << 10, 4 << 20} {
		tt := genTorrent(rand.New(rand.NewPCG(1, 1)), pl, 64<<20)
		for _, mode := range []string{"WritePiece", "Blocks"} {
			b.Run(fmt.Sprintf("%dKiB/%s", pl>>10, mode), func(b *testing.B) {
				root := b.TempDir()
				s := benchStore(b, root, tt)
				np := tt.info.NumPieces()
				var storeTime, shaTime, storeCPU, shaCPU time.Duration
				runtime.LockOSThread() // so thread CPU time is this goroutine's
				defer runtime.UnlockOSThread()
				b.SetBytes(pl)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					k := i % np
					p := tt.piece(k)
					b.StopTimer()
					if k == 0 && i > 0 { // every piece present: start over
						s.Close()
						Remove(root, tt.hash)
						s = benchStore(b, root, tt)
					}
					t0, c0 := time.Now(), threadCPU()
					sha1.Sum(p)
					shaTime += time.Since(t0)
					shaCPU += threadCPU() - c0
					b.StartTimer()
					t0, c0 = time.Now(), threadCPU()
					if mode == "WritePiece" {
						if err := s.WritePiece(k, p); err != nil {
							b.Fatal(err)
						}
					} else {
						for off := 0; off < len(p); off += BlockSize {
							if err := s.WriteBlock(k, off, p[off:min(off+BlockSize, len(p))]); err != nil {
								b.Fatal(err)
							}
						}
						if err := s.FinishPiece(k); err != nil {
							b.Fatal(err)
						}
					}
					storeTime += time.Since(t0)
					storeCPU += threadCPU() - c0
				}
				b.StopTimer()
				s.Close()
				bytes := float64(b.N) * float64(pl) / 1e6
				b.ReportMetric(bytes/storeTime.Seconds(), "store-MB/s")
				b.ReportMetric(bytes/shaTime.Seconds(), "sha1-MB/s")
				b.ReportMetric(100*shaTime.Seconds()/storeTime.Seconds(), "%-of-sha1")
				// The same on CPU time, immune to other processes' load.
				b.ReportMetric(bytes/storeCPU.Seconds(), "store-MB/cpu-s")
				b.ReportMetric(bytes/shaCPU.Seconds(), "sha1-MB/cpu-s")
				b.ReportMetric(100*shaCPU.Seconds()/storeCPU.Seconds(), "%-of-sha1-cpu")
			})
		}
	}
}

// BenchmarkReadAt measures ReadAt of 128 KiB over verified pieces beside a
// plain pread of the same data file in the same run.
func BenchmarkReadAt(b *testing.B) {
	tt := genTorrent(rand.New(rand.NewPCG(2, 2)), 256<<10, 64<<20)
	root := b.TempDir()
	s := benchStore(b, root, tt)
	defer s.Close()
	for i := range tt.info.NumPieces() {
		if err := s.WritePiece(i, tt.piece(i)); err != nil {
			b.Fatal(err)
		}
	}
	const n = 128 << 10
	buf := make([]byte, n)
	off := func(i int) int64 { return int64(i) * n % (tt.info.TotalLength - n) }
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.ReadAt(buf, off(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	f, err := os.Open(filepath.Join(s.Dir(), dataName))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		f.ReadAt(buf, off(i))
	}
	b.ReportMetric(float64(b.N)*n/1e6/time.Since(start).Seconds(), "pread-MB/s")
}

// BenchmarkReopen1GiB measures Open of a 1 GiB store whose 4096 pieces are
// all present, beside the time re-hashing 1 GiB would take (raw SHA-1 rate
// measured in the same run). The payload is all zeros so the data file stays
// sparse: setup lets a real store verify it (holes hash as zeros without
// reading) and close cleanly, writing the state every reopen trusts.
func BenchmarkReopen1GiB(b *testing.B) {
	const pl, total = 256 << 10, 1 << 30
	zero := sha1.Sum(make([]byte, pl))
	info := &metainfo.Info{Name: "zeros", PieceLength: pl, TotalLength: total, SingleFile: true,
		Pieces: make([]metainfo.Hash, total/pl), Files: []metainfo.File{{Path: []string{"zeros"}, Length: total}}}
	for i := range info.Pieces {
		info.Pieces[i] = zero
	}
	hash := metainfo.Hash{1, 2, 3}
	root := b.TempDir()
	dir := filepath.Join(root, hash.String())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dataName), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, dataName), total); err != nil {
		b.Fatal(err)
	}
	s, err := Open(root, hash, info, Config{})
	if err != nil {
		b.Fatal(err)
	}
	<-s.VerifyDone()
	if n, _ := s.Present(); n != len(info.Pieces) {
		b.Fatalf("setup: %d of %d pieces present", n, len(info.Pieces))
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(root, hash, info, Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if s.Verifying() {
			b.Fatal("reopen is re-verifying")
		}
		if n, _ := s.Present(); n != len(info.Pieces) {
			b.Fatalf("%d pieces present after reopen", n)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	buf := make([]byte, 4<<20)
	start := time.Now()
	for range 16 {
		sha1.Sum(buf)
	}
	rehash := time.Since(start) * (total / (16 * 4 << 20))
	b.ReportMetric(float64(rehash.Milliseconds()), "rehash-1GiB-ms")
}
