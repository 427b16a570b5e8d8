package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// hostileName is a torrent name that would set the terminal's title and
// clear the screen if printed raw (OSC ... BEL, ESC [2J), with a C1 CSI
// and a bidi override besides.
const hostileName = "evil\x1b]0;pwned\x07\x1b[2J\u009b31m\u202egnp.exe"

// rawBytes are the sequences that must never reach the terminal.
var rawBytes = []string{"\x1b", "\x07", "\u009b", "\u202e"}

func TestPrintableEscapesHostileText(t *testing.T) {
	for in, want := range map[string]string{
		"plain name.mkv":   "plain name.mkv",
		"tab\there":        `tab\there`,
		"del\x7f":          `del\x7f`,
		"c1\u0085\u009b":   `c1\u0085\u009b`,
		"bidi\u202eoverr":  `bidi\u202eoverr`,
		"zw\u200bj":        `zw\u200bj`,
		"bad\xc3(utf8\xff": `bad\xc3(utf8\xff`,
		hostileName:        `evil\x1b]0;pwned\a\x1b[2J\u009b31m\u202egnp.exe`,
	} {
		got := printable(in)
		if got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
		if !isPrintable(got) {
			t.Errorf("printable(%q) = %q is not printable itself", in, got)
		}
	}
}

func TestJSONPrintable(t *testing.T) {
	in := map[string]string{"name": hostileName + "\U0001F600\U000E0001"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonPrintable(b)
	checkNoRaw(t, "json", string(got))
	if strings.Contains(string(got), "\U000E0001") {
		t.Errorf("a tag character (format, outside the BMP) is raw: %q", got)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["name"] != in["name"] {
		t.Errorf("escaped JSON %s decodes to %q, %v; want %q", got, back["name"], err, in["name"])
	}
}

func TestLoggerEscapesAttributes(t *testing.T) {
	var b bytes.Buffer
	l := newLogger(&b, true).With("torrent", hostileName).WithGroup("g\x1b")
	l.Warn("metadata for "+hostileName, "path", []string{hostileName}, "err", os.ErrNotExist,
		"name", hostileName, "group", struct{ N string }{hostileName})
	checkNoRaw(t, "log", b.String())
	if !strings.Contains(b.String(), `evil\\x1b]0;pwned`) {
		t.Errorf("log line lacks the escaped name: %s", b.String())
	}
}

// checkNoRaw fails the test if out holds any terminal control sequence.
func checkNoRaw(t *testing.T, what, out string) {
	t.Helper()
	for _, r := range rawBytes {
		if strings.Contains(out, r) {
			t.Errorf("%s holds a raw %q:\n%q", what, r, out)
			return
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines (the
// engine logs from its own).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bgCmd is one command line running in-process until it ends or stop.
type bgCmd struct {
	out, err syncBuffer
	cancel   context.CancelFunc
	done     chan int
}

func startCmd(args ...string) *bgCmd {
	ctx, cancel := context.WithCancel(context.Background())
	c := &bgCmd{cancel: cancel, done: make(chan int, 1)}
	go func() { c.done <- run(ctx, &env{stdout: &c.out, stderr: &c.err}, args) }()
	return c
}

// waitOut waits until stdout contains s or the command ends.
func (c *bgCmd) waitOut(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(c.out.String(), s) {
		select {
		case code := <-c.done:
			c.done <- code
			t.Fatalf("command ended (exit %d) before printing %q:\n%s\n%s", code, s, c.out.String(), c.err.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s\n%s", s, d, c.out.String(), c.err.String())
		}
	}
}

// wait stops the command (unless it ends by itself first) and returns its
// exit code.
func (c *bgCmd) wait(t *testing.T, stop bool, d time.Duration) int {
	t.Helper()
	if stop {
		c.cancel()
	}
	defer c.cancel()
	select {
	case code := <-c.done:
		return code
	case <-time.After(d):
		t.Fatalf("command did not end within %v:\n%s\n%s", d, c.out.String(), c.err.String())
		return -1
	}
}

// TestHostileNamesEscaped runs every command that shows a torrent's name on
// a torrent named with terminal escapes, served by an in-process seeder,
// with -v so that the engine's and the mount's log lines are captured too:
// no escape byte may reach stdout or stderr, in the .torrent and the magnet
// forms (the name then comes from the magnet's dn or from the metadata).
func TestHostileNamesEscaped(t *testing.T) {
	c := enginetest.MakeContent(t, hostileName, 32<<10, []enginetest.FileSpec{
		{Path: "a.bin", Size: 100_000}, {Path: "sub\x1b[31m/b.bin", Size: 40_000},
	})
	seeder, err := engine.New(engine.Config{ListenAddr: "127.0.0.1:0", CacheDir: t.TempDir(), NoDHT: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seeder.Close() })
	st, err := seeder.AddTorrent(c.Meta, engine.AddOptions{Import: c.Dir})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Complete():
	case <-time.After(time.Minute):
		t.Fatal("the seeder did not verify its data")
	}
	peer := seeder.Addr().String()
	hash := c.Meta.InfoHash.String()
	bare := "magnet:?xt=urn:btih:" + hash
	withDN := bare + "&dn=" + url.QueryEscape(hostileName)
	common := func(args ...string) []string {
		return append(args, "-v", "--no-dht", "--peer", peer, "--cache-dir", t.TempDir())
	}

	check := func(what string, code int, out, errOut string) {
		t.Helper()
		if code != 0 {
			t.Errorf("%s: exit %d\n%s\n%s", what, code, out, errOut)
		}
		checkNoRaw(t, what+" stdout", out)
		checkNoRaw(t, what+" stderr", errOut)
	}
	for _, args := range [][]string{
		{"info", c.Torrent},
		{"info", withDN},
		{"info", "--json", c.Torrent},
		{"create", filepath.Join(c.Dir, hostileName), "-o", filepath.Join(t.TempDir(), "x.torrent")},
		common("get", c.Torrent, "-o", t.TempDir()),
		common("get", bare, "-o", t.TempDir()),
		common("get", withDN, "-o", t.TempDir()),
	} {
		cmd := startCmd(args...)
		code := cmd.wait(t, false, 2*time.Minute)
		out, errOut := cmd.out.String(), cmd.err.String()
		check(args[0]+" "+args[1], code, out, errOut)
		if args[0] == "get" && !strings.Contains(out, `evil\x1b]0;pwned`) {
			t.Errorf("%v: the escaped name is not shown:\n%s", args, out)
		}
	}

	sd := startCmd(common("seed", c.Torrent, c.Dir)...)
	sd.waitOut(t, "seeding ", time.Minute)
	check("seed", sd.wait(t, true, 30*time.Second), sd.out.String(), sd.err.String())

	requireFUSE(t)
	for _, src := range []string{c.Torrent, bare, withDN} {
		mp := t.TempDir()
		detachOnCleanup(t, mp)
		m := startCmd(common("mount", src, mp)...)
		m.waitOut(t, "mounted 1 torrent", time.Minute)
		dir := filepath.Join(mp, hostileName)
		if src == bare {
			dir = filepath.Join(mp, hash)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			if _, err := os.Stat(filepath.Join(dir, "a.bin")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mount %s: files did not appear:\n%s\n%s", src, m.out.String(), m.err.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := os.ReadFile(filepath.Join(dir, "a.bin")); err != nil {
			t.Errorf("mount %s: %v", src, err)
		}
		check("mount "+src, m.wait(t, true, 30*time.Second), m.out.String(), m.err.String())
	}
}
