package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
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
	fset.StringVar(&g.out, "o", ".", "`DIR` to write the torrent's files into")
	fset.BoolVar(&g.seed, "seed", false, "keep seeding after the download completes, until interrupted (or --seed-ratio, --seed-time)")
	g.seedPol.register(fset, "after the download and exit (implies --seed)")
	return fset
}

var getCommand = &command{
	summary: "download a torrent, verify it and write its files to a directory",
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
	t, err := srcs[0].add(c, g.ws.apply(engine.AddOptions{Peers: g.peers, Prefetch: true}))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := waitWithStatus(ctx, e, g.statusHandler(e), t, t.Complete()); err != nil {
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
		humanize.IBytes(uint64(st.BytesHave)), el.Round(time.Millisecond),
		humanize.IBytes(uint64(float64(st.Downloaded+st.WebSeedBytes)/max(el.Seconds(), 1e-3))), from)
	if err := export(ctx, t, g.out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s into %s\n", name, g.out)
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

// export writes the torrent's files below dir, reading them through the
// engine (all pieces are verified by then).
func export(ctx context.Context, t *engine.Torrent, dir string) error {
	info := t.Info()
	if info == nil {
		return errors.New("no metadata")
	}
	base := dir
	if !info.SingleFile {
		base = filepath.Join(dir, info.Name)
	}
	buf := make([]byte, 1<<20)
	for i, f := range info.Files {
		if err := exportFile(ctx, t, i, f, base, buf); err != nil {
			return err
		}
	}
	return nil
}

func exportFile(ctx context.Context, t *engine.Torrent, i int, f metainfo.File, base string, buf []byte) error {
	var rel string
	if len(f.Path) == 1 && t.Info().SingleFile {
		rel = f.Path[0]
	} else {
		rel = filepath.Join(f.Path...)
	}
	name := filepath.Join(base, rel)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if f.Executable {
		mode = 0o755
	}
	out, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	r, err := t.NewReader(i)
	if err != nil {
		out.Close()
		return err
	}
	defer r.Close()
	var off int64
	for off < f.Length {
		n, err := r.ReadAt(ctx, buf, off)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				out.Close()
				return werr
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Close()
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	return out.Close()
}
