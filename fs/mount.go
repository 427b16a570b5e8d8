package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrNoTorrents is returned by Mount when it is given no torrent.
var ErrNoTorrents = errors.New("fs: no torrents to mount")

// ErrConnectionLingers is returned by Unmount when the mount is gone from
// this mount namespace but its kernel connection does not end: a process
// that unshared its mounts (unshare -m, ip netns exec) while the mount was
// up holds a copy of it. The connection ends when that namespace does, or
// when this process exits.
var ErrConnectionLingers = errors.New("fs: unmounted, but a copy of the mount in another mount namespace keeps its connection open")

// unmountWait bounds how long Unmount waits for the kernel connection to
// end after the mount was detached.
const unmountWait = 10 * time.Second

// Server is a mounted swarmfs filesystem.
type Server struct {
	mountpoint  string
	opts        Options
	log         *slog.Logger
	readTimeout time.Duration
	mountTime   time.Time
	stale       bool

	// dynamic mounts always show one directory per torrent and take
	// AddTorrent and RemoveTorrent.
	dynamic bool
	root    *dirNode
	// set is the torrents mounted now; changeMu serializes the adds and
	// removes that replace it, and guards gens and stopped.
	set      atomic.Pointer[torrentSet]
	changeMu sync.Mutex
	gens     uint64 // node generations handed to added torrents
	stopped  bool   // the server has stopped: no more watchers

	server *fuse.Server
	// direct says which files Open gives FOPEN_DIRECT_IO: PageCacheNever
	// (all), PageCacheAuto (files not complete yet) or PageCacheAlways
	// (none), after the kernel's capabilities.
	direct PageCacheMode
	// ctx ends (with cause ErrUnmounted) when unmounting starts or the
	// kernel connection ends; reads and watchers derive from it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // watchers of pending directories
	done   chan struct{}  // closed when the server has stopped

	// failLog keeps a run of reads failing for one reason (a full cache
	// disk, no peers) to one warning (see handle.failed).
	failLog failLog

	unmountOnce sync.Once
	unmountErr  error
}

// Mount mounts torrents read-only at mountpoint and serves it until
// Unmount, or until it is unmounted from outside (`swarmfs unmount`,
// fusermount3 -u). If mountpoint is a dead FUSE mount left by a crashed
// process, it is detached and mounted again; StaleReplaced then reports true
// and a warning is logged.
func Mount(mountpoint string, torrents []Torrent, opts Options) (*Server, error) {
	if len(torrents) == 0 && !opts.Dynamic {
		return nil, ErrNoTorrents
	}
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("fs: mountpoint: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("mountpoint", mp)
	m := &Server{
		mountpoint:  mp,
		opts:        opts,
		log:         logger,
		readTimeout: readTimeout(opts.ReadTimeout, logger),
		mountTime:   time.Now(),
		dynamic:     opts.Dynamic,
		done:        make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())

	stale, err := replaceStale(mp, logger)
	if err != nil {
		return nil, err
	}
	m.stale = stale

	m.set.Store(makeEntries(torrents, m.mountTime))
	m.root = m.layoutRoot()
	server, err := m.serve(m.root)
	if err != nil {
		m.cancel(ErrUnmounted)
		return nil, err
	}
	m.server = server
	m.setReadAhead()
	for _, e := range m.set.Load().list {
		if e.table.Load() == nil {
			m.wg.Add(1)
			go m.watch(e)
		}
	}
	return m, nil
}

// serve mounts the tree and starts the server loop.
func (m *Server) serve(root *dirNode) (*fuse.Server, error) {
	// The tree never changes except for magnets filling and, in a
	// dynamic mount, torrents added and removed, which notify the kernel.
	entryTimeout := time.Hour
	attrTimeout := time.Hour
	fsName := m.opts.FSName
	if fsName == "" {
		fsName = "swarmfs"
	}
	var fuseLog *log.Logger
	if m.opts.Logger != nil {
		fuseLog = slog.NewLogLogger(m.opts.Logger.Handler(), slog.LevelDebug)
	} else {
		fuseLog = log.New(io.Discard, "", 0)
	}
	// Neither "ro" nor "default_permissions": the filesystem refuses
	// every change itself (readonly.go). On a "ro" mount the kernel
	// would refuse setxattr of user.swarmfs.prefetch before asking us,
	// and with default_permissions it would refuse it (EACCES) to every
	// user but root, since files are 0444; Access answers access(2).
	var mountOpts []string
	opts := &fusefs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:   m.opts.AllowOther,
			Options:      mountOpts,
			MaxWrite:     maxRead,
			MaxReadAhead: maxRead,
			// Page-cache reads reach us as background requests, at most
			// MaxBackground at once. Reads blocked on missing pieces (an
			// abandoned readahead window after a seek) hold their slots
			// until served or timed out; a larger pool keeps them from
			// starving the reads at the new position.
			MaxBackground: maxBackground,
			// Lets files opened with FOPEN_DIRECT_IO be mmapped (Linux
			// 6.6); the kernel grants it only where it has it.
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			FsName:            fsName,
			Name:              "swarmfs",
			Debug:             m.opts.Debug,
			Logger:            fuseLog,
		},
		EntryTimeout:   &entryTimeout,
		AttrTimeout:    &attrTimeout,
		UID:            uint32(os.Getuid()),
		GID:            uint32(os.Getgid()),
		Logger:         fuseLog,
		RootStableAttr: &fusefs.StableAttr{Ino: 1},
	}
	server, err := fuse.NewServer(fusefs.NewNodeFS(root, opts), m.mountpoint, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("fs: mount %s: %w", m.mountpoint, err)
	}
	// NewServer has handled INIT: the kernel's capabilities are known,
	// and set before any request is served.
	m.direct = m.directMode(server.KernelSettings().Flags64())
	go func() {
		server.Serve()
		m.cancel(ErrUnmounted)
		// From here AddTorrent starts no watcher; one that started
		// before has counted it in wg.
		m.changeMu.Lock()
		m.stopped = true
		m.changeMu.Unlock()
		m.wg.Wait()
		close(m.done)
	}()
	if err := server.WaitMount(); err != nil {
		_ = server.Unmount()
		return nil, fmt.Errorf("fs: mount %s: %w", m.mountpoint, err)
	}
	return server, nil
}

// directMode returns the page cache mode to use given the kernel's FUSE
// capabilities: without FUSE_DIRECT_IO_ALLOW_MMAP a FOPEN_DIRECT_IO file
// cannot be mmapped, so auto keeps every file in the page cache.
func (m *Server) directMode(kernelFlags uint64) PageCacheMode {
	mode := m.opts.PageCache
	if mode == PageCacheAuto && kernelFlags&fuse.CAP_DIRECT_IO_ALLOW_MMAP == 0 {
		m.log.Info("kernel cannot mmap direct_io files: every file uses the page cache")
		return PageCacheAlways
	}
	return mode
}

// watch fills a magnet's directory when its info arrives.
func (m *Server) watch(e *entry) {
	defer m.wg.Done()
	select {
	case <-e.t.InfoReady():
	case <-e.gone:
		return
	case <-m.ctx.Done():
		return
	}
	info := e.t.Info()
	if info == nil {
		m.log.Warn("InfoReady closed without info", "torrent", e.name)
		return
	}
	m.setTable(e, info)
	m.log.Info("metadata arrived; directory filled", "torrent", e.name, "files", len(info.Files))
}

// Mountpoint returns the absolute path of the mount.
func (m *Server) Mountpoint() string { return m.mountpoint }

// StaleReplaced reports whether Mount found a dead FUSE mount at the
// mountpoint and replaced it.
func (m *Server) StaleReplaced() bool { return m.stale }

// Done returns a channel closed once the filesystem is no longer served:
// after Unmount, or after an unmount from outside.
func (m *Server) Done() <-chan struct{} { return m.done }

// Wait blocks until Done is closed.
func (m *Server) Wait() { <-m.done }

// Unmount releases every blocked read (they fail with EIO), unmounts, and
// waits for the server to stop. If open files keep the mount busy it is
// detached lazily (the kernel drops it when they are closed; their reads
// fail at once), and Unmount waits at most 10 s for that. If the mount is
// gone from this mount namespace but the kernel connection lives on (a
// process that unshared its mounts holds a copy of the mount), Unmount
// returns ErrConnectionLingers after 10 s; the connection ends when that
// namespace does or when this process exits. It is safe to call more than
// once and from several goroutines.
func (m *Server) Unmount() error {
	m.unmountOnce.Do(func() { m.unmountErr = m.unmount() })
	return m.unmountErr
}

func (m *Server) unmount() error {
	m.cancel(ErrUnmounted)
	select {
	case <-m.done:
		return nil // already unmounted from outside
	default:
	}
	t := time.NewTimer(unmountWait)
	defer t.Stop()
	// go-fuse's Unmount runs fusermount3 -u, then waits for the kernel
	// connection to end, which a copy of the mount in another namespace
	// delays without bound: wait for it here, with a deadline.
	unmounted := make(chan error, 1)
	go func() { unmounted <- m.server.Unmount() }()
	select {
	case err := <-unmounted:
		if err != nil && isMountpoint(m.mountpoint) {
			m.log.Info("mount busy; detaching it lazily", "err", err)
			if err := detach(m.mountpoint); err != nil {
				return fmt.Errorf("fs: unmount %s: %w", m.mountpoint, err)
			}
		}
	case <-m.done:
		return nil
	case <-t.C:
		return m.lingering()
	}
	select {
	case <-m.done:
		return nil
	case <-t.C:
		return m.lingering()
	}
}

// lingering explains why the connection has not ended after an unmount.
func (m *Server) lingering() error {
	if isMountpoint(m.mountpoint) {
		return fmt.Errorf("fs: %s detached, but open files still hold the connection", m.mountpoint)
	}
	return fmt.Errorf("%w: %s", ErrConnectionLingers, m.mountpoint)
}

// readTimeout picks the per-read timeout: d or the default, kept below the
// kernel's FUSE request timeouts when an administrator set them.
func readTimeout(d time.Duration, logger *slog.Logger) time.Duration {
	if d <= 0 {
		d = DefaultReadTimeout
	}
	for _, name := range []string{"max_request_timeout", "default_request_timeout"} {
		b, err := os.ReadFile("/proc/sys/fs/fuse/" + name)
		if err != nil {
			continue
		}
		secs, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || secs <= 0 {
			continue
		}
		kernel := time.Duration(secs) * time.Second
		if limit := kernel * 3 / 4; d > limit {
			logger.Warn("read timeout lowered below the kernel's FUSE request timeout", "kernel", kernel, "timeout", limit)
			d = limit
		}
	}
	return d
}
