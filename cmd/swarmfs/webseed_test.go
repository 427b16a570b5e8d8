package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// checkPadded compares every file of pc below root with what was written.
func checkPadded(t *testing.T, root string, pc *enginetest.PaddedContent, how string) {
	t.Helper()
	for rel, want := range pc.Files {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("%s %s: %v", rel, how, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s differs %s (%d bytes, want %d)", rel, how, len(got), len(want))
		}
	}
}

// TestMountWebSeedOnly mounts a multi-file torrent with pad files and names
// that need percent-encoding whose only source is nginx, given with
// --web-seed: there are no peers at all. Every file reads back byte-exact
// and user.swarmfs.status says how much came from the web seed.
func TestMountWebSeedOnly(t *testing.T) {
	requireFUSE(t)
	const pl = 32 << 10
	pc := enginetest.MakePaddedContent(t, "Web #1 100%", pl, enginetest.AwkwardFiles(pl), 3)
	base := enginetest.StartNginx(t, pc.Dir)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, "mount", "--cache-dir", t.TempDir(), "--no-dht", "--read-timeout", "30s", "--web-seed", base, pc.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	root := filepath.Join(mp, pc.Name)
	checkPadded(t, root, pc, "through a mount fed by a web seed only")
	// The status comes from a stats snapshot refreshed a few times a second.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st := xattr(t, root, "user.swarmfs.status")
		if strings.Contains(st, "web seeds") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user.swarmfs.status = %q, want it to mention web seeds", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
}

// TestGetWebSeedURLList downloads a torrent whose url-list names nginx
// with `swarmfs get`, no peers at all; with --no-web-seeds the same get
// fetches nothing.
func TestGetWebSeedURLList(t *testing.T) {
	const pl = 16 << 10
	dir := t.TempDir()
	base := enginetest.StartNginx(t, dir)
	pc := enginetest.MakePaddedContent(t, "get list", pl, enginetest.AwkwardFiles(pl), 4, base)
	if err := os.Rename(filepath.Join(pc.Dir, pc.Name), filepath.Join(dir, pc.Name)); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	p := startSwarmfs(t, "get", "--cache-dir", t.TempDir(), "--no-dht", "-o", out, pc.Torrent)
	select {
	case <-p.Exited():
	case <-time.After(45 * time.Second):
		t.Fatalf("swarmfs get did not finish within 45 s:\n%s", p.Output())
	}
	checkPadded(t, filepath.Join(out, pc.Name), pc, "in swarmfs get's output:\n"+p.Output())
	if !strings.Contains(p.Output(), "web seeds") {
		t.Errorf("get does not say how much came from web seeds:\n%s", p.Output())
	}

	off := startSwarmfs(t, "get", "--cache-dir", t.TempDir(), "--no-dht", "--no-web-seeds", "-o", t.TempDir(), pc.Torrent)
	select {
	case <-off.Exited():
		t.Fatalf("get --no-web-seeds without peers ended:\n%s", off.Output())
	case <-time.After(3 * time.Second):
	}
	if strings.Contains(off.Output(), "web seeds") {
		t.Errorf("get --no-web-seeds used web seeds:\n%s", off.Output())
	}
}

// TestMountWebSeedStall mounts a torrent whose only web seed answers with
// headers and then stalls: a read fails with EIO at --read-timeout instead
// of hanging.
func TestMountWebSeedStall(t *testing.T) {
	requireFUSE(t)
	const size = 300000
	c := enginetest.MakeContent(t, "stalled.bin", 16<<10, []enginetest.FileSpec{{Size: size}})
	var requests atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var first, last int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last); err != nil {
			http.Error(w, "want a Range", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
		w.Header().Set("Content-Length", strconv.FormatInt(last-first+1, 10))
		w.WriteHeader(http.StatusPartialContent)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	detachOnCleanup(t, mp)
	p := startSwarmfs(t, "mount", "--cache-dir", t.TempDir(), "--no-dht", "--read-timeout", "2s", "--web-seed", srv.URL+"/", c.Torrent, mp)
	p.WaitLine(t, "mounted ", 30*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(filepath.Join(mp, "stalled.bin"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read from a stalled web seed: %v, want EIO", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("a read from a stalled web seed hangs past --read-timeout 2s:\n%s", p.Output())
	}
	if requests.Load() == 0 {
		t.Fatal("the web seed was never asked")
	}
	if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 20*time.Second)
}

// TestWebSeedFlagErrors checks the web seed flags' usage errors.
func TestWebSeedFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"get", "--web-seed", "ftp://example.org/x", "x.torrent"},
		{"mount", "--web-seed", "not a url", "x.torrent", t.TempDir()},
		{"serve", "--http", "127.0.0.1:0", "--web-seed", "http://127.0.0.1/", "--no-web-seeds"},
	} {
		code, _, errOut := runCmd(t, args...)
		if code != 2 || !strings.Contains(errOut, "web-seed") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error about --web-seed", args, code, errOut)
		}
	}
}
