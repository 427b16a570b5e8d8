package logfmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFormats(t *testing.T) {
	var text, js, journal bytes.Buffer
	for _, c := range []struct {
		buf *bytes.Buffer
		o   Options
	}{
		{&text, Options{}},
		{&js, Options{Format: JSON, Level: slog.LevelDebug}},
		{&journal, Options{Journal: true, Level: slog.LevelDebug}},
	} {
		l := slog.New(NewHandler(c.buf, c.o)).With("torrent", "film").WithGroup("peer")
		l.Debug("connected", "addr", "10.0.0.1:6881")
		l.Info("piece verified", "index", 7)
		l.Warn("slow peer")
		l.Error("disk full")
	}

	if strings.Contains(text.String(), "connected") || !strings.Contains(text.String(), "time=") ||
		!strings.Contains(text.String(), `level=WARN msg="slow peer" torrent=film`) {
		t.Errorf("text:\n%s", text.String())
	}

	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("json: %d lines:\n%s", len(lines), js.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatalf("json line %q: %v", lines[1], err)
	}
	if rec["msg"] != "piece verified" || rec["torrent"] != "film" || rec["peer"].(map[string]any)["index"] != 7.0 || rec["time"] == nil {
		t.Errorf("json record %v", rec)
	}

	want := []string{
		`<7>level=DEBUG msg=connected torrent=film peer.addr=10.0.0.1:6881`,
		`<6>level=INFO msg="piece verified" torrent=film peer.index=7`,
		`<4>level=WARN msg="slow peer" torrent=film`,
		`<3>level=ERROR msg="disk full" torrent=film`,
	}
	if got := strings.Split(strings.TrimSpace(journal.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for name, b := range map[string]*bytes.Buffer{"text": &text, "json": &js, "journal": &journal} {
		if bytes.ContainsAny(b.Bytes(), "\r\x1b") {
			t.Errorf("%s output has terminal codes: %q", name, b.String())
		}
	}
}

func TestParseFormat(t *testing.T) {
	var f Format
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(&f, "log-format", "")
	if err := fs.Parse([]string{"--log-format", "json"}); err != nil || f != JSON || f.String() != "json" {
		t.Errorf("json: %v %v", f, err)
	}
	if _, err := ParseFormat("xml"); !errors.Is(err, ErrFormat) {
		t.Errorf("xml: %v", err)
	}
	if v, err := ParseFormat("text"); err != nil || v != Text || v.String() != "text" {
		t.Errorf("text: %v %v", v, err)
	}
}

func TestIsJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !IsJournal(f) {
		t.Error("the stream named by JOURNAL_STREAM is not taken for the journal")
	}
	if IsJournal(os.Stdin) {
		t.Error("another file is taken for the journal")
	}
	t.Setenv("JOURNAL_STREAM", "")
	if IsJournal(f) {
		t.Error("journal without JOURNAL_STREAM")
	}
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("/dev/null taken for a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("a pipe taken for a terminal")
	}
	// A pseudo-terminal's slave side is a terminal.
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("logfmt: no /dev/ptmx: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	if !IsTerminal(pts) {
		t.Error("a pty is not taken for a terminal")
	}
}
