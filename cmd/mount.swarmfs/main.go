package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Exit statuses of mount(8) helpers.
const (
	exitUsage   = 1  // incorrect invocation or option
	exitFailure = 32 // the mount failed
)

// invocation is a parsed helper command line.
type invocation struct {
	source, mountpoint string
	options            []string
	fstype             string // from -t; "" when not given
	sloppy             bool   // -s: ignore unknown options
	fake               bool   // -f: do everything but the mount
	verbose            bool   // -v
}

// errUsage marks a bad command line.
var errUsage = errors.New("usage: mount.fuse.swarmfs SOURCE MOUNTPOINT [-s] [-f] [-n] [-v] [-o OPTIONS] [-t fuse.swarmfs]")

// parseArgs parses the command line mount(8) passes to a helper. Flags may
// come before, between or after the two positional arguments, and single
// letter flags may be combined (-nv).
func parseArgs(args []string) (invocation, error) {
	var inv invocation
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			switch c := a[j]; c {
			case 's':
				inv.sloppy = true
			case 'f':
				inv.fake = true
			case 'n': // no mtab: there is none to write
			case 'v':
				inv.verbose = true
			case 'o', 't':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return inv, fmt.Errorf("%w (-%c needs a value)", errUsage, c)
					}
					i++
					val = args[i]
				}
				if c == 't' {
					inv.fstype = val
				} else {
					opts, err := splitOptions(val)
					if err != nil {
						return inv, err
					}
					inv.options = append(inv.options, opts...)
				}
				j = len(a)
			default:
				return inv, fmt.Errorf("%w (unknown flag -%c)", errUsage, c)
			}
		}
	}
	if len(pos) != 2 {
		return inv, fmt.Errorf("%w (want SOURCE and MOUNTPOINT, got %d arguments)", errUsage, len(pos))
	}
	switch inv.fstype {
	case "", "fuse.swarmfs", "swarmfs":
	default:
		return inv, fmt.Errorf("%w (type %q is not swarmfs)", errUsage, inv.fstype)
	}
	inv.source, inv.mountpoint = pos[0], pos[1]
	return inv, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run mounts as the command line asks and returns the exit status.
func run(args []string, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "mount.fuse.swarmfs: %v\n", err)
		return code
	}
	inv, err := parseArgs(args)
	if err != nil {
		return fail(exitUsage, err)
	}
	flags, h, notes, err := mapOptions(inv.options, inv.sloppy)
	if err != nil {
		return fail(exitUsage, err)
	}
	mp, err := filepath.Abs(inv.mountpoint)
	if err != nil {
		return fail(exitUsage, err)
	}
	bin, err := findSwarmfs()
	if err != nil {
		return fail(exitFailure, err)
	}
	argv := append(append([]string{"mount"}, flags...), "--", inv.source, mp)
	if inv.verbose {
		for _, n := range notes {
			fmt.Fprintf(stderr, "mount.fuse.swarmfs: option %s\n", n)
		}
		fmt.Fprintf(stderr, "mount.fuse.swarmfs: running %s %s\n", bin, strings.Join(argv, " "))
	}
	if inv.fake {
		return 0
	}
	pid, err := startAndWait(bin, argv, mp, h.mountTimeout, stderr)
	if err != nil {
		return fail(exitFailure, err)
	}
	if inv.verbose {
		fmt.Fprintf(stderr, "mount.fuse.swarmfs: %s mounted by swarmfs pid %d\n", mp, pid)
	}
	return 0
}

// findSwarmfs returns the swarmfs binary to run: $SWARMFS_BIN, else the
// one next to this program (symlinks resolved), else $PATH's, else
// /usr/local/bin's or /usr/bin's.
func findSwarmfs() (string, error) {
	if p := os.Getenv("SWARMFS_BIN"); p != "" {
		return p, nil
	}
	var candidates []string
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(real), "swarmfs"))
		}
	}
	if p, err := exec.LookPath("swarmfs"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/local/bin/swarmfs", "/usr/bin/swarmfs")
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", errors.New("swarmfs binary not found next to this helper, in $PATH, /usr/local/bin or /usr/bin (set SWARMFS_BIN)")
}

// startAndWait starts swarmfs in a session of its own, with stdin on
// /dev/null, stdout on an unlinked temporary file (swarmfs takes a
// character device such as /dev/null for a terminal and would redraw its
// status line in place) and stderr shared with this process, and waits until
// a new fuse.swarmfs mount shows at mp. If swarmfs exits first, or the
// mount does not appear within timeout (swarmfs is then sent SIGTERM), it
// returns an error. It returns swarmfs's pid.
func startAndWait(bin string, argv []string, mp string, timeout time.Duration, stderr io.Writer) (int, error) {
	before, err := mountIDs(mp)
	if err != nil {
		return 0, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	// swarmfs writes a line or two to stdout ("mounted", "unmounted").
	out, err := os.CreateTemp("", "mount.swarmfs-stdout-*")
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if err := os.Remove(out.Name()); err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, stderr
	if f, ok := stderr.(*os.File); ok {
		cmd.Stderr = f // the fd itself, so that no copying goroutine must outlive us
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start swarmfs: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("swarmfs exited before %s was mounted (%v); its messages are above", mp, err)
		case <-deadline.C:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return 0, fmt.Errorf("%s was not mounted within %v (mount_timeout); stopped swarmfs", mp, timeout)
		case <-tick.C:
		}
		ids, err := mountIDs(mp)
		if err != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return 0, err
		}
		for id := range ids {
			if !before[id] {
				return cmd.Process.Pid, nil
			}
		}
	}
}
