package logfmt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrFormat reports a --log-format value other than text or json.
var ErrFormat = errors.New("logfmt: unknown log format (want text or json)")

// Format is a log output format. The zero Format is Text. *Format is a
// flag.Value.
type Format uint8

// The formats.
const (
	Text Format = iota // slog key=value lines
	JSON               // one JSON object a line
)

// String returns "text" or "json".
func (f Format) String() string {
	if f == JSON {
		return "json"
	}
	return "text"
}

// Set parses "text" or "json" (for flag.Var).
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseFormat parses "text" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text":
		return Text, nil
	case "json":
		return JSON, nil
	}
	return Text, fmt.Errorf("%w: %q", ErrFormat, s)
}

// Options configure NewHandler. The zero Options log text at Info and
// above.
type Options struct {
	Format Format
	// Level is the lowest level logged; nil means slog.LevelInfo.
	Level slog.Leveler
	// Journal makes text lines start with a syslog priority and drop the
	// time, for a writer connected to journald. JSON is unaffected.
	Journal bool
}

// NewHandler returns a handler writing records to w as o says.
func NewHandler(w io.Writer, o Options) slog.Handler {
	ho := &slog.HandlerOptions{Level: o.Level}
	if o.Format == JSON {
		return slog.NewJSONHandler(w, ho)
	}
	if !o.Journal {
		return slog.NewTextHandler(w, ho)
	}
	ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	j := &journalHandler{shared: &journalShared{w: w}}
	j.inner = slog.NewTextHandler(&j.shared.buf, ho)
	return j
}

// NewLogger returns a logger writing to f (normally os.Stderr) in format
// at level and above, in journal style when f is the journal's stream.
func NewLogger(f *os.File, format Format, level slog.Leveler) *slog.Logger {
	return slog.New(NewHandler(f, Options{Format: format, Level: level, Journal: IsJournal(f)}))
}

// journalHandler formats each record into a shared buffer with a text
// handler, then writes it to w behind its syslog priority.
type journalHandler struct {
	shared *journalShared
	inner  slog.Handler // writes into shared.buf; derived handlers share it
}

type journalShared struct {
	mu  sync.Mutex // guards buf and serializes writes to w
	buf bytes.Buffer
	w   io.Writer
}

func (j *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return j.inner.Enabled(ctx, l)
}

func (j *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	s := j.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	s.buf.WriteString(priority(r.Level))
	if err := j.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := s.w.Write(s.buf.Bytes())
	return err
}

func (j *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{shared: j.shared, inner: j.inner.WithAttrs(as)}
}

func (j *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{shared: j.shared, inner: j.inner.WithGroup(name)}
}

// priority returns the sd-daemon(3) prefix for a level.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// IsJournal reports whether f is the stream systemd connected to the
// journal: $JOURNAL_STREAM holds its device and inode as "DEV:INO".
func IsJournal(f *os.File) bool {
	env := os.Getenv("JOURNAL_STREAM")
	if env == "" {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(env, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// IsTerminal reports whether f is a terminal: a character device that
// answers the terminal ioctl. /dev/null is a character device but not a
// terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
