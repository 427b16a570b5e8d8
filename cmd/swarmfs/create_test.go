package main

import (
	"crypto/sha1"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

func writeContent(t *testing.T, dir string, files map[string]int) {
	t.Helper()
	for name, n := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + len(name))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateCommand(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "stuff")
	writeContent(t, content, map[string]int{"a.bin": 70000, "sub/b.txt": 300, "sub/empty": 0})
	out := filepath.Join(dir, "stuff.torrent")
	code, stdout, stderr := runLine(t, "create",
		"-t", "http://127.0.1.1:6969/announce,udp://127.0.1.2:6969", "--tracker", "http://127.0.1.3/announce",
		"-w", "http://127.0.1.4/a/,http://127.0.1.4/b/", "--web-seed", "https://127.0.1.5/",
		"--piece-length", "32KiB", "--private", "-c", "hello", "--no-date", "--created-by", "tester",
		content, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mi, err := metainfo.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wantTiers := [][]string{{"http://127.0.1.1:6969/announce", "udp://127.0.1.2:6969"}, {"http://127.0.1.3/announce"}}
	if !reflect.DeepEqual(mi.Trackers(), wantTiers) {
		t.Errorf("tiers %q, want %q", mi.Trackers(), wantTiers)
	}
	if !reflect.DeepEqual(mi.WebSeeds, []string{"http://127.0.1.4/a/", "http://127.0.1.4/b/", "https://127.0.1.5/"}) {
		t.Errorf("web seeds %q", mi.WebSeeds)
	}
	in := mi.Info
	if in.Name != "stuff" || in.PieceLength != 32<<10 || !in.Private || mi.Comment != "hello" || mi.CreatedBy != "tester" ||
		!mi.CreationDate.IsZero() || len(in.Files) != 3 || in.TotalLength != 70300 {
		t.Errorf("torrent: %+v %+v", mi, in)
	}
	a, _ := os.ReadFile(filepath.Join(content, "a.bin"))
	if in.Pieces[0] != sha1.Sum(a[:32<<10]) {
		t.Error("first piece hash wrong")
	}
	if !strings.Contains(stdout, mi.InfoHash.String()) || !strings.Contains(stdout, "created "+out) {
		t.Errorf("stdout %q", stdout)
	}

	// The output exists now: refused without --force, replaced with it.
	code, _, stderr = runLine(t, "create", content, "-o", out)
	if code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("overwrite without --force: exit %d %q", code, stderr)
	}
	code, _, stderr = runLine(t, "create", "-f", "--name", "renamed", content, "-o", out)
	if code != 0 {
		t.Fatalf("--force: exit %d %s", code, stderr)
	}
	if mi2, err := metainfo.LoadFile(out); err != nil || mi2.Info.Name != "renamed" || mi2.Info.PieceLength != 16<<10 {
		t.Errorf("after --force: %+v, %v", mi2, err)
	}
}

func TestCreateDefaultOutput(t *testing.T) {
	dir := t.TempDir()
	writeContent(t, dir, map[string]int{"one.bin": 1000})
	t.Chdir(dir)
	code, _, stderr := runLine(t, "create", "one.bin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mi, err := metainfo.LoadFile(filepath.Join(dir, "one.bin.torrent"))
	if err != nil || !mi.Info.SingleFile || mi.CreationDate.IsZero() {
		t.Fatalf("default output: %+v, %v", mi, err)
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	writeContent(t, dir, map[string]int{"f": 10})
	f := filepath.Join(dir, "f")
	o := filepath.Join(dir, "o.torrent")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create"}, 2, "exactly one PATH"},
		{[]string{"create", f, f, "-o", o}, 2, "exactly one PATH"},
		{[]string{"create", "--piece-length", "1000", f, "-o", o}, 2, "power of two"},
		{[]string{"create", "--piece-length", "32MiB", f, "-o", o}, 2, "power of two"},
		{[]string{"create", "--piece-length", "lots", f, "-o", o}, 2, "piece-length"},
		{[]string{"create", "-t", "ftp://x/", f, "-o", o}, 2, "scheme"},
		{[]string{"create", "-t", "not a url", f, "-o", o}, 2, "not a URL"},
		{[]string{"create", "-t", ",", f, "-o", o}, 2, "empty tracker"},
		{[]string{"create", "-w", "udp://x:1", f, "-o", o}, 2, "scheme"},
		{[]string{"create", filepath.Join(dir, "missing"), "-o", o}, 1, "no such file"},
		{[]string{"create", f, "-o", filepath.Join(dir, "nodir", "o.torrent")}, 1, "no such file"},
	}
	for _, tt := range tests {
		code, _, stderr := runLine(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d %q, want exit %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
	if _, err := os.Stat(o); !os.IsNotExist(err) {
		t.Errorf("a failed create left %s behind", o)
	}
}
