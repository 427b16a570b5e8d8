package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/logfmt"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// notifySocket opens a datagram socket that plays systemd's NOTIFY_SOCKET
// and points the environment (inherited by child processes) at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// notification waits for the next datagram on c.
func notification(t *testing.T, c *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %v: %v", timeout, err)
	}
	return string(buf[:n])
}

// TestMountUnderSystemd runs a mount the way swarmfs@.service does
// (Type=notify, logs in JSON on a stderr that is not a terminal): it sends
// READY=1 once the filesystem answers, then its status, and STOPPING=1
// on SIGTERM before it unmounts; every line it logs is JSON, status lines
// included, and none carries a carriage return.
func TestMountUnderSystemd(t *testing.T) {
	c := enginetest.MakeContent(t, "svc", 16<<10, []enginetest.FileSpec{{Path: "a.bin", Size: 5000}})
	sock := notifySocket(t)
	p, mp := startLivingMount(t, "--cache-dir", t.TempDir(), "--no-dht", "--log-format", "json", "-v", c.Torrent)

	ready := notification(t, sock, 30*time.Second)
	if want := "READY=1\nSTATUS=mounted 1 torrent(s) at " + mp; ready != want {
		t.Errorf("first notification %q, want %q", ready, want)
	}
	if fi, err := os.Stat(filepath.Join(mp, "svc", "a.bin")); err != nil || fi.Size() != 5000 {
		t.Errorf("mount not up when READY=1 came: %v, %v", fi, err)
	}
	if st := notification(t, sock, 30*time.Second); !strings.HasPrefix(st, "STATUS=1 torrent(s), 0 B of 4.9 KiB verified") {
		t.Errorf("status notification %q", st)
	}

	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		n := notification(t, sock, 30*time.Second)
		if strings.HasPrefix(n, "STATUS=") {
			continue // a status sent just before the signal
		}
		if want := "STOPPING=1\nSTATUS=unmounting " + mp; n != want {
			t.Errorf("notification after SIGTERM %q, want %q", n, want)
		}
		break
	}
	waitExit(t, p, 30*time.Second)
	if ents, err := os.ReadDir(mp); err != nil || len(ents) != 0 {
		t.Errorf("still mounted after SIGTERM: %v, %v", ents, err)
	}

	var records, status int
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, "\r") {
			t.Errorf("carriage return in %q", line)
		}
		if strings.HasPrefix(line, "mounted ") || strings.HasPrefix(line, "unmounted ") {
			continue // stdout
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		records++
		if rec["msg"] == "status" && strings.HasPrefix(rec["line"].(string), "svc: ") {
			status++
		}
	}
	if records == 0 || status == 0 {
		t.Errorf("%d JSON records, %d status records:\n%s", records, status, p.Output())
	}
}

// TestStatusLinesOnAPipe runs get with stdout on /dev/null (a character
// device, not a terminal) and stderr on a pipe: the status lines are
// plain lines, not redrawn with carriage returns.
func TestStatusLinesOnAPipe(t *testing.T) {
	c := enginetest.MakeContent(t, "piped", 16<<10, []enginetest.FileSpec{{Path: "p.bin", Size: 3000}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "get", "--no-dht", "--cache-dir", t.TempDir(), "-o", t.TempDir(), c.Torrent)
	cmd.Env = append(os.Environ(), "SWARMFS_TEST_MAIN=1")
	var stderr syncBuf
	cmd.Stderr = &stderr // stdout stays nil: /dev/null
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a status line", func() bool { return strings.Contains(stderr.String(), "piped: ") })
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	if out := stderr.String(); strings.Contains(out, "\r") {
		t.Errorf("status lines redrawn in place on a pipe: %q", out)
	}
}

// TestLogFormats checks the loggers of --log-format: JSON with hostile
// names escaped, journal priorities, status lines as records, and a bad
// value refused.
func TestLogFormats(t *testing.T) {
	const hostile = "evil\x1b]0;owned\x07\u202e"
	var b bytes.Buffer
	f := engineFlags{logFormat: logfmt.JSON}
	f.logger(&env{stderr: &b}).Warn("peer "+hostile, "torrent", hostile, "err", os.ErrNotExist)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["level"] != "WARN" {
		t.Fatalf("json log %q: %v", b.String(), err)
	}
	if strings.ContainsAny(b.String(), "\x1b\x07\u202e") || !strings.Contains(rec["torrent"].(string), `evil\x1b]0;owned\a\u202e`) {
		t.Errorf("json log passes raw control characters: %q", b.String())
	}

	b.Reset()
	f = engineFlags{}
	l := f.logger(&env{stderr: &b, journal: true})
	l.Info("hidden")
	l.Warn("shown", "torrent", hostile)
	if out := b.String(); !strings.HasPrefix(out, "<4>level=WARN msg=shown torrent=") || strings.Contains(out, "time=") ||
		strings.Contains(out, "\x1b") || strings.Count(out, "\n") != 1 {
		t.Errorf("journal log %q", out)
	}

	b.Reset()
	f = engineFlags{logFormat: logfmt.JSON}
	e := &env{stderr: &b}
	p := &statusPrinter{w: &b, rec: f.statusHandler(e), interval: time.Minute}
	p.print(time.Now(), []string{statusLine(hostile, engine.Stats{State: engine.StateDownloading})}, false)
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "status" || !strings.HasPrefix(rec["line"].(string), `evil\x1b`) {
		t.Errorf("status record %q: %v", b.String(), err)
	}
	if (&engineFlags{}).statusHandler(e) != nil || f.statusHandler(&env{tty: true}) != nil {
		t.Error("plain status lines expected for text logs and on a terminal")
	}

	for _, cmd := range []string{"get", "seed", "mount", "serve"} {
		if code, _, errOut := runCmd(t, cmd, "--log-format", "xml", "x"); code != 2 || !strings.Contains(errOut, "log format") {
			t.Errorf("%s --log-format xml: exit %d: %s", cmd, code, errOut)
		}
	}
}

// TestJournalStream runs get with stderr on a pipe that $JOURNAL_STREAM
// names, as systemd does when it connects a service to the journal: log
// lines then start with their syslog priority and carry no time stamp.
func TestJournalStream(t *testing.T) {
	c := enginetest.MakeContent(t, "journaled", 16<<10, []enginetest.FileSpec{{Path: "j.bin", Size: 3000}})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(pw.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "get", "-v", "--no-dht", "--cache-dir", t.TempDir(), "-o", t.TempDir(), c.Torrent)
	cmd.Env = append(os.Environ(), "SWARMFS_TEST_MAIN=1", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var stderr syncBuf
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&stderr, pr)
		close(copied)
	}()
	waitUntil(t, "a status line", func() bool { return strings.Contains(stderr.String(), "journaled: ") })
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	<-copied
	var logged int
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(line, "journaled: ") || strings.HasPrefix(line, "swarmfs get: ") {
			continue // a status line, the final error
		}
		if len(line) < 3 || line[0] != '<' || line[2] != '>' || strings.Contains(line, "time=") {
			t.Errorf("not a journal line: %q", line)
		}
		logged++
	}
	if logged == 0 {
		t.Errorf("nothing logged with -v:\n%s", stderr.String())
	}
}
