package main

import (
	"context"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/metainfo"
)

type demoFlags struct {
	dir      string
	seeders  int
	size     byteSize
	duration time.Duration
	keep     bool
	verbose  bool
}

func (d *demoFlags) flagSet() *flag.FlagSet {
	f := newFlagSet("demo")
	f.StringVar(&d.dir, "dir", "", "mount at `DIR` (default: a new directory under the system temp dir)")
	f.IntVar(&d.seeders, "seeders", 3, "run `N` in-process seeders on loopback")
	d.size = 64 << 20
	f.Var(&d.size, "size", "`SIZE` of the generated torrent, e.g. 256MiB")
	f.DurationVar(&d.duration, "duration", 0, "stay mounted for `DURATION`, then clean up (default: until Ctrl-C)")
	f.BoolVar(&d.keep, "keep", false, "keep the generated torrent, data and caches instead of deleting them")
	f.BoolVar(&d.verbose, "v", false, "log debug messages to stderr")
	return f
}

var demoCommand = &command{
	summary: "serve a generated torrent from local in-process seeders and mount it (no internet needed)",
	usage:   "[flags]",
	examples: []string{
		"swarmfs demo",
		"swarmfs demo --dir /tmp/t --size 256MiB --seeders 2",
		"swarmfs demo --duration 30s",
	},
	flagSet: func() *flag.FlagSet { return new(demoFlags).flagSet() },
	run:     runDemo,
}

func runDemo(ctx context.Context, e *env, args []string) error {
	var d demoFlags
	pos, err := parseFlags(d.flagSet(), args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("demo takes no arguments")
	}
	if d.seeders < 1 || d.seeders > 20 {
		return usageError("--seeders must be 1 to 20")
	}
	if d.size < 1<<20 || d.size > 8<<30 {
		return usageError("--size must be between 1MiB and 8GiB")
	}
	work, err := os.MkdirTemp("", "swarmfs-demo-")
	if err != nil {
		return err
	}
	if d.keep {
		fmt.Fprintf(e.stdout, "keeping demo files in %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	logger := newLogger(e.stderr, d.verbose)

	content := filepath.Join(work, "content", "swarmfs-demo")
	fmt.Fprintf(e.stdout, "generating %s of sample content in %s\n", humanize.IBytes(uint64(d.size)), content)
	if err := makeDemoContent(ctx, content, int64(d.size)); err != nil {
		return err
	}
	mi, err := metainfo.Create(content, metainfo.CreateOptions{PieceLength: 256 << 10, CreatedBy: "swarmfs demo " + version})
	if err != nil {
		return err
	}
	raw, err := mi.Bytes()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "swarmfs-demo.torrent"), raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "torrent %s: %d files, %d pieces of %s, info hash %s\n", mi.Info.Name,
		len(mi.Info.Files), mi.Info.NumPieces(), humanize.IBytes(uint64(mi.Info.PieceLength)), mi.InfoHash)

	var peers []netip.AddrPort
	for i := range d.seeders {
		c, err := engine.New(engine.Config{
			ListenAddr: "127.0.0.1:0", CacheDir: filepath.Join(work, fmt.Sprintf("seeder%d", i)),
			NoDHT: true, Logger: logger.With("seeder", i),
		})
		if err != nil {
			return err
		}
		defer c.Close()
		t, err := c.AddTorrent(mi, engine.AddOptions{Import: filepath.Dir(content)})
		if err != nil {
			return err
		}
		select {
		case <-t.Complete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Minute):
			return errors.New("a demo seeder did not finish verifying its data")
		}
		peers = append(peers, c.Addr())
	}
	fmt.Fprintf(e.stdout, "%d seeders listening on %v\n", d.seeders, peers)

	c, err := engine.New(engine.Config{
		ListenAddr: "127.0.0.1:0", CacheDir: filepath.Join(work, "cache"), NoDHT: true, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.AddTorrent(mi, engine.AddOptions{Peers: peers})
	if err != nil {
		return err
	}
	mp := d.dir
	if mp == "" {
		mp = filepath.Join(work, "mnt")
	}
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return err
	}
	start := time.Now()
	srv, err := mountTorrents(mp, []*engine.Torrent{t}, fs.Options{ReadTimeout: 30 * time.Second, Logger: logger})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "mounted at %s in %v\n\n", srv.Mountpoint(), time.Since(start).Round(time.Microsecond))
	if err := demoWalkthrough(ctx, e, srv.Mountpoint(), content); err != nil {
		_ = srv.Unmount()
		return err
	}
	if d.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.duration)
		defer cancel()
	}
	fmt.Fprintf(e.stdout, "\nthe mount stays up: try ls -l %s/swarmfs-demo, ffprobe, mpv, getfattr -d;\nCtrl-C unmounts and cleans up\n", srv.Mountpoint())
	return serveStatus(ctx, e, srv, []*engine.Torrent{t})
}

// demoWalkthrough lists the mount, reads the start of the video, and checks
// every file's SHA-1 through the mount against the generated source.
func demoWalkthrough(ctx context.Context, e *env, mp, content string) error {
	root := filepath.Join(mp, "swarmfs-demo")
	start := time.Now()
	var names []string
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ls -R: %d files listed in %v (no network wait)\n", len(names), time.Since(start).Round(time.Microsecond))
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "  %s  %10s  %s\n", fi.Mode(), humanize.IBytes(uint64(fi.Size())), strings.TrimPrefix(n, mp+"/"))
	}
	first := names[len(names)-1]
	for _, n := range names {
		if strings.HasSuffix(n, ".mp4") {
			first = n
		}
	}
	f, err := os.Open(first)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	start = time.Now()
	_, err = io.ReadFull(f, buf)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	fmt.Fprintf(e.stdout, "first 64 KiB of %s: %v (cold, fetched from the swarm)\n", filepath.Base(first), time.Since(start).Round(time.Microsecond))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, n)
		start := time.Now()
		got, size, err := sha1File(n)
		if err != nil {
			return fmt.Errorf("reading %s through the mount: %w", rel, err)
		}
		el := time.Since(start)
		want, _, err := sha1File(filepath.Join(content, rel))
		if err != nil {
			return err
		}
		verdict := "matches the source"
		if got != want {
			verdict = "DIFFERS from the source"
		}
		fmt.Fprintf(e.stdout, "sha1 %x %s: %s, read at %s/s\n", got[:6], rel, verdict,
			humanize.IBytes(uint64(float64(size)/max(el.Seconds(), 1e-6))))
		if got != want {
			return fmt.Errorf("%s read through the mount differs from the source", rel)
		}
	}
	return nil
}

func sha1File(name string) ([20]byte, int64, error) {
	var sum [20]byte
	f, err := os.Open(name)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha1.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	copy(sum[:], h.Sum(nil))
	return sum, n, err
}

// makeDemoContent writes the sample torrent's files: a short real video
// when ffmpeg is installed, a text file, and random data filling up to size.
func makeDemoContent(ctx context.Context, dir string, size int64) error {
	if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
		return err
	}
	readme := "This torrent was generated by `swarmfs demo`.\n" +
		"Its files are served by in-process seeders on 127.0.0.1 and read through a FUSE mount:\n" +
		"every read becomes a piece priority, pieces are verified with SHA-1 and cached.\n"
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte(readme), 0o644); err != nil {
		return err
	}
	notes := strings.Repeat("swarmfs streams what you read first.\n", 2000)
	if err := os.WriteFile(filepath.Join(dir, "docs", "notes.txt"), []byte(notes), 0o644); err != nil {
		return err
	}
	used := int64(len(readme) + len(notes))
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		out := filepath.Join(dir, "video.mp4")
		cmd := exec.CommandContext(vctx, ffmpeg, "-v", "error", "-y",
			"-f", "lavfi", "-i", "testsrc=duration=20:size=640x360:rate=25",
			"-f", "lavfi", "-i", "sine=frequency=440:duration=20",
			"-c:v", "mpeg4", "-q:v", "4", "-c:a", "aac", "-shortest", out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ffmpeg: %v: %s", err, msg)
		}
		if fi, err := os.Stat(out); err == nil {
			used += fi.Size()
		}
	}
	rest := max(size-used, 1<<20)
	f, err := os.Create(filepath.Join(dir, "random.bin"))
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'s', 'w', 'a', 'r', 'm', 'f', 's'})
	if _, err := io.CopyN(f, rng, rest); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
