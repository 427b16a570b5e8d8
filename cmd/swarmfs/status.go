package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
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

var errInterrupted = errors.New("interrupted")
