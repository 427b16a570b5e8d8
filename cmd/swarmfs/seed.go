package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
)

var seedCommand = &command{
	summary: "verify existing data of a torrent in place and seed it from there",
	usage:   "[flags] FILE.torrent DIR|FILE",
	examples: []string{
		"swarmfs seed ubuntu.iso.torrent ~/Downloads",
		"swarmfs seed ubuntu.iso.torrent ~/Downloads/renamed.iso",
		"swarmfs seed --port 6881 album.torrent /srv/music",
	},
	flagSet: func() *flag.FlagSet { return seedFlags(new(engineFlags)) },
	run:     runSeed,
}

func seedFlags(f *engineFlags) *flag.FlagSet {
	fset := newFlagSet("seed")
	f.register(fset)
	return fset
}

func runSeed(ctx context.Context, e *env, args []string) error {
	var f engineFlags
	pos, err := parseFlags(seedFlags(&f), args)
	if err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if f.noUpload {
		return usageError("seed with --no-upload would upload nothing")
	}
	if len(pos) != 2 {
		return usageError("want a torrent file and the directory holding its data")
	}
	srcs, err := loadSources(pos[:1])
	if err != nil {
		return err
	}
	mi := srcs[0].meta
	if mi == nil {
		return usageError("seed needs a .torrent file, not a magnet URI")
	}
	opt, where, err := seedLayout(mi.Info, pos[1])
	if err != nil {
		return err
	}
	opt.Peers = f.peers
	c, err := f.newClient(f.logger(e))
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.AddTorrent(mi, opt)
	if err != nil {
		return err
	}
	name := printable(t.Name())
	fmt.Fprintf(e.stdout, "verifying %s in place in %s\n", name, printable(where))
	if err := waitVerified(ctx, e, f.statusHandler(e), t); err != nil {
		return err
	}
	// The store's own bitfield: the torrent's published stats may not have
	// caught up with the end of verification yet.
	bf := t.Bitfield()
	have := 0
	for _, ok := range bf {
		if ok {
			have++
		}
	}
	// After verification, so that peers send only what is missing; with
	// every piece too, so that pieces of a file changed while seeding that
	// no longer verify are downloaded again.
	t.SetPrefetch(true)
	if have < len(bf) {
		fmt.Fprintf(e.stdout, "%s: %d of %d pieces verified in %s; seeding those and downloading the rest into %s\n",
			name, have, len(bf), printable(where), printable(where))
	} else {
		fmt.Fprintf(e.stdout, "%s: all %d pieces verified in %s\n", name, len(bf), printable(where))
	}
	fmt.Fprintf(e.stdout, "seeding %s on %s; Ctrl-C to stop\n", name, c.Addr())
	return waitWithStatus(ctx, e, f.statusHandler(e), t, nil)
}

// seedLayout says where seed's data is: path is a directory holding the
// torrent's content as it names it (DIR/NAME for a single file,
// DIR/NAME/... for several), or, when it is the content itself, the file of
// a single-file torrent or the top directory of a multi-file one (then
// DIR/NAME does not exist and DIR holds the torrent's first file). where is
// the content's path, for messages.
func seedLayout(info *metainfo.Info, path string) (opt engine.AddOptions, where string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return opt, "", err
	}
	if !fi.IsDir() {
		if !info.SingleFile {
			return opt, "", usageError("%s is a file, but the torrent holds several: give the directory holding %s", path, printable(info.Name))
		}
		return engine.AddOptions{Content: path}, path, nil
	}
	where = filepath.Join(path, info.Name)
	if _, err := os.Lstat(where); err != nil && !info.SingleFile && len(info.Files) > 0 {
		if _, err := os.Stat(filepath.Join(append([]string{path}, info.Files[0].Path...)...)); err == nil {
			return engine.AddOptions{Content: path}, path, nil
		}
	}
	return engine.AddOptions{DataDir: path}, where, nil
}

// waitVerified prints a progress line (pieces checked of those to check,
// and the hashing rate) until the store has verified the data on disk
// (VerifyProgress.Done is set only once the store is open).
func waitVerified(ctx context.Context, e *env, rec slog.Handler, t *engine.Torrent) error {
	p := &statusPrinter{w: e.stderr, tty: e.tty, rec: rec, interval: 5 * time.Second}
	defer p.done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for {
		if err := t.Err(); err != nil {
			return err
		}
		vp := t.VerifyProgress()
		el := time.Since(start)
		line := fmt.Sprintf("%s: verifying %d of %d pieces checked (%s of %s, %.1f MB/s)", printable(t.Name()),
			vp.Checked, vp.Pieces, humanize.IBytes(uint64(vp.Bytes)), humanize.IBytes(uint64(vp.TotalBytes)),
			float64(vp.Bytes)/1e6/max(el.Seconds(), 1e-3))
		if vp.Done {
			p.print(time.Now(), []string{line}, true)
			return nil
		}
		p.print(time.Now(), []string{line}, false)
		select {
		case <-ctx.Done():
			return errInterrupted
		case <-tick.C:
		}
	}
}
