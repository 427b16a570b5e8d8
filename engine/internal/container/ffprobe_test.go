package container

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// avioBuffer is the size of ffmpeg's I/O buffer: ffprobe reads whole
// buffers, so giving the probe this much media data makes its Start match
// what ffprobe reads.
const avioBuffer = 32 << 10

// TestRealFilesMatchFFprobe makes real videos with ffmpeg (MP4 with moov at
// the end and with +faststart, Matroska, WebM, AVI), records with strace
// which byte ranges ffprobe reads from each, and checks that the probe's
// Start covers all of them and not much more; and for Matroska and WebM
// that the Seek ranges (the Cues) are what ffmpeg reads when it seeks.
func TestRealFilesMatchFFprobe(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg", "ffmpeg")
	ffprobe := requireTool(t, "ffprobe", "ffmpeg")
	strace := requireTool(t, "strace", "strace")
	files := []struct {
		name string
		args []string
		want Format
		seek bool // has Seek ranges that a seeking ffmpeg reads
	}{
		{"moovend.mp4", []string{"-c:v", "libx264", "-c:a", "aac"}, MP4, false},
		{"faststart.mp4", []string{"-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart"}, MP4, false},
		{"video.mkv", []string{"-c:v", "libx264", "-c:a", "aac"}, Matroska, true},
		{"video.webm", []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"}, WebM, true},
		{"video.avi", []string{"-c:v", "mpeg4", "-c:a", "libmp3lame"}, AVI, false},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), f.name)
			args := []string{"-v", "error", "-y",
				"-f", "lavfi", "-i", "testsrc=duration=12:size=320x240:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:duration=12",
				"-pix_fmt", "yuv420p", "-g", "50", "-b:v", "400k", "-b:a", "48k", "-shortest"}
			args = append(append(args, f.args...), path)
			run(t, ffmpeg, args...)
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				t.Fatal(err)
			}
			res, err := Walk(fh, st.Size(), Config{Data: avioBuffer})
			if err != nil || res.Format != f.want {
				t.Fatalf("walk: %+v, %v; want format %v", res, err, f.want)
			}
			read := straceReads(t, strace, path, ffprobe, "-v", "error", "-show_format", "-show_streams", path)
			if len(read) == 0 {
				t.Fatal("strace saw no reads")
			}
			t.Logf("ffprobe read %v; Start %v, Seek %v", read, res.Start, res.Seek)
			if miss := subtract(read, res.Start); len(miss) > 0 {
				t.Errorf("ffprobe read %v; Start %v misses %v", read, res.Start, miss)
			}
			// At most one buffer more than ffprobe read: the probe cannot
			// know how much media data a decoder needs, ffprobe stops
			// when it has the streams' parameters.
			if extra := total(subtract(res.Start, read)); extra > avioBuffer {
				t.Errorf("Start %v has %d bytes more than ffprobe read (%v)", res.Start, extra, read)
			}
			if !f.seek {
				if len(res.Seek) > 0 {
					t.Errorf("Seek %v, want none", res.Seek)
				}
				return
			}
			if len(res.Seek) == 0 {
				t.Fatal("no Seek ranges (Cues)")
			}
			seekRead := straceReads(t, strace, path, ffmpeg, "-v", "error", "-ss", "8", "-i", path, "-frames:v", "1", "-f", "null", "-")
			if miss := subtract(res.Seek, seekRead); len(miss) > 0 {
				t.Errorf("a seeking ffmpeg read %v; it did not read the Seek ranges %v", seekRead, miss)
			}
			if miss := subtract(res.Seek, read); len(miss) == 0 {
				t.Errorf("ffprobe read the Seek ranges %v already: they belong in Start", res.Seek)
			}
		})
	}
}

func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (apt-get install %s)", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", name, err, out)
	}
}

var (
	reOpen  = regexp.MustCompile(`^openat\(AT_FDCWD, "(.*)", [^)]*\)\s+=\s+(\d+)`)
	reLseek = regexp.MustCompile(`^lseek\((\d+), .*\)\s+=\s+(\d+)`)
	reRead  = regexp.MustCompile(`^read\((\d+), .*\)\s+=\s+(\d+)`)
	rePread = regexp.MustCompile(`^pread64\((\d+), .*, (\d+)\)\s+=\s+(\d+)`)
	reClose = regexp.MustCompile(`^close\((\d+)\)`)
)

// straceReads runs a command under strace (its main thread: ffmpeg 5's
// demuxers read there) and returns the normalized byte ranges it read from
// path.
func straceReads(t *testing.T, strace, path, name string, args ...string) []Range {
	t.Helper()
	log := filepath.Join(t.TempDir(), "strace.log")
	run(t, strace, append([]string{"-o", log, "-s", "0", "-e", "trace=openat,read,lseek,pread64,close", name}, args...)...)
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Range
	fds := map[string]int64{} // open descriptors of path -> position
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		if m := reOpen.FindStringSubmatch(l); m != nil && m[1] == path {
			fds[m[2]] = 0
		} else if m := reLseek.FindStringSubmatch(l); m != nil && hasFD(fds, m[1]) {
			fds[m[1]] = num(m[2])
		} else if m := reRead.FindStringSubmatch(l); m != nil && hasFD(fds, m[1]) {
			out = append(out, Range{fds[m[1]], fds[m[1]] + num(m[2])})
			fds[m[1]] += num(m[2])
		} else if m := rePread.FindStringSubmatch(l); m != nil && hasFD(fds, m[1]) {
			out = append(out, Range{num(m[2]), num(m[2]) + num(m[3])})
		} else if m := reClose.FindStringSubmatch(l); m != nil {
			delete(fds, m[1])
		} else if strings.Contains(l, "unfinished") {
			t.Fatalf("strace saw a concurrent call: %s", l)
		}
	}
	return normalize(out, 1<<62)
}

func hasFD(fds map[string]int64, fd string) bool { _, ok := fds[fd]; return ok }

func total(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len()
	}
	return n
}
