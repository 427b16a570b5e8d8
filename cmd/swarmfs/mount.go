package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/fs"
)

type mountFlags struct {
	engineFlags
	ws          webSeedFlags
	readTimeout time.Duration
	prefetch    bool
	allowOther  bool
	pageCache   fs.PageCacheMode
}

func (m *mountFlags) flagSet() *flag.FlagSet {
	f := newFlagSet("mount")
	m.register(f)
	m.ws.register(f)
	f.DurationVar(&m.readTimeout, "read-timeout", fs.DefaultReadTimeout, "fail a read with EIO when its data has not arrived after `DURATION` (the download goes on)")
	f.BoolVar(&m.prefetch, "prefetch", false, "also download the rest of each torrent in the background, below reads in priority")
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
	usage:   "[flags] SOURCE... MOUNTPOINT  (SOURCE: FILE.torrent, MAGNET, or a directory of .torrent files)",
	examples: []string{
		"swarmfs mount ubuntu.iso.torrent ~/t",
		"swarmfs mount --prefetch --cache-size 20GiB ~/torrents/ ~/t",
		"swarmfs mount 'magnet:?xt=urn:btih:...&dn=movie' ~/t && mpv ~/t/movie/movie.mkv",
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
	if len(pos) < 2 {
		return usageError("want at least one source and a mountpoint")
	}
	if m.readTimeout <= 0 {
		return usageError("--read-timeout must be positive")
	}
	mountpoint := pos[len(pos)-1]
	if err := checkMountpoint(mountpoint); err != nil {
		return err
	}
	srcs, err := loadSources(pos[:len(pos)-1])
	if err != nil {
		return err
	}
	c, err := m.newClient(e.stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	var torrents []*engine.Torrent
	for _, s := range srcs {
		t, err := s.add(c, m.ws.apply(engine.AddOptions{Peers: m.peers, Prefetch: m.prefetch}))
		if err != nil {
			return fmt.Errorf("%s: %w", s.arg, err)
		}
		torrents = append(torrents, t)
	}
	srv, err := mountTorrents(mountpoint, torrents, fs.Options{
		ReadTimeout: m.readTimeout, AllowOther: m.allowOther, PageCache: m.pageCache,
		Logger: newLogger(e.stderr, m.verbose),
	})
	if err != nil {
		return err
	}
	if srv.StaleReplaced() {
		fmt.Fprintf(e.stderr, "note: %s was a dead swarmfs mount left by a crash; replaced it\n", mountpoint)
	}
	fmt.Fprintf(e.stdout, "mounted %d torrent(s) at %s (peers on %s); Ctrl-C or 'swarmfs unmount %s' to stop\n",
		len(torrents), srv.Mountpoint(), c.Addr(), mountpoint)
	return serveStatus(ctx, e, srv, torrents)
}

// mountTorrents mounts the engine's torrents through the fs adapter; each
// torrent's stats feed runs until the mount is gone.
func mountTorrents(mountpoint string, torrents []*engine.Torrent, opts fs.Options) (*fs.Server, error) {
	list := make([]fs.Torrent, len(torrents))
	feeds := make([]*statsFeed, len(torrents))
	for i, t := range torrents {
		feeds[i] = newStatsFeed(t.Stats)
		list[i] = fsTorrent{t: t, stats: feeds[i]}
	}
	srv, err := fs.Mount(mountpoint, list, opts)
	if err != nil {
		return nil, err
	}
	for i, f := range feeds {
		go f.run(srv.Done(), torrents[i].InfoReady(), statsPeriod)
	}
	return srv, nil
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
			lines[i] = statusLine(t.Name(), t.Stats())
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
