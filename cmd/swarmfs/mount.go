package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/control"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/sdnotify"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
)

type mountFlags struct {
	engineFlags
	ws          webSeedFlags
	living      livingFlags
	readTimeout time.Duration
	prefetch    bool
	dataDir     string
	allowOther  bool
	pageCache   fs.PageCacheMode
	seedPol     seedPolicyFlags
}

func (m *mountFlags) flagSet() *flag.FlagSet {
	f := newFlagSet("mount")
	m.register(f)
	m.ws.register(f)
	m.living.register(f, "")
	m.seedPol.register(f, "a removed torrent's cached pieces")
	f.DurationVar(&m.readTimeout, "read-timeout", fs.DefaultReadTimeout, "fail a read with EIO when its data has not arrived after `DURATION` (the download goes on)")
	f.BoolVar(&m.prefetch, "prefetch", false, "also download the rest of each torrent in the background, below reads in priority")
	f.StringVar(&m.dataDir, "data-dir", "", "keep each torrent as its own files under `DIR` (DIR/NAME/...), written in place as pieces verify, instead of in the cache; what was read stays as ordinary files and no cache cap applies to them")
	f.BoolVar(&m.allowOther, "allow-other", false, "let other users access the mount (needs user_allow_other in /etc/fuse.conf unless root)")
	f.Func("page-cache", "which files the kernel page cache keeps: `MODE` auto (complete files; files still downloading are read directly, which saves a copy and lets Ctrl-C interrupt a waiting read), always or never (default auto)", func(s string) error {
		v, err := fs.ParsePageCacheMode(s)
		m.pageCache = v
		return err
	})
	return f
}

var mountCommand = &command{
	summary: "mount torrents as a read-only filesystem and stream their files on demand",
	usage:   "[flags] [SOURCE...] MOUNTPOINT  (SOURCE: FILE.torrent, MAGNET, or a directory of .torrent files)",
	examples: []string{
		"swarmfs mount ubuntu.iso.torrent ~/t",
		"swarmfs mount --prefetch --cache-size 20GiB ~/torrents/ ~/t",
		"swarmfs mount 'magnet:?xt=urn:btih:...&dn=movie' ~/t && mpv ~/t/movie/movie.mkv",
		"swarmfs mount --watch ~/torrents ~/t   # then: swarmfs add ~/t film.torrent; swarmfs status ~/t",
	},
	flagSet: func() *flag.FlagSet { return new(mountFlags).flagSet() },
	run:     runMount,
}

var unmountCommand = &command{
	summary:  "unmount a swarmfs mount (from another shell)",
	usage:    "[--lazy] MOUNTPOINT",
	examples: []string{"swarmfs unmount ~/t", "swarmfs unmount --lazy ~/t   # while a program still has a file open"},
	flagSet:  unmountFlags,
	run:      runUnmount,
}

func unmountFlags() *flag.FlagSet {
	f := newFlagSet("unmount")
	f.Bool("lazy", false, "detach the mount at once even while files are open; the kernel drops it when they are closed")
	return f
}

func runUnmount(_ context.Context, e *env, args []string) error {
	f := unmountFlags()
	pos, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want exactly one mountpoint")
	}
	lazy := f.Lookup("lazy").Value.(flag.Getter).Get().(bool)
	if lazy {
		err = fs.UnmountLazy(pos[0])
	} else {
		err = fs.Unmount(pos[0])
	}
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("%w\n(files on the mount are still open; close them, or use 'swarmfs unmount --lazy %s')", err, pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "unmounted %s\n", pos[0])
	return nil
}

func runMount(ctx context.Context, e *env, args []string) error {
	var m mountFlags
	pos, err := parseFlags(m.flagSet(), args)
	if err != nil {
		return err
	}
	if err := m.check(); err != nil {
		return err
	}
	if err := m.ws.check(); err != nil {
		return err
	}
	if err := m.living.check(); err != nil {
		return err
	}
	if err := m.seedPol.check(); err != nil {
		return err
	}
	if m.noUpload && m.seedPol.p.set() {
		return usageError("--no-upload and --seed-ratio or --seed-time exclude each other")
	}
	if len(pos) == 0 {
		return usageError("want a mountpoint, after the sources if any")
	}
	if m.readTimeout <= 0 {
		return usageError("--read-timeout must be positive")
	}
	if m.dataDir != "" {
		if err := checkDataDir(m.dataDir); err != nil {
			return err
		}
	}
	mountpoint := pos[len(pos)-1]
	if len(pos) == 1 && looksLikeSource(mountpoint) {
		return usageError("want a mountpoint after the sources")
	}
	if err := checkMountpoint(mountpoint); err != nil {
		return err
	}
	srcs, err := loadSources(pos[:len(pos)-1])
	if err != nil {
		return err
	}
	key, err := control.Key(mountpoint)
	if err != nil {
		return err
	}
	logger := m.logger(e)
	notify, err := sdnotify.FromEnv()
	if err != nil {
		logger.Warn("not telling systemd about the mount", "err", err)
	}
	c, err := m.newClient(logger)
	if err != nil {
		return err
	}
	defer c.Close()
	lib := newEngineLibrary(c, m.cacheDir, m.ws.apply(engine.AddOptions{Peers: m.peers, Prefetch: m.prefetch, DataDir: m.dataDir}), logger)
	lib.seeding = newRemovedSeeding(m.seedPol.p, logger)
	defer lib.seeding.Close() // before c.Close
	var torrents []fs.Torrent
	for _, s := range srcs {
		t, err := lib.Add(ctx, library.Source{Meta: s.meta, Magnet: s.magnet})
		if err != nil {
			return fmt.Errorf("%s: %w", s.arg, err)
		}
		ft, _ := lib.fsTorrent(t.InfoHash)
		torrents = append(torrents, ft)
	}
	// A mount that can change shows one directory per torrent from the
	// start, so that adding one does not move the others.
	dynamic := m.living.watchDir != "" || len(srcs) != 1
	srv, err := fs.Mount(mountpoint, torrents, fs.Options{
		ReadTimeout: m.readTimeout, AllowOther: m.allowOther, PageCache: m.pageCache,
		Dynamic: dynamic, Logger: logger,
	})
	if err != nil {
		return err
	}
	if srv.StaleReplaced() {
		fmt.Fprintf(e.stderr, "note: %s was a dead swarmfs mount left by a crash; replaced it\n", mountpoint)
	}
	mlib := &mountLibrary{engineLibrary: lib, srv: srv, fixed: !dynamic}
	fe, err := startFrontEnds(ctx, m.living, mlib, key, lib.cacheDir, logger)
	if err != nil {
		if uerr := srv.Unmount(); uerr != nil {
			logger.Warn("unmount", "err", uerr)
		}
		return err
	}
	defer fe.Close()
	fmt.Fprintf(e.stdout, "mounted %d torrent(s) at %s (peers on %s); %s; Ctrl-C or 'swarmfs unmount %s' to stop\n",
		len(torrents), srv.Mountpoint(), c.Addr(), fe.describe(), mountpoint)
	if err := notify.Ready(fmt.Sprintf("mounted %d torrent(s) at %s", len(torrents), srv.Mountpoint())); err != nil {
		logger.Warn("telling systemd the mount is ready", "err", err)
	}
	r := newLibraryReporter(e, mlib, m.verbose, m.statusHandler(e), notify, logger)
	return serveMount(ctx, e, srv, fe, r)
}

// looksLikeSource reports whether arg, given alone, names torrents rather
// than a mountpoint: a magnet link, a .torrent file, or a directory that
// holds .torrent files (mounting over it would hide them).
func looksLikeSource(arg string) bool {
	if strings.HasPrefix(arg, "magnet:") || strings.HasSuffix(strings.ToLower(arg), ".torrent") {
		return true
	}
	m, err := filepath.Glob(filepath.Join(arg, "*.torrent"))
	return err == nil && len(m) > 0
}

// serveMount reports the library's state until ctx ends, the mount goes
// away or the HTTP server fails, then stops the front ends and unmounts.
func serveMount(ctx context.Context, e *env, srv *fs.Server, fe *frontEnds, r *libraryReporter) error {
	defer r.done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.report(time.Now())
		select {
		case <-ctx.Done():
			r.done()
			r.stopping("unmounting " + srv.Mountpoint())
			fe.Close()
			err := srv.Unmount()
			if errors.Is(err, fs.ErrConnectionLingers) {
				// Gone from here; the copy's connection ends when we exit.
				fmt.Fprintf(e.stderr, "note: %s\n", printable(err.Error()))
			} else if err != nil {
				return fmt.Errorf("unmount: %w", err)
			}
			fmt.Fprintf(e.stdout, "unmounted %s\n", srv.Mountpoint())
			return nil
		case <-srv.Done():
			r.done()
			fmt.Fprintf(e.stdout, "%s was unmounted\n", srv.Mountpoint())
			return nil
		case err := <-fe.Err():
			r.done()
			r.stopping("HTTP server failed; unmounting " + srv.Mountpoint())
			fe.Close()
			if uerr := srv.Unmount(); uerr != nil {
				fmt.Fprintf(e.stderr, "swarmfs mount: unmount: %v\n", uerr)
			}
			return fmt.Errorf("http: %w", err)
		case <-tick.C:
		}
	}
}

// mountTorrents mounts the engine's torrents through the fs adapter.
func mountTorrents(mountpoint string, torrents []*engine.Torrent, opts fs.Options) (*fs.Server, error) {
	list := make([]fs.Torrent, len(torrents))
	for i, t := range torrents {
		list[i] = fsTorrent{t: t}
	}
	return fs.Mount(mountpoint, list, opts)
}

// serveStatus prints status lines until ctx ends or the mount goes away,
// then unmounts.
func serveStatus(ctx context.Context, e *env, srv *fs.Server, torrents []*engine.Torrent) error {
	p := &statusPrinter{w: e.stderr, tty: e.tty, interval: 10 * time.Second}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		lines := make([]string, len(torrents))
		for i, t := range torrents {
			lines[i] = torrentStatusLine(t)
		}
		p.print(time.Now(), lines, false)
		select {
		case <-ctx.Done():
			p.done()
			if err := srv.Unmount(); err != nil {
				return fmt.Errorf("unmount: %w", err)
			}
			fmt.Fprintf(e.stdout, "unmounted %s\n", srv.Mountpoint())
			return nil
		case <-srv.Done():
			p.done()
			fmt.Fprintf(e.stdout, "%s was unmounted\n", srv.Mountpoint())
			return nil
		case <-tick.C:
		}
	}
}

// checkMountpoint gives a clear error for a missing or non-directory
// mountpoint (a dead mount left by a crash is handled by fs.Mount).
func checkMountpoint(mp string) error {
	fi, err := os.Stat(mp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist (create it with mkdir)", mp)
	case err != nil:
		return nil // e.g. ENOTCONN: a dead mount that fs.Mount replaces
	case !fi.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", mp)
	}
	return nil
}

// checkDataDir refuses a --data-dir that is not an existing directory, so
// that a typo does not scatter a download into a new tree.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--data-dir %s: not a directory", printable(dir))
	}
	return nil
}
