package webseed

import (
	"context"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// benchConns is the connection count both clients get.
const benchConns = 4

// BenchmarkNginx downloads a 256 MiB web-seed-only torrent from nginx on
// loopback, through this package (every piece SHA-1-checked and written
// to a file, as get would) and with aria2c from the same server in the
// same run. Compare the MB/s of the two sub-benchmarks.
func BenchmarkNginx(b *testing.B) {
	dir := b.TempDir()
	name := "bench data"
	root := filepath.Join(dir, "www", name)
	sizes := []int64{96 << 20, 64 << 20, 64<<20 + 12345, 32<<20 - 12345}
	rng := rand.NewChaCha8([32]byte{1})
	chunk := make([]byte, 1<<20)
	for i, size := range sizes {
		p := filepath.Join(root, "part "+strconv.Itoa(i)+".bin")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for left := size; left > 0; left -= int64(len(chunk)) {
			_, _ = rng.Read(chunk)
			if _, err := f.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	base := startNginx(b, filepath.Join(dir, "www"))
	mi, err := metainfo.Create(root, metainfo.CreateOptions{WebSeeds: []string{base}, NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := mi.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	torrent := filepath.Join(dir, "bench.torrent")
	if err := os.WriteFile(torrent, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	info := mi.Info
	b.Logf("%d MiB in %d pieces of %d KiB, %d connections, nginx at %s",
		info.TotalLength>>20, info.NumPieces(), info.PieceLength>>10, benchConns, base)

	b.Run("swarmfs", func(b *testing.B) {
		b.SetBytes(info.TotalLength)
		for b.Loop() {
			if err := benchFetchAll(base, info, filepath.Join(dir, "out.swarmfs")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aria2c", func(b *testing.B) {
		bin := enginetest.RequireTool(b, "aria2c", "aria2")
		b.SetBytes(info.TotalLength)
		for b.Loop() {
			out := filepath.Join(dir, "out.aria2")
			if err := os.RemoveAll(out); err != nil {
				b.Fatal(err)
			}
			port := enginetest.FreePort(b, "127.0.0.1")
			if err := runAria2(bin, torrent, out, port, info); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Plain HTTP downloads of the same files, as a reference for what
	// aria2 does without BitTorrent in the way.
	b.Run("aria2c-http", func(b *testing.B) {
		bin := enginetest.RequireTool(b, "aria2c", "aria2")
		s, err := New(base, info, Config{})
		if err != nil {
			b.Fatal(err)
		}
		var list strings.Builder
		for i, fl := range info.Files {
			fmt.Fprintf(&list, "%s\n  out=%s\n", s.FileURL(i), filepath.Join(append([]string{info.Name}, fl.Path...)...))
		}
		s.Close()
		listPath := filepath.Join(dir, "aria2.list")
		if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(info.TotalLength)
		for b.Loop() {
			out := filepath.Join(dir, "out.aria2http")
			if err := os.RemoveAll(out); err != nil {
				b.Fatal(err)
			}
			if err := runAria2HTTP(bin, listPath, out, info); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchFetchAll fetches every piece with benchConns runs at once, checks
// each piece's hash and writes it to one file at its torrent offset.
func benchFetchAll(base string, info *metainfo.Info, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := New(base, info, Config{MaxConns: benchConns})
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	runLen := max(1, int((16<<20)/info.PieceLength)) // 16 MiB per FetchRun
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	for range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, info.PieceLength)
			for {
				first := int(next.Add(int64(runLen))) - runLen
				if first >= info.NumPieces() {
					return
				}
				end := min(first+runLen, info.NumPieces())
				err := s.FetchRun(ctx, first, end, buf, func(p int, data []byte) error {
					if sha1.Sum(data) != [20]byte(info.Pieces[p]) {
						return fmt.Errorf("piece %d: hash mismatch", p)
					}
					_, err := f.WriteAt(data, info.PieceOffset(p))
					return err
				})
				if err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runAria2HTTP downloads the URLs in list into out with aria2c, one file
// at a time over benchConns connections, and checks the files' sizes.
func runAria2HTTP(bin, list, out string, info *metainfo.Info) error {
	return aria2(info, out, bin, "--dir="+out, "--input-file="+list, "--max-concurrent-downloads=1",
		"--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
		"--max-connection-per-server="+strconv.Itoa(benchConns), "--split="+strconv.Itoa(benchConns),
		"--min-split-size=8M")
}

// runAria2 downloads torrent (web seed only) into out with aria2c and
// checks the files' sizes.
func runAria2(bin, torrent, out string, port int, info *metainfo.Info) error {
	return aria2(info, out, bin, "--dir="+out, "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
		"--listen-port="+strconv.Itoa(port), "--file-allocation=none", "--summary-interval=0",
		"--console-log-level=warn", "--max-connection-per-server="+strconv.Itoa(benchConns),
		"--split="+strconv.Itoa(benchConns), torrent)
}

// aria2 runs aria2c with args, at most 5 minutes, and checks that it
// wrote every file of info below out with its size.
func aria2(info *metainfo.Info, out, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("aria2c: %v\n%s", err, outb)
	}
	for _, fl := range info.Files {
		p := filepath.Join(append([]string{out, info.Name}, fl.Path...)...)
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("aria2c: %w", err)
		}
		if st.Size() != fl.Length {
			return fmt.Errorf("aria2c: %s has %d bytes, want %d", p, st.Size(), fl.Length)
		}
	}
	return nil
}
