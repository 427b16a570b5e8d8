package fs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMediaThroughMount decodes a real video (made with ffmpeg, moov atom
// at the end, so players read the tail first) through a fake torrent whose
// pieces arrive slowly, from the start and after seeking to the middle, and
// compares every decoded frame with the same decode of the source file.
func TestMediaThroughMount(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package ffmpeg)", tool)
		}
	}
	src := filepath.Join(t.TempDir(), "clip.mp4")
	run(t, 60*time.Second, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=4:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "25", "-c:a", "aac", "-shortest", src)
	video, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	ft := newFake("media", []fakeFile{
		{path: []string{"notes.txt"}, data: randomBytes(21, 10_007)},
		{path: []string{"clip.mp4"}, data: video},
	}, fakeOptions{pieceLength: 16 << 10, delay: 3 * time.Millisecond})
	_, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: 20 * time.Second})
	mounted := filepath.Join(dir, "media", "clip.mp4")

	probe := func(p string) string {
		return run(t, 60*time.Second, "ffprobe", "-v", "error", "-show_entries",
			"format=duration,format_name:stream=codec_name,nb_frames", "-of", "compact", p)
	}
	if got, want := probe(mounted), probe(src); got != want {
		t.Errorf("ffprobe through the mount:\n%s\nsource:\n%s", got, want)
	}
	frames := func(p string, seek ...string) string {
		args := append([]string{"-v", "error"}, seek...)
		args = append(args, "-i", p, "-map", "0", "-f", "framemd5", "-")
		return run(t, 60*time.Second, "ffmpeg", args...)
	}
	if got, want := frames(mounted, "-ss", "2"), frames(src, "-ss", "2"); got != want || len(want) < 100 {
		t.Errorf("frames after -ss 2 differ from the source's (%d vs %d bytes)", len(got), len(want))
	}
	if got, want := frames(mounted), frames(src); got != want {
		t.Errorf("decoded frames differ from the source's (%d vs %d bytes)", len(got), len(want))
	}
	asked := 0
	for p := range ft.requested {
		if ft.requested[p].Load() {
			asked++
		}
	}
	if asked == 0 {
		t.Errorf("no piece was waited for: the slow path was not exercised")
	}
}
