package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/swarmfs/swarmfs/engine"
)

var seedCommand = &command{
	summary: "verify existing data of a torrent and seed it",
	usage:   "[flags] FILE.torrent DIR",
	examples: []string{
		"swarmfs seed ubuntu.iso.torrent ~/Downloads",
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
	if srcs[0].meta == nil {
		return usageError("seed needs a .torrent file, not a magnet URI")
	}
	if fi, err := os.Stat(pos[1]); err != nil {
		return err
	} else if !fi.IsDir() {
		return usageError("%s is not a directory", pos[1])
	}
	c, err := f.newClient(f.logger(e))
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.AddTorrent(srcs[0].meta, engine.AddOptions{Peers: f.peers, Import: pos[1]})
	if err != nil {
		return err
	}
	name := printable(t.Name())
	fmt.Fprintf(e.stdout, "verifying %s in %s\n", name, pos[1])
	if err := waitWithStatus(ctx, e, f.statusHandler(e), t, t.ImportDone()); err != nil {
		return err
	}
	st := t.Stats()
	if st.PiecesHave < st.PiecesTotal {
		fmt.Fprintf(e.stdout, "%s: %d of %d pieces verified in %s; seeding those and downloading the rest\n",
			name, st.PiecesHave, st.PiecesTotal, pos[1])
	}
	fmt.Fprintf(e.stdout, "seeding %s on %s; Ctrl-C to stop\n", name, c.Addr())
	return waitWithStatus(ctx, e, f.statusHandler(e), t, nil)
}
