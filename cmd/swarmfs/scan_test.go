package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

// reAVIOStats is ffprobe's count of the bytes it read (-v verbose).
var reAVIOStats = regexp.MustCompile(`Statistics: (\d+) bytes read`)

// TestScanLibraryWithFFprobe scans a library of 200 videos through a mount
// with ffprobe, as a media-library scanner does, and checks that what was
// downloaded is a small multiple of what ffprobe read, far below the
// files' size: a probe gets no deep readahead window. Each file is a real
// MP4 (moov at the end) followed by a 6 MiB free box (sparse on disk), so
// that a file's size is many readahead windows.
func TestScanLibraryWithFFprobe(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse: FUSE tests need the fuse3 package and /dev/fuse")
	}
	ffmpeg := enginetest.RequireTool(t, "ffmpeg", "ffmpeg")
	ffprobe := enginetest.RequireTool(t, "ffprobe", "ffmpeg")
	const files, pad = 200, 6 << 20
	dir := t.TempDir()
	root := filepath.Join(dir, "library")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(dir, "clip.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-shortest", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	video, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := range files {
		p := filepath.Join(root, fmt.Sprintf("ep%03d.mp4", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:], pad)
		copy(hdr[4:], "free")
		_, err = f.Write(append(append([]byte(nil), video...), hdr[:]...))
		if err == nil {
			err = f.Truncate(int64(len(video)) + pad) // the rest of the box: a hole
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(video)) + pad
	}
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 64 << 10, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	torrent := filepath.Join(dir, "library.torrent")
	if err := os.WriteFile(torrent, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.9.192", Torrent: torrent, SavePath: dir, Peers: []string{}})
	lt.WaitSeeding(t, 3*time.Minute)
	seed, err := netip.ParseAddrPort(lt.Addr)
	if err != nil {
		t.Fatal(err)
	}

	c, err := engine.New(engine.Config{ListenAddr: "127.0.9.193:0", CacheDir: t.TempDir(), NoDHT: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tor, err := c.AddTorrent(mi, engine.AddOptions{Peers: []netip.AddrPort{seed}})
	if err != nil {
		t.Fatal(err)
	}
	mp := t.TempDir()
	srv, err := mountTorrents(mp, []*engine.Torrent{tor}, fs.Options{ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})

	var read int64
	for i := range files {
		p := filepath.Join(mp, "library", fmt.Sprintf("ep%03d.mp4", i))
		out, err := exec.CommandContext(ctx, ffprobe, "-v", "verbose", "-show_entries", "format=duration", "-of", "compact", p).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", p, err, out)
		}
		m := reAVIOStats.FindSubmatch(out)
		if m == nil {
			t.Fatalf("ffprobe %s printed no read statistics:\n%s", p, out)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		read += n
	}
	down := tor.Stats().Downloaded
	t.Logf("%d files, %d MB in all: ffprobe read %d kB, the mount downloaded %d kB (%.1fx)",
		files, total>>20, read>>10, down>>10, float64(down)/float64(read))
	const k = 16 // a probe's window is 1 MiB (readahead's Min) beside what it reads: 12x here; 22x without Sustain
	if down > k*read || down > total/4 {
		t.Fatalf("downloaded %d bytes for %d read by ffprobe (more than %dx), of %d in all", down, read, k, total)
	}
}
