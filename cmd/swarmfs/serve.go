package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/sdnotify"
	"github.com/swarmfs/swarmfs/engine"
)

// serveFlags are the flags of swarmfs serve.
type serveFlags struct {
	engineFlags
	ws       webSeedFlags
	living   livingFlags
	prefetch bool
	seedPol  seedPolicyFlags
}

func (s *serveFlags) flagSet() *flag.FlagSet {
	f := newFlagSet("serve")
	s.register(f)
	s.ws.register(f)
	s.living.register(f, "127.0.0.1:8080")
	f.BoolVar(&s.prefetch, "prefetch", false, "also download the rest of each torrent in the background, below reads in priority")
	s.seedPol.register(f, "a removed torrent's cached pieces")
	return f
}

var serveCommand = &command{
	summary: "stream torrents over HTTP without a mount (index, Range requests, playlists, metrics, JSON API)",
	usage:   "[flags] [SOURCE...]  (SOURCE: FILE.torrent, MAGNET, or a directory of .torrent files)",
	examples: []string{
		"swarmfs serve --http :8080 movie.torrent   # then open http://127.0.0.1:8080/",
		"swarmfs serve --http 0.0.0.0:8080 --watch ~/torrents   # for the TV too",
		"mpv http://127.0.0.1:8080/playlist/INFOHASH.m3u",
		"swarmfs add http://127.0.0.1:8080 'magnet:?xt=urn:btih:...'",
	},
	flagSet: func() *flag.FlagSet { return new(serveFlags).flagSet() },
	run:     runServe,
}

func runServe(ctx context.Context, e *env, args []string) error {
	var s serveFlags
	pos, err := parseFlags(s.flagSet(), args)
	if err != nil {
		return err
	}
	if err := s.check(); err != nil {
		return err
	}
	if err := s.ws.check(); err != nil {
		return err
	}
	if err := s.living.check(); err != nil {
		return err
	}
	if err := s.seedPol.check(); err != nil {
		return err
	}
	if s.noUpload && s.seedPol.p.set() {
		return usageError("--no-upload and --seed-ratio or --seed-time exclude each other")
	}
	if s.living.httpAddr == "" {
		return usageError("serve needs --http ADDR")
	}
	srcs, err := loadSources(pos)
	if err != nil {
		return err
	}
	logger := s.logger(e)
	notify, err := sdnotify.FromEnv()
	if err != nil {
		logger.Warn("not telling systemd about the server", "err", err)
	}
	c, err := s.newClient(logger)
	if err != nil {
		return err
	}
	defer c.Close()
	cacheDir := s.cacheDir
	if cacheDir == "" {
		cacheDir = cache.DefaultDir()
	}
	lib := newEngineLibrary(c, cacheDir, s.ws.apply(engine.AddOptions{Peers: s.peers, Prefetch: s.prefetch}), logger)
	lib.seeding = newRemovedSeeding(s.seedPol.p, logger)
	defer lib.seeding.Close() // before c.Close
	for _, src := range srcs {
		if _, err := lib.Add(ctx, library.Source{Meta: src.meta, Magnet: src.magnet}); err != nil {
			return fmt.Errorf("%s: %w", src.arg, err)
		}
	}
	fe, err := startFrontEnds(ctx, s.living, lib, "", cacheDir, logger)
	if err != nil {
		return err
	}
	defer fe.Close()
	fmt.Fprintf(e.stdout, "serving %d torrent(s) at %s/ (peers on %s); control socket %s", len(srcs), fe.URL, c.Addr(), fe.Socket)
	if fe.TokenFile != "" {
		fmt.Fprintf(e.stdout, "; API token in %s", fe.TokenFile)
	}
	fmt.Fprintln(e.stdout, "; Ctrl-C to stop")
	if err := notify.Ready(fmt.Sprintf("serving %d torrent(s) at %s/", len(srcs), fe.URL)); err != nil {
		logger.Warn("telling systemd the server is ready", "err", err)
	}
	return serveLibraryStatus(ctx, newLibraryReporter(e, lib, s.verbose, s.statusHandler(e), notify, logger), fe.Err())
}

// serveLibraryStatus reports the library's state until ctx ends or the
// HTTP server fails.
func serveLibraryStatus(ctx context.Context, r *libraryReporter, srvErr <-chan error) error {
	defer r.done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.report(time.Now())
		select {
		case <-ctx.Done():
			r.stopping("stopping")
			return nil
		case err := <-srvErr:
			if isServerClosed(err) {
				return nil
			}
			return fmt.Errorf("http: %w", err)
		case <-tick.C:
		}
	}
}
