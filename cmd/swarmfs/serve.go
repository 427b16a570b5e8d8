package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/control"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/httpserve"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/watch"
	"github.com/swarmfs/swarmfs/engine"
)

// serveFlags are the flags of swarmfs serve.
type serveFlags struct {
	engineFlags
	httpAddr    string
	httpToken   string
	watchDir    string
	prefetch    bool
	readTimeout time.Duration
}

func (s *serveFlags) flagSet() *flag.FlagSet {
	f := newFlagSet("serve")
	s.register(f)
	f.StringVar(&s.httpAddr, "http", "127.0.0.1:8080", "serve HTTP on `ADDR` (host:port; an empty host means 127.0.0.1: name another address to serve other machines)")
	f.StringVar(&s.httpToken, "http-token", "", "`TOKEN` the HTTP API needs to add and remove torrents (default: a random one, written to a file beside the control socket)")
	f.StringVar(&s.watchDir, "watch", "", "add the .torrent and .magnet files that appear in `DIR`, remove them when their files go")
	f.BoolVar(&s.prefetch, "prefetch", false, "also download the rest of each torrent in the background, below reads in priority")
	f.DurationVar(&s.readTimeout, "read-timeout", httpserve.DefaultReadTimeout, "fail an HTTP response when its data has not arrived after `DURATION` (the download goes on)")
	return f
}

func init() {
	commands["serve"] = &command{
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
	if s.readTimeout <= 0 {
		return usageError("--read-timeout must be positive")
	}
	addr, err := loopbackDefault(s.httpAddr)
	if err != nil {
		return err
	}
	if s.watchDir != "" {
		if fi, err := os.Stat(s.watchDir); err != nil || !fi.IsDir() {
			return usageError("--watch %s is not a directory", s.watchDir)
		}
	}
	srcs, err := loadSources(pos)
	if err != nil {
		return err
	}
	c, peers, err := s.newClient(e.stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	cacheDir := s.cacheDir
	if cacheDir == "" {
		cacheDir = cache.DefaultDir()
	}
	logger := newLogger(e.stderr, s.verbose)
	lib := newEngineLibrary(c, cacheDir, engine.AddOptions{Peers: peers, Prefetch: s.prefetch}, logger)
	for _, src := range srcs {
		if _, err := lib.Add(ctx, library.Source{Meta: src.meta, Magnet: src.magnet}); err != nil {
			return fmt.Errorf("%s: %w", src.arg, err)
		}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	url := "http://" + ln.Addr().String()
	key, _ := control.Key(url)
	dir := control.Dir(cacheDir)
	token, tokenFile := s.httpToken, ""
	if token == "" {
		if token, tokenFile, err = writeToken(dir, key); err != nil {
			ln.Close()
			return err
		}
		defer os.Remove(tokenFile)
	}
	ctl, err := control.Listen(control.SocketPath(dir, key), lib, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer ctl.Close()

	srv := &http.Server{
		Handler: httpserve.New(httpserve.Config{
			Library: lib, Token: token, ReadTimeout: s.readTimeout, Logger: logger,
			LoopbackOnly: ln.Addr().(*net.TCPAddr).IP.IsLoopback(),
		}),
		// Header reads are bounded; bodies stream for as long as they need.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	var wg sync.WaitGroup
	srvErr := make(chan error, 1)
	wg.Go(func() { srvErr <- srv.Serve(ln) })
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close() // streams still running: cut them
		}
		wg.Wait()
	}()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.watchDir != "" {
		wg.Go(func() {
			if err := watch.Run(wctx, watch.Config{Dir: s.watchDir, Library: lib, Logger: logger}); err != nil {
				logger.Error("watch", "err", err)
			}
		})
	}
	fmt.Fprintf(e.stdout, "serving %d torrent(s) at %s/ (peers on %s); control socket %s", len(srcs), url, c.Addr(), ctl.Path())
	if tokenFile != "" {
		fmt.Fprintf(e.stdout, "; API token in %s", tokenFile)
	}
	fmt.Fprintln(e.stdout, "; Ctrl-C to stop")
	return serveLibraryStatus(ctx, e, lib, srvErr)
}

// loopbackDefault fills in 127.0.0.1 when addr names no host.
func loopbackDefault(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError("--http %q: want host:port or :port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// writeToken writes a random API token, mode 0600, to the token file of key.
func writeToken(dir, key string) (token, path string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	path = control.TokenPath(dir, key)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("token: %w", err)
	}
	return token, path, nil
}

// serveLibraryStatus prints status lines until ctx ends or the HTTP
// server fails.
func serveLibraryStatus(ctx context.Context, e *env, lib library.Library, srvErr <-chan error) error {
	p := &statusPrinter{w: e.stderr, tty: e.tty, interval: 10 * time.Second}
	defer p.done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var lines []string
		for _, t := range sortedTorrents(lib) {
			lines = append(lines, statusLine(t.Name, engineStats(t.Stats)))
		}
		p.print(time.Now(), lines, false)
		select {
		case <-ctx.Done():
			return nil
		case err := <-srvErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("http: %w", err)
		case <-tick.C:
		}
	}
}
