package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
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
	w        io.Writer
	tty      bool
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
// shows the same on demand.
type libraryReporter struct {
	lib library.Library
	p   *statusPrinter // nil: no status lines
}

// quietStatusInterval is how often status lines go to a stderr that is
// not a terminal, with -v.
const quietStatusInterval = time.Minute

func newLibraryReporter(e *env, lib library.Library, verbose bool) *libraryReporter {
	r := &libraryReporter{lib: lib}
	if e.tty || verbose {
		r.p = &statusPrinter{w: e.stderr, tty: e.tty, interval: quietStatusInterval}
	}
	return r
}

// report prints the status lines when they are due.
func (r *libraryReporter) report(now time.Time) {
	if r.p == nil {
		return
	}
	var lines []string
	for _, t := range sortedTorrents(r.lib) {
		lines = append(lines, statusLine(t.Name, engineStats(t.Stats)))
	}
	if len(lines) == 0 {
		lines = []string{"no torrents"}
	}
	r.p.print(now, lines, false)
}

// done ends an in-place line.
func (r *libraryReporter) done() {
	if r.p != nil {
		r.p.done()
	}
}

var errInterrupted = errors.New("interrupted")
