package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"golang.org/x/sys/unix"
)

// requireFUSE skips the test when this machine cannot mount FUSE.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse (apt-get install fuse3 and load the fuse module)")
	}
	if os.Getuid() != 0 {
		enginetest.RequireTool(t, "fusermount3", "fuse3")
	}
}

// startSwarmfs runs the swarmfs command (this test binary in main mode) as a
// child process.
func startSwarmfs(t *testing.T, args ...string) *enginetest.Proc {
	t.Helper()
	t.Setenv("SWARMFS_TEST_MAIN", "1")
	return enginetest.Start(t, os.Args[0], args...)
}

// detachOnCleanup makes sure nothing stays mounted at mp when the test ends.
func detachOnCleanup(t *testing.T, mp string) {
	t.Cleanup(func() {
		for range 50 {
			err := unix.Unmount(mp, unix.MNT_DETACH)
			if err == unix.EINVAL || err == unix.ENOENT {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func fileSHA1(t *testing.T, name string) [20]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var s [20]byte
	copy(s[:], h.Sum(nil))
	return s
}

// runTool runs an external program with a deadline and returns its output.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMountStreamsFromLibtorrent mounts a torrent served only by a libtorrent
// seeder through the real swarmfs command, lists it, checks every file's
// bytes, decodes the video with ffprobe and ffmpeg (also after a seek) while
// the rest is still not downloaded, reads xattrs, and unmounts it from
// "another shell". Then it kills a mount with SIGKILL, removes the seeder,
// and remounts: the stale mount is replaced and the data read before is
// served from the cache with no peer at all.
func TestMountStreamsFromLibtorrent(t *testing.T) {
	requireFUSE(t)
	enginetest.RequireLibtorrent(t)
	ffprobe := enginetest.RequireTool(t, "ffprobe", "ffmpeg")
	c := enginetest.MakeContent(t, "media", 64<<10, []enginetest.FileSpec{
		{Path: "video.mp4", VideoSeconds: 20},
		{Path: "data/blob.bin", Size: 24<<20 + 12345},
		{Path: "data/small.txt", Size: 1000},
		{Path: "empty", Size: 0},
	})
	seeder := enginetest.StartSeeder(t, "127.0.7.2", c.Torrent, c.Dir)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	detachOnCleanup(t, mp)
	args := []string{"mount", "--cache-dir", cacheDir, "--no-dht", "--read-timeout", "30s", "--peer", seeder.Addr, c.Torrent, mp}
	p := startSwarmfs(t, args...)
	p.WaitLine(t, "mounted ", 30*time.Second)
	root := filepath.Join(mp, "media")

	// ls -lR shows every file with its size before any data is fetched.
	for rel, src := range c.Files {
		want, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("stat through the mount: %v", err)
		}
		if got.Size() != want.Size() || got.Mode().Perm() != 0o444 {
			t.Errorf("%s: size %d mode %v, want %d -r--r--r--", rel, got.Size(), got.Mode(), want.Size())
		}
	}

	// A real media tool reads the video through the mount while most of
	// the torrent is not downloaded, and again after a seek.
	video := filepath.Join(root, "video.mp4")
	dur := strings.TrimSpace(runTool(t, time.Minute, ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", video))
	if d, err := strconv.ParseFloat(dur, 64); err != nil || d < 19 || d > 21 {
		t.Errorf("ffprobe duration %q, want about 20 s", dur)
	}
	out := runTool(t, time.Minute, "ffmpeg", "-v", "error", "-ss", "12", "-i", video, "-frames:v", "5", "-f", "framemd5", "-")
	if strings.Count(out, "\n0,") < 5 {
		t.Errorf("ffmpeg after -ss 12 decoded too few frames:\n%s", out)
	}
	if xa := runToolMaybe("getfattr", "-n", "user.swarmfs.progress", "--only-values", video); xa != "" && !strings.Contains(xa, "/") {
		t.Errorf("user.swarmfs.progress = %q", xa)
	}
	var progress [64]byte
	n, err := unix.Getxattr(root, "user.swarmfs.infohash", progress[:])
	if err != nil || string(progress[:n]) != c.Meta.InfoHash.String() {
		t.Errorf("user.swarmfs.infohash = %q, %v", progress[:n], err)
	}

	// Every byte read through the mount equals the source.
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(root, rel)) != fileSHA1(t, src) {
			t.Errorf("%s differs through the mount", rel)
		}
	}

	// `swarmfs unmount` from another shell ends the mount process.
	if code, _, errOut := runCmd(t, "unmount", mp); code != 0 {
		t.Fatalf("swarmfs unmount: exit %d: %s", code, errOut)
	}
	waitExit(t, p, 20*time.Second)

	// Mount again, SIGKILL it, and take the only seeder away: the next
	// mount replaces the dead mount and serves what was verified from the
	// cache.
	p = startSwarmfs(t, args...)
	p.WaitLine(t, "mounted ", 30*time.Second)
	p.Kill()
	waitExit(t, p, 20*time.Second)
	seeder.Kill()
	if _, err := os.Stat(root); err == nil {
		t.Fatal("the killed mount still answers")
	}
	p = startSwarmfs(t, "mount", "--cache-dir", cacheDir, "--no-dht", "--read-timeout", "5s", c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	// The note goes to stderr, read apart from stdout: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Output(), "dead swarmfs mount"); {
		if time.Now().After(deadline) {
			t.Fatalf("no message about replacing the stale mount:\n%s", p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for rel, src := range c.Files {
		if fileSHA1(t, filepath.Join(root, rel)) != fileSHA1(t, src) {
			t.Errorf("%s differs after remount from the cache", rel)
		}
	}
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
	if !strings.Contains(p.Output(), "unmounted") {
		t.Errorf("SIGINT did not unmount cleanly:\n%s", p.Output())
	}
}

func runToolMaybe(name string, args ...string) string {
	if _, err := exec.LookPath(name); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, name, args...).Output()
	return string(bytes.TrimSpace(out))
}

func waitExit(t *testing.T, p *enginetest.Proc, d time.Duration) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(d):
		// SIGQUIT makes the Go runtime print every goroutine's stack.
		_ = syscall.Kill(p.PID(), syscall.SIGQUIT)
		select {
		case <-p.Exited():
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("swarmfs did not exit within %v:\n%s", d, p.Output())
	}
}

// TestDemo runs the embedded demo for a moment: it must mount, verify every
// file through the mount and clean up after itself.
func TestDemo(t *testing.T) {
	requireFUSE(t)
	mp := filepath.Join(t.TempDir(), "demo")
	detachOnCleanup(t, mp)
	code, out, errOut := runCmd(t, "demo", "--dir", mp, "--size", "8MiB", "--seeders", "2", "--duration", "1s")
	if code != 0 {
		t.Fatalf("demo exit %d:\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"mounted at", "ls -R:", "first 64 KiB", "matches the source", "unmounted"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DIFFERS") {
		t.Errorf("demo read wrong data:\n%s", out)
	}
	if ents, err := os.ReadDir(mp); err != nil || len(ents) != 0 {
		t.Errorf("demo left %s mounted or populated: %v %v", mp, ents, err)
	}
}
