package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets tests run the swarmfs command itself as a child process:
// with SWARMFS_TEST_MAIN=1 the test binary behaves as swarmfs.
func TestMain(m *testing.M) {
	if os.Getenv("SWARMFS_TEST_MAIN") == "1" {
		os.Args = withTestDefaults(os.Args)
		main()
		return
	}
	os.Exit(m.Run())
}

// withTestDefaults inserts the flags that keep a swarmfs run by the tests
// off the machine's real network (no LSD multicast, no port mapping
// requests to its gateway) after the command name of the commands that
// take engine flags.
func withTestDefaults(args []string) []string {
	if len(args) < 2 {
		return args
	}
	switch args[1] {
	case "get", "seed", "mount", "serve":
		out := append([]string{args[0], args[1]}, testEngineDefaults...)
		return append(out, args[2:]...)
	}
	return args
}

// testEngineDefaults are the flags withTestDefaults inserts.
var testEngineDefaults = []string{"--no-lsd", "--no-port-mapping"}

// runCmd runs one command line in-process and returns exit code and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestHelpForEveryCommand(t *testing.T) {
	code, out, _ := runCmd(t, "help")
	if code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for name, c := range commands {
		if !strings.Contains(out, name) {
			t.Errorf("help does not list %s", name)
		}
		code, h, _ := runCmd(t, "help", name)
		if code != 0 || !strings.Contains(h, "Usage: swarmfs "+name) {
			t.Errorf("help %s: exit %d, %q", name, code, h)
		}
		if len(c.examples) == 0 || !strings.Contains(h, "Examples:") {
			t.Errorf("help %s has no examples", name)
		}
		if c.flagSet != nil {
			fs := c.flagSet()
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(h, "-"+f.Name) {
					t.Errorf("help %s does not document -%s", name, f.Name)
				}
			})
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	torrentDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(torrentDir, "x.torrent"), []byte("d4:infoe"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"mount"}, 2, "want a mountpoint"},
		{[]string{"mount", "only-one.torrent"}, 2, "want a mountpoint after the sources"},
		{[]string{"mount", torrentDir}, 2, "want a mountpoint after the sources"},
		{[]string{"mount", "only-one-arg"}, 1, "does not exist"},
		{[]string{"mount", "--watch", "/nonexistent-watch", "/mnt"}, 2, "--watch"},
		{[]string{"mount", "--cache-size", "lots", "a.torrent", "/mnt"}, 2, "bad size"},
		{[]string{"mount", "--read-timeout", "-1s", "a.torrent", "/mnt"}, 2, "must be positive"},
		{[]string{"mount", "--port", "70000", "testdata-missing.torrent", t.TempDir()}, 2, "not a TCP port"},
		{[]string{"mount", "testdata-missing.torrent", t.TempDir()}, 1, "testdata-missing.torrent"},
		{[]string{"mount", "--peer", "nonsense", "a.torrent", t.TempDir()}, 2, "--peer"},
		{[]string{"mount", "/nonexistent.torrent", "/nonexistent-mountpoint"}, 1, "does not exist"},
		{[]string{"get"}, 2, "exactly one"},
		{[]string{"get", "--encryption", "always", "x.torrent"}, 2, "--encryption"},
		{[]string{"get", "--transport", "quic", "x.torrent"}, 2, "--transport"},
		{[]string{"get", "magnet:?xt=urn:btih:zzz"}, 1, "magnet"},
		{[]string{"seed", "x.torrent"}, 2, "directory"},
		{[]string{"unmount"}, 2, "one mountpoint"},
		{[]string{"demo", "--seeders", "0"}, 2, "--seeders"},
		{[]string{"version", "extra"}, 2, "no arguments"},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, errOut, tt.code, tt.msg)
		}
		if strings.Contains(errOut, "panic") || strings.Count(strings.TrimSpace(errOut), "\n") > 2 {
			t.Errorf("%v: error is not a short message: %q", tt.args, errOut)
		}
	}
}

// TestREADMEDocumentsEveryFlag keeps README.md true: every command and every
// flag of every command must appear in it.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for name, c := range commands {
		if !strings.Contains(text, "swarmfs "+name) {
			t.Errorf("README.md does not show 'swarmfs %s'", name)
		}
		if c.flagSet == nil {
			continue
		}
		c.flagSet().VisitAll(func(f *flag.Flag) {
			if !strings.Contains(text, "-"+f.Name) {
				t.Errorf("README.md does not document %s -%s", name, f.Name)
			}
		})
	}
}
