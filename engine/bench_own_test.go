package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// BenchmarkOwnSwarm downloads 512 MiB from three swarmfs seeders in this
// process (no external software), to measure the engine's own cost on both
// sides of the wire. Run it with -benchtime=1x.
func BenchmarkOwnSwarm(b *testing.B) {
	size := int64(512 << 20)
	dir := b.TempDir()
	writeRandomFile(b, filepath.Join(dir, "own.bin"), size)
	mi, err := metainfo.Create(filepath.Join(dir, "own.bin"), metainfo.CreateOptions{NoDate: true})
	if err != nil {
		b.Fatal(err)
	}
	var seeds []netip.AddrPort
	for i := range 3 {
		c, err := New(Config{ListenAddr: fmt.Sprintf("127.0.2.%d:0", 110+i), CacheDir: b.TempDir(), NoDHT: true, UploadSlots: 8})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		tor, err := c.AddTorrent(mi, AddOptions{Import: dir})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-tor.Complete():
		case <-time.After(2 * time.Minute):
			b.Fatal("import too slow")
		}
		seeds = append(seeds, c.Addr())
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := New(Config{ListenAddr: "127.0.2.1:0", CacheDir: b.TempDir(), NoDHT: true})
		if err != nil {
			b.Fatal(err)
		}
		tor, err := c.AddTorrent(mi, AddOptions{Peers: seeds, Prefetch: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		select {
		case <-tor.Complete():
		case <-ctx.Done():
			b.Fatalf("download: %+v", tor.Stats())
		}
		cancel()
		b.StopTimer()
		c.Close()
		os.RemoveAll(c.cfg.CacheDir)
		b.StartTimer()
	}
	b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MiB")
}
