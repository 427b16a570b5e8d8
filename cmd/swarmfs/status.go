package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/sdnotify"
	"github.com/swarmfs/swarmfs/engine"
)

// statusLine formats one torrent's progress for humans; name is shown
// through printable.
func statusLine(name string, st engine.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", printable(name))
	if st.PiecesTotal == 0 {
		fmt.Fprintf(&b, "%s (%d peers)", st.State, st.Peers)
		return b.String()
	}
	pct := 100 * float64(st.PiecesHave) / float64(st.PiecesTotal)
	fmt.Fprintf(&b, "%s %.1f%% (%s)  down %s/s  up %s/s  peers %d (%d seeds)",
		st.State, pct, humanize.IBytes(uint64(max(st.BytesHave, 0))),
		humanize.IBytes(uint64(max(st.DownRate, 0))), humanize.IBytes(uint64(max(st.UpRate, 0))),
		st.Peers, st.Seeds)
	if note := webSeedNote(st); note != "" {
		b.WriteString("  " + note)
	}
	return b.String()
}

// eta formats the time left to fetch left bytes at rate bytes/s.
func eta(left int64, rate float64) string {
	if left <= 0 {
		return "done"
	}
	if rate < 1 {
		return "ETA unknown"
	}
	d := time.Duration(float64(left)/rate) * time.Second
	return "ETA " + d.Round(time.Second).String()
}

// statusPrinter writes status lines: in place on a terminal, as plain lines
// at most every interval otherwise.
type statusPrinter struct {
	w   io.Writer
	tty bool
	// rec, when not nil, takes the lines as info records "status" (see
	// engineFlags.statusHandler) instead of plain lines on w.
	rec      slog.Handler
	interval time.Duration
	last     time.Time
	width    int
}

func (p *statusPrinter) print(now time.Time, lines []string, force bool) {
	if p.tty {
		s := strings.Join(lines, " | ")
		pad := ""
		if n := p.width - len(s); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", s, pad)
		p.width = len(s)
		return
	}
	if !force && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	for _, l := range lines {
		if p.rec != nil {
			r := slog.NewRecord(now, slog.LevelInfo, "status", 0)
			r.AddAttrs(slog.String("line", l))
			_ = p.rec.Handle(context.Background(), r)
			continue
		}
		fmt.Fprintln(p.w, l)
	}
}

// done ends an in-place line.
func (p *statusPrinter) done() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

// libraryReporter reports a living library's state while a mount or
// server runs: a status line per torrent on stderr, in place on a
// terminal; elsewhere (a log file, the journal) only with -v and at most
// once a minute, since such a process runs for weeks and `swarmfs status`
// shows the same on demand. Under systemd it also sends a one-line
// summary as the unit's status (at most every notifyInterval).
type libraryReporter struct {
	lib    library.Library
	p      *statusPrinter // nil: no status lines
	n      *sdnotify.Notifier
	log    *slog.Logger // for failed notifications
	sent   string       // the last summary sent
	sentAt time.Time
}

// quietStatusInterval is how often status lines go to a stderr that is
// not a terminal, with -v; notifyInterval how often the summary may
// change the systemd status.
const (
	quietStatusInterval = time.Minute
	notifyInterval      = 10 * time.Second
)

// newLibraryReporter returns the reporter of lib; rec takes the status
// lines as records on a non-terminal (nil: plain lines); n may be nil;
// log gets failed notifications.
func newLibraryReporter(e *env, lib library.Library, verbose bool, rec slog.Handler, n *sdnotify.Notifier, log *slog.Logger) *libraryReporter {
	r := &libraryReporter{lib: lib, n: n, log: log}
	if e.tty || verbose {
		r.p = &statusPrinter{w: e.stderr, tty: e.tty, rec: rec, interval: quietStatusInterval}
	}
	return r
}

// report prints the status lines and sends the summary when they are due.
func (r *libraryReporter) report(now time.Time) {
	if r.p == nil && r.n == nil {
		return
	}
	ts := sortedTorrents(r.lib)
	if r.p != nil {
		var lines []string
		for _, t := range ts {
			lines = append(lines, statusLine(t.Name, engineStats(t.Stats)))
		}
		if len(lines) == 0 {
			lines = []string{"no torrents"}
		}
		r.p.print(now, lines, false)
	}
	if s := summary(ts); r.n != nil && s != r.sent && now.Sub(r.sentAt) >= notifyInterval {
		r.sent, r.sentAt = s, now
		if err := r.n.Status(s); err != nil {
			r.log.Warn("telling systemd the status", "err", err)
		}
	}
}

// stopping tells systemd that the process is stopping and why.
func (r *libraryReporter) stopping(why string) {
	if err := r.n.Stopping(why); err != nil {
		r.log.Warn("telling systemd the mount is stopping", "err", err)
	}
}

// done ends an in-place line.
func (r *libraryReporter) done() {
	if r.p != nil {
		r.p.done()
	}
}

// summary is one line about all the torrents, for systemd's status.
func summary(ts []library.Torrent) string {
	var have, size int64
	var down, up float64
	var peers int
	for _, t := range ts {
		have += t.Stats.BytesHave
		size += t.Size
		down += t.Stats.DownRate
		up += t.Stats.UpRate
		peers += t.Stats.Peers
	}
	return fmt.Sprintf("%d torrent(s), %s of %s verified, down %s/s, up %s/s, %d peers", len(ts),
		humanize.IBytes(uint64(max(have, 0))), humanize.IBytes(uint64(max(size, 0))),
		humanize.IBytes(uint64(max(down, 0))), humanize.IBytes(uint64(max(up, 0))), peers)
}

var errInterrupted = errors.New("interrupted")

// reachText says how a torrent's connected peers were found and reached,
// e.g. "tracker 2, lsd 1; utp 2, tcp 1; punched 1" (the connections made
// through a BEP 55 hole; the others are direct), most frequent first; ""
// when none are connected.
func reachText(r engine.Reach) string {
	part := func(counts []string) string { return strings.Join(counts, ", ") }
	src := countsText(r.Sources)
	if len(src) == 0 {
		return ""
	}
	out := part(src) + "; " + part(countsText(r.Transports))
	if r.Punched > 0 {
		out += fmt.Sprintf("; punched %d", r.Punched)
	}
	return out
}

// countsText formats counts by name, largest first, then by name.
func countsText[K interface {
	comparable
	fmt.Stringer
}](m map[K]int) []string {
	type kv struct {
		name string
		n    int
	}
	var kvs []kv
	for k, n := range m {
		if n > 0 {
			kvs = append(kvs, kv{k.String(), n})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, len(kvs))
	for i, x := range kvs {
		out[i] = fmt.Sprintf("%s %d", x.name, x.n)
	}
	return out
}

// torrentStatusLine is statusLine with how the peers were found and
// reached appended, as `swarmfs mount` prints it.
func torrentStatusLine(t *engine.Torrent) string {
	line := statusLine(t.Name(), t.Stats())
	if r := reachText(t.Reach()); r != "" {
		line += " [" + r + "]"
	}
	return line
}
