package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// startLivingMount runs `swarmfs mount ARGS MOUNTPOINT` as a child process
// with its own XDG_RUNTIME_DIR (for the control socket) and waits until it
// is mounted.
func startLivingMount(t *testing.T, args ...string) (*enginetest.Proc, string) {
	p, mp, _ := startLivingMountLine(t, args...)
	return p, mp
}

// startLivingMountLine is startLivingMount also returning the rest of the
// "mounted " line.
func startLivingMountLine(t *testing.T, args ...string) (*enginetest.Proc, string, string) {
	t.Helper()
	requireFUSE(t)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, append(append([]string{"mount"}, args...), mp)...)
	line, err := p.AwaitLine("mounted ", 60*time.Second)
	if err != nil {
		t.Fatalf("mount: %v\n%s", err, p.Output())
	}
	return p, mp, line
}

// ctl runs add, remove or status in-process and fails the test unless it
// exits with code; it returns stdout.
func ctl(t *testing.T, code int, args ...string) string {
	t.Helper()
	got, out, errOut := runCmd(t, args...)
	if got != code {
		t.Fatalf("swarmfs %s: exit %d, want %d:\n%s%s", strings.Join(args, " "), got, code, out, errOut)
	}
	return out + errOut
}

// TestMountLiving mounts nothing but a watch directory and feeds the mount
// torrents that only libtorrent seeders have: through `swarmfs add` (the
// torrent is in the mount when add returns), `swarmfs remove` while a
// reader holds a file of the torrent (it reads to the end, the directory
// is gone at once, the torrent can be added again once the file is
// closed), `remove --purge` (the cache goes), and the watch directory
// (a file dropped in and taken out). SIGTERM then unmounts.
func TestMountLiving(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	alpha := enginetest.MakeContent(t, "alpha", 64<<10, []enginetest.FileSpec{
		{Path: "big.bin", Size: 6<<20 + 12345},
		{Path: "small.txt", Size: 1000},
	})
	beta := enginetest.MakeContent(t, "beta", 64<<10, []enginetest.FileSpec{{Path: "b.bin", Size: 2<<20 + 7}})
	sa := enginetest.StartSeeder(t, "127.0.7.22", alpha.Torrent, alpha.Dir)
	sb := enginetest.StartSeeder(t, "127.0.7.23", beta.Torrent, beta.Dir)
	watchDir, cacheDir := t.TempDir(), t.TempDir()
	p, mp := startLivingMount(t, "--cache-dir", cacheDir, "--no-dht", "--read-timeout", "30s",
		"--peer", sa.Addr+","+sb.Addr, "--watch", watchDir)
	if out := ctl(t, 0, "status", mp); out != "no torrents\n" {
		t.Errorf("status of an empty mount: %q", out)
	}
	if ents, err := os.ReadDir(mp); err != nil || len(ents) != 0 {
		t.Errorf("empty mount lists %v, %v", ents, err)
	}

	// add: the directory is there when the command returns.
	hashA := alpha.Meta.InfoHash.String()
	start := time.Now()
	if out := ctl(t, 0, "add", mp, alpha.Torrent); out != "added alpha ("+hashA+"): "+filepath.Join(mp, "alpha")+"\n" {
		t.Errorf("add says %q", out)
	}
	big := filepath.Join(mp, "alpha", "big.bin")
	if fi, err := os.Stat(big); err != nil || fi.Size() != 6<<20+12345 {
		t.Fatalf("stat right after add: %v, %v", fi, err)
	}
	t.Logf("swarmfs add to a file visible in the mount: %v (goal: under 100 ms)", time.Since(start))
	if out := ctl(t, 0, "status", mp); !strings.HasPrefix(out, hashA+"  alpha: ") {
		t.Errorf("status: %q", out)
	}

	// remove while a reader holds big.bin: it finishes its reads.
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	if out := ctl(t, 0, "remove", mp, "alpha"); !strings.Contains(out, "removed alpha") || !strings.Contains(out, "1 open file(s)") {
		t.Errorf("remove says %q", out)
	}
	if _, err := os.Stat(filepath.Join(mp, "alpha")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat right after remove: %v", err)
	}
	if out := ctl(t, 0, "status", mp); out != "no torrents\n" {
		t.Errorf("status after remove: %q", out)
	}
	ctl(t, 1, "add", mp, alpha.Torrent) // still being removed: its file is open
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("the open file failed after remove: %v", err)
	}
	want, err := os.ReadFile(alpha.Files["big.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), want) {
		t.Fatal("the open file read wrong bytes after remove")
	}
	f.Close()

	// Added again once the file is closed (the kernel releases it a
	// moment after close), then removed with --purge.
	waitUntil(t, "alpha to be added again", func() bool { code, _, _ := runCmd(t, "add", mp, alpha.Torrent); return code == 0 })
	if fileSHA1(t, filepath.Join(mp, "alpha", "small.txt")) != fileSHA1(t, alpha.Files["small.txt"]) {
		t.Error("small.txt differs after adding alpha again")
	}
	if _, err := os.Stat(filepath.Join(cacheDir, hashA)); err != nil {
		t.Fatalf("no cache of alpha: %v", err)
	}
	ctl(t, 0, "remove", "--purge", mp, hashA)
	waitUntil(t, "the purge", func() bool { _, err := os.Stat(filepath.Join(cacheDir, hashA)); return errors.Is(err, os.ErrNotExist) })

	// The watch directory adds and removes through the mount.
	tb, err := os.ReadFile(beta.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	watched := filepath.Join(watchDir, "beta.torrent")
	if err := os.WriteFile(watched, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	bbin := filepath.Join(mp, "beta", "b.bin")
	waitUntil(t, "the watched torrent in the mount", func() bool { _, err := os.Stat(bbin); return err == nil })
	if fileSHA1(t, bbin) != fileSHA1(t, beta.Files["b.bin"]) {
		t.Error("b.bin differs through the mount")
	}
	if err := os.Remove(watched); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the watched torrent to leave the mount", func() bool {
		_, err := os.Stat(filepath.Join(mp, "beta"))
		return errors.Is(err, os.ErrNotExist)
	})

	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 30*time.Second)
	if !strings.Contains(p.Output(), "unmounted "+mp) {
		t.Errorf("SIGTERM did not unmount cleanly:\n%s", p.Output())
	}
}

// TestMountFixedAndSeveral checks which mounts can change: one source
// without --watch keeps its layout (a single file at the root) and refuses
// add and remove with a reason; two sources make a mount that takes more,
// here with --http, whose index follows the adds.
func TestMountFixedAndSeveral(t *testing.T) {
	one := enginetest.MakeContent(t, "one.bin", 16<<10, []enginetest.FileSpec{{Size: 5000}})
	two := enginetest.MakeContent(t, "two", 16<<10, []enginetest.FileSpec{{Path: "t.bin", Size: 3000}})
	three := enginetest.MakeContent(t, "three", 16<<10, []enginetest.FileSpec{{Path: "x", Size: 10}})

	p, mp := startLivingMount(t, "--cache-dir", t.TempDir(), "--no-dht", one.Torrent)
	if fi, err := os.Stat(filepath.Join(mp, "one.bin")); err != nil || fi.Size() != 5000 {
		t.Errorf("single file at the root: %v, %v", fi, err)
	}
	if out := ctl(t, 1, "add", mp, two.Torrent); !strings.Contains(out, "fixed") {
		t.Errorf("add to a fixed mount: %q", out)
	}
	if out := ctl(t, 1, "remove", mp, "one.bin"); !strings.Contains(out, "--watch") {
		t.Errorf("remove from a fixed mount: %q", out)
	}
	if out := ctl(t, 0, "status", mp); !strings.Contains(out, "one.bin: ") {
		t.Errorf("status of a fixed mount: %q", out)
	}
	p.Kill()
	waitExit(t, p, 20*time.Second)

	_, mp, line := startLivingMountLine(t, "--cache-dir", t.TempDir(), "--no-dht", "--http", "127.0.0.1:0", one.Torrent, two.Torrent)
	m := regexp.MustCompile(`HTTP at (http://127\.0\.0\.1:\d+)/; API token in (\S+);`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start message names no HTTP server: %q", line)
	}
	ctl(t, 0, "add", mp, three.Torrent)
	// Another torrent named two gets a directory of its own; add says which.
	twoAgain := enginetest.MakeContent(t, "two", 16<<10, []enginetest.FileSpec{{Path: "other.bin", Size: 20}})
	if out := ctl(t, 0, "add", mp, twoAgain.Torrent); !strings.HasSuffix(out, ": "+filepath.Join(mp, "two (2)")+"\n") {
		t.Errorf("add of a second torrent named two says %q", out)
	}
	if fi, err := os.Stat(filepath.Join(mp, "two (2)", "other.bin")); err != nil || fi.Size() != 20 {
		t.Errorf("two (2)/other.bin: %v, %v", fi, err)
	}
	if _, page := request(t, http.MethodGet, m[1]+"/", nil); !bytes.Contains(page, []byte(">three<")) || !bytes.Contains(page, []byte(">two<")) {
		t.Errorf("the mount's HTTP index lacks its torrents:\n%s", page)
	}
	if fi, err := os.Stat(m[2]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, %v", fi, err)
	}
	var names []string
	ents, err := os.ReadDir(mp)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if err != nil || strings.Join(names, " ") != "one.bin three two two (2)" {
		t.Errorf("mount of several lists %v, %v", names, err)
	}
	if fi, err := os.Stat(filepath.Join(mp, "one.bin", "one.bin")); err != nil || fi.Size() != 5000 {
		t.Errorf("a single-file torrent among several: %v, %v", fi, err)
	}
}
