package fs

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Errors of AddTorrent and RemoveTorrent.
var (
	// ErrFixed is returned by AddTorrent and RemoveTorrent on a mount
	// that was not made with Options.Dynamic.
	ErrFixed = errors.New("fs: the mount's torrents are fixed (it is not dynamic)")
	// ErrExists is returned by AddTorrent for a torrent already mounted.
	ErrExists = errors.New("fs: torrent already mounted")
	// ErrNotFound is returned by RemoveTorrent for a torrent not mounted.
	ErrNotFound = errors.New("fs: no such torrent in the mount")
)

// dynamicEntryTimeout is how long the kernel may keep a torrent's
// directory entry in the root of a dynamic mount without asking again.
// Adding and removing notify the kernel at once; the short timeout only
// bounds the rare case of a lookup answered just before a remove whose
// reply reaches the kernel after the notification.
const dynamicEntryTimeout = time.Second

// torrentSet is the mount's list of torrents. It is never modified: an
// add or remove publishes a new set (Server.set), so handlers read it
// without a lock.
type torrentSet struct {
	list    []*entry // in the order added
	byName  map[string]*entry
	changed time.Time // the mount time, or the last add or remove
}

func newTorrentSet(list []*entry, changed time.Time) *torrentSet {
	s := &torrentSet{list: list, byName: make(map[string]*entry, len(list)), changed: changed}
	for _, e := range list {
		s.byName[e.name] = e
	}
	return s
}

// find returns the entry of the torrent with info hash h, or nil.
func (s *torrentSet) find(h metainfo.Hash) *entry {
	for _, e := range s.list {
		if e.hash == h {
			return e
		}
	}
	return nil
}

// newEntry makes the entry of t with a name and inode base that no entry
// of s has. now is its time when the torrent has no creation date.
func (s *torrentSet) newEntry(t Torrent, now time.Time) *entry {
	hash := t.InfoHash()
	base := cleanName(t.Name(), hash)
	name := base
	for i := 2; s.byName[name] != nil; i++ {
		name = base + " (" + strconv.Itoa(i) + ")"
	}
	bases := make(map[uint64]bool, len(s.list))
	for _, e := range s.list {
		bases[e.inoBase>>inoIndexBits] = true
	}
	mtime := t.CreationDate()
	if mtime.IsZero() {
		mtime = now
	}
	return &entry{t: t, hash: hash, name: name, mtime: mtime, inoBase: inoBase(hash, bases), gone: make(chan struct{})}
}

// makeEntries makes the entries of the torrents a mount starts with.
func makeEntries(torrents []Torrent, now time.Time) *torrentSet {
	s := newTorrentSet(nil, now)
	for _, t := range torrents {
		e := s.newEntry(t, now)
		s.list = append(s.list, e)
		s.byName[e.name] = e
	}
	return s
}

// AddTorrent adds t to a dynamic mount as a directory of the root and
// returns the directory's name (t's name cleaned and deduplicated). The
// directory is visible when AddTorrent returns: the kernel is told to
// drop what it cached about the name. A magnet's directory fills when its
// info arrives, as at mount.
func (m *Server) AddTorrent(t Torrent) (string, error) {
	if !m.dynamic {
		return "", ErrFixed
	}
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	if m.stopped || m.ctx.Err() != nil {
		return "", ErrUnmounted
	}
	old := m.set.Load()
	if old.find(t.InfoHash()) != nil {
		return "", fmt.Errorf("%w: %s", ErrExists, t.InfoHash())
	}
	now := time.Now()
	e := old.newEntry(t, now)
	// A torrent added again gets new node identities: the kernel may still
	// hold nodes of its earlier entry (open files), which stay as they were.
	m.gens++
	e.gen = m.gens
	if info := t.Info(); info != nil {
		m.setTable(e, info)
	}
	list := append(old.list[:len(old.list):len(old.list)], e)
	m.set.Store(newTorrentSet(list, now))
	if e.table.Load() == nil {
		m.wg.Add(1)
		go m.watch(e)
	}
	m.notifyEntry(e.name)
	m.log.Info("torrent added to the mount", "torrent", e.name, "infohash", e.hash.String())
	return e.name, nil
}

// RemoveTorrent removes the torrent with info hash h from a dynamic
// mount: its directory is gone when RemoveTorrent returns. Files of it
// that are open keep their readers and work until they are closed; new
// lookups and opens inside it fail with ENOENT.
func (m *Server) RemoveTorrent(h metainfo.Hash) error {
	if !m.dynamic {
		return ErrFixed
	}
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	old := m.set.Load()
	e := old.find(h)
	if e == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	list := make([]*entry, 0, len(old.list)-1)
	for _, x := range old.list {
		if x != e {
			list = append(list, x)
		}
	}
	m.set.Store(newTorrentSet(list, time.Now()))
	close(e.gone)
	m.root.RmChild(e.name)
	m.notifyEntry(e.name)
	m.log.Info("torrent removed from the mount", "torrent", e.name, "infohash", h.String())
	return nil
}

// notifyEntry tells the kernel to forget what it cached about the root's
// entry name (and the root's attributes). ENOENT means it cached nothing.
func (m *Server) notifyEntry(name string) {
	if m.ctx.Err() != nil {
		return
	}
	if errno := m.root.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
		m.log.Debug("entry notification failed", "name", name, "err", errno)
	}
}
