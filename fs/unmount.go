package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotMounted is returned by Unmount when the path is not a mountpoint.
var ErrNotMounted = errors.New("fs: not mounted")

// ErrMounted is returned by Mount when a live swarmfs mount is already at
// the mountpoint.
var ErrMounted = errors.New("fs: already mounted")

// commandTimeout bounds each fusermount3 run.
const commandTimeout = 10 * time.Second

// Unmount unmounts the swarmfs mount at mountpoint, e.g. for `swarmfs
// unmount` from another shell; the serving process then sees its Server's
// Done channel close. It runs fusermount3 -u and, when that fails and the
// caller is root, umount(2). A dead mount (ENOTCONN, its process gone) is
// detached lazily. A mount kept busy by open files fails with an error
// wrapping syscall.EBUSY.
func Unmount(mountpoint string) error {
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return fmt.Errorf("fs: unmount: %w", err)
	}
	if isDead(mp) {
		return detach(mp)
	}
	if !isMountpoint(mp) {
		return fmt.Errorf("%w: %s", ErrNotMounted, mp)
	}
	ferr := fusermount("-u", mp)
	if ferr == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("fs: unmount %s: %w", mp, ferr)
	}
	if err := syscall.Unmount(mp, 0); err != nil {
		return fmt.Errorf("fs: unmount %s: %w (fusermount3: %v)", mp, err, ferr)
	}
	return nil
}

// UnmountLazy detaches the mount at mountpoint even while open files keep
// it busy (umount2 with MNT_DETACH as root, fusermount3 -uz otherwise): it
// disappears from the namespace at once and the kernel drops it when the
// last file is closed. The serving process's blocked reads are not released
// by this; its Server's Done channel closes once the kernel lets go.
func UnmountLazy(mountpoint string) error {
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return fmt.Errorf("fs: unmount: %w", err)
	}
	if !isDead(mp) && !isMountpoint(mp) {
		return fmt.Errorf("%w: %s", ErrNotMounted, mp)
	}
	if err := detach(mp); err != nil {
		return fmt.Errorf("fs: unmount %s: %w", mp, err)
	}
	return nil
}

// replaceStale detaches dead FUSE mounts at mp (statfs fails with
// ENOTCONN, "transport endpoint is not connected"; several may be stacked)
// and reports whether there was one.
func replaceStale(mp string, logger *slog.Logger) (bool, error) {
	stale := false
	for i := 0; i < 8 && isDead(mp); i++ {
		logger.Info("replacing a stale mount left by a process that died")
		if err := detach(mp); err != nil {
			return stale, fmt.Errorf("fs: replace stale mount at %s: %w", mp, err)
		}
		stale = true
	}
	if typ, _ := mountType(mp); typ == "fuse.swarmfs" {
		return stale, fmt.Errorf("%w: %s (swarmfs unmount %s)", ErrMounted, mp, mp)
	}
	fi, err := os.Stat(mp)
	if err != nil {
		return stale, fmt.Errorf("fs: mountpoint: %w", err)
	}
	if !fi.IsDir() {
		return stale, fmt.Errorf("fs: mountpoint %s is not a directory", mp)
	}
	return stale, nil
}

// isDead reports whether mp is a FUSE mount whose server is gone. It asks
// statfs, which the kernel never answers from its attribute cache (stat
// may succeed on a dead mount).
func isDead(mp string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); errors.Is(err, syscall.ENOTCONN) {
		return true
	}
	_, err := os.Stat(mp)
	return errors.Is(err, syscall.ENOTCONN)
}

// detach lazily unmounts mp: umount2(MNT_DETACH) as root, otherwise
// fusermount3 -uz.
func detach(mp string) error {
	var serr error
	if os.Geteuid() == 0 {
		serr = unix.Unmount(mp, unix.MNT_DETACH)
		if serr == nil {
			return nil
		}
	}
	if err := fusermount("-uz", mp); err != nil {
		if serr != nil {
			return fmt.Errorf("%w (umount2: %v)", err, serr)
		}
		return err
	}
	return nil
}

// fusermount runs fusermount3 (or fusermount) with flag on mp.
func fusermount(flag, mp string) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		bin, err = exec.LookPath("fusermount")
		if err != nil {
			return errors.New("fusermount3 not found (Debian package fuse3)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, flag, mp).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "busy") {
			return fmt.Errorf("%s %s: %w: %s", bin, flag, syscall.EBUSY, msg)
		}
		return fmt.Errorf("%s %s: %v: %s", bin, flag, err, msg)
	}
	return nil
}

// isMountpoint reports whether mp appears in /proc/self/mountinfo.
func isMountpoint(mp string) bool {
	_, ok := mountType(mp)
	return ok
}

// mountType returns the filesystem type of the topmost mount at mp (e.g.
// "fuse.swarmfs") and whether there is one. When mountinfo cannot be read
// it answers ("", true), letting the unmount itself decide.
func mountType(mp string) (string, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", true
	}
	typ, found := "", false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || unescapeMountinfo(f[4]) != mp {
			continue
		}
		found, typ = true, ""
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				typ = f[i+1]
				break
			}
		}
	}
	return typ, found
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// setReadAhead raises the kernel readahead of the mount's backing device
// (root only). Kernel readahead turns a reader's small sequential reads into
// large requests that the engine can satisfy a window at a time.
func (m *Server) setReadAhead() {
	kb := m.opts.ReadAheadKB
	if kb == 0 {
		kb = DefaultReadAheadKB
	}
	if kb < 0 {
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(m.mountpoint, &st); err != nil {
		m.log.Debug("read_ahead_kb: stat mountpoint", "err", err)
		return
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(path, []byte(strconv.Itoa(kb)), 0); err != nil {
		m.log.Debug("read_ahead_kb not raised", "path", path, "err", err)
		return
	}
	m.log.Debug("read_ahead_kb raised", "path", path, "kb", kb)
}
