// Package logfmt builds the slog handler behind `--log-format text|json`:
// text (slog's key=value lines) for people, JSON (one object a line) for
// log shippers. When standard error is the stream systemd connected to
// the journal ($JOURNAL_STREAM), text lines start with a syslog priority
// (<3> error, <4> warning, <6> info, <7> debug), which journald turns into
// the entry's priority, and leave out the time, which the journal records
// itself. No output ever carries terminal control codes.
//
// IsTerminal tells a terminal from other character devices such as
// /dev/null (a mode check alone takes /dev/null for a terminal), so that
// commands redraw status lines in place only on a real terminal.
//
// # Concurrency
//
// Handlers are safe for concurrent use, as slog requires; each record is
// written with one Write call.
//
// # Errors
//
// ErrFormat reports an unknown format name.
package logfmt
