// Command mount.swarmfs is the mount(8) helper that lets /etc/fstab and
// systemd mount units mount torrents with swarmfs:
//
//	/srv/torrents/film.torrent  /mnt/film  fuse.swarmfs  allow_other,cache_dir=/var/cache/swarmfs,_netdev  0 0
//
// mount(8) looks for /sbin/mount.fuse.swarmfs for the type fuse.swarmfs
// (before falling back to /sbin/mount.fuse), so this program is installed
// as, or linked from, /sbin/mount.fuse.swarmfs (and /sbin/mount.swarmfs for
// the plain type swarmfs). mount(8) runs it as
//
//	mount.fuse.swarmfs SOURCE MOUNTPOINT [-s] [-f] [-n] [-v] [-o OPTIONS] [-t TYPE]
//
// It maps the mount options to `swarmfs mount` flags (mapOptions; see
// docs/fstab.md for the table), starts `swarmfs mount` in the background
// in a session of its own, and exits 0 once /proc/self/mountinfo shows the
// new fuse.swarmfs mount at MOUNTPOINT, so that mount(8) returns with the
// filesystem up. The swarmfs process keeps serving it; umount stops it.
//
// The options ro and rw are accepted and change nothing. swarmfs is
// read-only whatever they say: it refuses every change with EROFS. Its
// kernel mount is never "ro", even with ro in fstab, because the kernel
// refuses every setxattr on a "ro" mount, `setfattr -n
// user.swarmfs.prefetch` included, before asking swarmfs; so findmnt and
// /proc/self/mountinfo show the mount rw.
//
// The swarmfs binary is looked for next to this program (after resolving
// symlinks), then in $PATH, then in /usr/local/bin and /usr/bin;
// $SWARMFS_BIN overrides the search.
//
// Exit status follows mount(8): 1 for a bad command line or option (the
// message names the option), 32 when the mount fails (swarmfs exited, or
// the mount did not appear within mount_timeout, default 2m).
//
// swarmfs inherits this program's standard error: its messages go where
// mount(8)'s go (the journal, for fstab mounts at boot).
package main
