package enginetest

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// FileSpec describes one generated file of a test torrent.
type FileSpec struct {
	// Path is the file's path below the torrent's directory ("a/b.bin").
	Path string
	// Size is the number of pseudo-random bytes to write.
	Size int64
	// VideoSeconds, when positive, makes the file a real MPEG-4 video of
	// that many seconds generated with ffmpeg (Size is then ignored).
	VideoSeconds int
}

// Content is generated torrent content on disk with its torrent.
type Content struct {
	// Dir is the save path: the content lies at Dir/Name.
	Dir  string
	Name string
	// Files maps each FileSpec.Path to the file's absolute path.
	Files map[string]string
	// Meta is the created torrent; Torrent its .torrent file.
	Meta    *metainfo.MetaInfo
	Torrent string
}

// MakeContent writes the files (one spec with an empty Path makes a
// single-file torrent named name) into a temporary directory and creates a
// torrent for them with our metainfo.Create, announcing to trackers.
func MakeContent(t testing.TB, name string, pieceLen int64, files []FileSpec, trackers ...string) *Content {
	t.Helper()
	dir := t.TempDir()
	c := &Content{Dir: dir, Name: name, Files: map[string]string{}}
	root := filepath.Join(dir, name)
	for i, f := range files {
		p := root
		if f.Path != "" {
			p = filepath.Join(root, filepath.FromSlash(f.Path))
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.VideoSeconds > 0 {
			MakeVideo(t, p, f.VideoSeconds)
		} else if err := writeRandom(p, f.Size, uint64(i)+1); err != nil {
			t.Fatal(err)
		}
		c.Files[f.Path] = p
	}
	var tiers [][]string
	for _, tr := range trackers {
		tiers = append(tiers, []string{tr})
	}
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: pieceLen, Trackers: tiers, CreatedBy: "swarmfs test"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mi.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	c.Meta = mi
	c.Torrent = filepath.Join(dir, name+".torrent")
	if err := os.WriteFile(c.Torrent, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeRandom(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], strconv.FormatUint(seed, 10)+filepath.Base(path))
	if _, err := io.CopyN(f, rand.NewChaCha8(key), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// MakeVideo writes a real MPEG-4 video with sound of the given length to
// path using ffmpeg (skipping the test when ffmpeg is missing).
func MakeVideo(t testing.TB, path string, seconds int) {
	t.Helper()
	bin := RequireTool(t, "ffmpeg", "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := strconv.Itoa(seconds)
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=duration="+d+":size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-c:v", "mpeg4", "-q:v", "4", "-g", "25", "-c:a", "aac", "-shortest", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
}
