package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
)

type getFlags struct {
	engineFlags
	ws      webSeedFlags
	out     string
	seed    bool
	seedPol seedPolicyFlags
}

func (g *getFlags) flagSet() *flag.FlagSet {
	fset := newFlagSet("get")
	g.register(fset)
	g.ws.register(fset)
	fset.StringVar(&g.out, "o", ".", "`DIR` to write the torrent's files into, in place as pieces verify (DIR/NAME...); run again, it resumes")
	fset.BoolVar(&g.seed, "seed", false, "keep seeding from DIR after the download completes, until interrupted (or --seed-ratio, --seed-time)")
	g.seedPol.register(fset, "after the download and exit (implies --seed)")
	return fset
}

var getCommand = &command{
	summary: "download a torrent into a directory, writing its files in place as pieces verify",
	usage:   "[flags] FILE.torrent|MAGNET",
	examples: []string{
		"swarmfs get ubuntu.iso.torrent -o ~/Downloads",
		"swarmfs get --seed 'magnet:?xt=urn:btih:...' -o /srv/data",
		"swarmfs get --seed-ratio 1.5 --seed-time 2h --max-upload-rate 1MiB ubuntu.iso.torrent",
	},
	flagSet: func() *flag.FlagSet { return new(getFlags).flagSet() },
	run:     runGet,
}

func runGet(ctx context.Context, e *env, args []string) error {
	var g getFlags
	pos, err := parseFlags(g.flagSet(), args)
	if err != nil {
		return err
	}
	if err := g.check(); err != nil {
		return err
	}
	if err := g.ws.check(); err != nil {
		return err
	}
	if err := g.seedPol.check(); err != nil {
		return err
	}
	g.seed = g.seed || g.seedPol.p.set()
	if g.seed && g.noUpload {
		return usageError("--no-upload and seeding (--seed, --seed-ratio, --seed-time) exclude each other")
	}
	if len(pos) != 1 {
		return usageError("want exactly one torrent file or magnet URI")
	}
	srcs, err := loadSources(pos)
	if err != nil {
		return err
	}
	c, err := g.newClient(g.logger(e))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := os.MkdirAll(g.out, 0o755); err != nil {
		return err
	}
	// The torrent's files are written in place under -o DIR as their pieces
	// verify: nothing is copied at the end and none of the data is kept in
	// the cache (only the resume state), so --cache-size does not limit it.
	// Run again after an interruption, it resumes from the resume state.
	t, err := srcs[0].add(c, g.ws.apply(engine.AddOptions{Peers: g.peers, Prefetch: true, DataDir: g.out}))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := waitComplete(ctx, e, g.statusHandler(e), t); err != nil {
		return err
	}
	st := t.Stats()
	el := time.Since(start)
	name := printable(t.Name())
	from := ""
	if note := webSeedNote(st); note != "" {
		from = ", " + note
	}
	fmt.Fprintf(e.stdout, "%s: downloaded %s in %s (%s/s%s), verified\n", name,
		humanize.IBytes(uint64(t.Info().TotalLength)), el.Round(time.Millisecond),
		humanize.IBytes(uint64(float64(st.Downloaded+st.WebSeedBytes)/max(el.Seconds(), 1e-3))), from)
	fmt.Fprintf(e.stdout, "wrote %s into %s\n", name, g.out)
	if vp := t.VerifyProgress(); vp.Pieces > 0 {
		fmt.Fprintf(e.stdout, "re-checked %d pieces already in %s (%d good)\n", vp.Checked, g.out, vp.Good)
	}
	if !g.seed {
		return nil
	}
	if !g.seedPol.p.set() {
		fmt.Fprintf(e.stdout, "seeding on %s; Ctrl-C to stop\n", c.Addr())
		return waitWithStatus(ctx, e, g.statusHandler(e), t, nil)
	}
	return seedUntil(ctx, e, g.statusHandler(e), t, g.seedPol.p, c.Addr().String())
}

// seedUntil seeds t, with status lines, until the policy is reached
// (then it says so) or ctx ends.
func seedUntil(ctx context.Context, e *env, rec slog.Handler, t *engine.Torrent, p seedPolicy, addr string) error {
	name := printable(t.Name())
	fmt.Fprintf(e.stdout, "seeding on %s until %s; Ctrl-C to stop\n", addr, p)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reached := make(chan struct{})
	var why string
	var werr error
	go func() {
		defer close(reached)
		why, werr = waitSeedPolicy(sctx, t, p, time.Now(), seedPollEvery)
	}()
	err := waitWithStatus(ctx, e, rec, t, reached)
	cancel()
	<-reached
	switch {
	case ctx.Err() != nil:
		return nil // interrupted: not an error, as for --seed alone
	case err != nil:
		return err
	case werr != nil:
		return werr
	}
	fmt.Fprintf(e.stdout, "%s: stopped seeding: %s\n", name, why)
	return nil
}

// waitComplete prints the torrent's status until every piece is verified
// in place. A disk error of the data directory ends it at once: the pieces
// cannot be stored, and retrying would only fetch them again.
func waitComplete(ctx context.Context, e *env, rec slog.Handler, t *engine.Torrent) error {
	p := &statusPrinter{w: e.stderr, tty: e.tty, rec: rec, interval: 5 * time.Second}
	defer p.done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := t.Err(); err != nil {
			return err
		}
		st := t.Stats()
		line := statusLine(t.Name(), st)
		if info := t.Info(); info != nil {
			line += "  " + eta(info.TotalLength-st.BytesHave, st.DownRate)
		}
		p.print(time.Now(), []string{line}, false)
		select {
		case <-t.Complete():
			if err := t.Err(); err != nil {
				return err
			}
			p.print(time.Now(), []string{statusLine(t.Name(), t.Stats())}, true)
			return nil
		case <-ctx.Done():
			return errInterrupted
		case <-tick.C:
		}
	}
}

// waitWithStatus prints the torrent's status until until is closed (nil:
// until ctx ends, which is then not an error). rec, when not nil, takes
// the lines as records (see engineFlags.statusHandler).
func waitWithStatus(ctx context.Context, e *env, rec slog.Handler, t *engine.Torrent, until <-chan struct{}) error {
	p := &statusPrinter{w: e.stderr, tty: e.tty, rec: rec, interval: 5 * time.Second}
	defer p.done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		st := t.Stats()
		line := statusLine(t.Name(), st)
		if info := t.Info(); info != nil && until != nil {
			line += "  " + eta(info.TotalLength-st.BytesHave, st.DownRate)
		}
		p.print(time.Now(), []string{line}, false)
		select {
		case <-until:
			p.print(time.Now(), []string{statusLine(t.Name(), t.Stats())}, true)
			return nil
		case <-ctx.Done():
			if until == nil {
				return nil
			}
			return errInterrupted
		case <-tick.C:
		}
	}
}
