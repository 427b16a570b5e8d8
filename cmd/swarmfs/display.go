package main

import (
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// printable is the one sanitizer for text that comes from a torrent, a
// magnet, a peer or a file name on its way to a terminal or a log line. It
// shows escaped what could drive a terminal or mislead a reader: control
// characters (C0, DEL and C1, so every ESC and CSI sequence), format
// characters such as bidi overrides and zero-width marks, other invisible
// or non-printing runes, and invalid UTF-8 (each such byte as \xNN).
// Printable text is returned unchanged.
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case printableRune(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// jsonPrintable rewrites the runes of encoded JSON that printable would
// escape as \uXXXX escapes, which decode to the same text: encoding/json
// already escapes control characters but passes bidi overrides and other
// format characters through raw.
func jsonPrintable(b []byte) []byte {
	if isPrintable(string(b)) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == '\n' || printableRune(r) || r == utf8.RuneError && n <= 1 {
			out = append(out, b[i:i+n]...)
		} else if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	return out
}

// printableLines applies printable to each line of s, keeping the line
// breaks: for multi-line messages of our own, such as errors with a hint.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || !printableRune(r) {
			return false
		}
		i += n
	}
	return true
}

// printableRune reports whether r is shown as itself: a graphic rune or
// the ASCII space. unicode.IsPrint excludes controls, format characters
// (bidi overrides, zero-width joiners), line and paragraph separators and
// spaces other than U+0020.
func printableRune(r rune) bool { return r == ' ' || unicode.IsPrint(r) }

// newLogger logs warnings (or debug messages with -v) as text to w. Every
// message and attribute value passes through printable first, so names
// that the engine logs from torrents and peers cannot reach the terminal raw.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	return slog.New(sanitizingHandler{slog.NewTextHandler(w, &slog.HandlerOptions{Level: logLevel(verbose)})})
}

// logLevel is the lowest level logged: warnings, or debug with -v.
func logLevel(verbose bool) slog.Level {
	if verbose {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// sanitizingHandler passes records to h with the message, group names and
// attribute values made printable.
type sanitizingHandler struct{ h slog.Handler }

var _ slog.Handler = sanitizingHandler{}

func (s sanitizingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.h.Enabled(ctx, l)
}

func (s sanitizingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, printable(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(printableAttr(a))
		return true
	})
	return s.h.Handle(ctx, out)
}

func (s sanitizingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = printableAttr(a)
	}
	return sanitizingHandler{s.h.WithAttrs(clean)}
}

func (s sanitizingHandler) WithGroup(name string) slog.Handler {
	return sanitizingHandler{s.h.WithGroup(printable(name))}
}

// printableAttr returns a with its key and value made printable; groups
// are cleaned recursively. Values that marshal themselves as text
// (addresses, hashes) are left to the handler.
func printableAttr(a slog.Attr) slog.Attr {
	a.Key = printable(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(printable(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]slog.Attr, len(g))
		for i, ga := range g {
			clean[i] = printableAttr(ga)
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			a.Value = slog.StringValue(printable(x.Error()))
		case encoding.TextMarshaler:
			a.Value = v
		default:
			a.Value = slog.StringValue(printable(fmt.Sprintf("%+v", x)))
		}
	default:
		a.Value = v
	}
	return a
}
