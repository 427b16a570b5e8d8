package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// buildBinaries builds swarmfs and this helper into a temporary directory
// and returns it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("mount.swarmfs tests build the commands and need the go tool: %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", dir+"/",
		"github.com/swarmfs/swarmfs/cmd/swarmfs", "github.com/swarmfs/swarmfs/cmd/mount.swarmfs")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestFlagsExist checks every flag the option table produces against the
// flags `swarmfs help mount` documents.
func TestFlagsExist(t *testing.T) {
	bin := buildBinaries(t)
	out, err := exec.Command(filepath.Join(bin, "swarmfs"), "help", "mount").CombinedOutput()
	if err != nil {
		t.Fatalf("swarmfs help mount: %v\n%s", err, out)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(string(out), -1) {
		documented[m[1]] = true
	}
	for name, o := range options {
		if o.kind == optIgnored {
			continue
		}
		if !documented[strings.TrimLeft(o.flag, "-")] {
			t.Errorf("option %s maps to %s, which swarmfs mount does not have", name, o.flag)
		}
	}
}

// shq quotes s for sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestFstabMount mounts a torrent the way a system does: an fstab line and
// `mount MOUNTPOINT`, in a mount namespace of the test's own (unshare -m).
// There /usr/sbin gets an overlay that adds /sbin/mount.fuse.swarmfs, a
// symlink to the helper built next to swarmfs, as an install would. The
// torrent is seeded by `swarmfs seed` on loopback. It checks that an
// unknown option fails with status 1 and a message naming it, that mount
// returns with the filesystem up and every file reads right, that ro in
// the options leaves setfattr user.swarmfs.prefetch working while changes
// fail with "Read-only file system", and that umount ends the swarmfs
// process.
func TestFstabMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mount.swarmfs: the fstab test needs root (mount namespaces, mount -T)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("mount.swarmfs: no /dev/fuse (apt-get install fuse3 and load the fuse module)")
	}
	unshare := enginetest.RequireTool(t, "unshare", "util-linux")
	bin := buildBinaries(t)
	sbin := filepath.Join(t.TempDir(), "sbin")
	if err := os.Mkdir(sbin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(bin, "mount.swarmfs"), filepath.Join(sbin, "mount.fuse.swarmfs")); err != nil {
		t.Fatal(err)
	}

	c := enginetest.MakeContent(t, "album", 32<<10, []enginetest.FileSpec{
		{Path: "a.flac", Size: 900_000}, {Path: "covers/front.jpg", Size: 70_000}, {Path: "notes.txt", Size: 1234},
	})
	port := enginetest.FreePort(t, "127.0.0.1")
	seeder := enginetest.Start(t, filepath.Join(bin, "swarmfs"), "seed", "--no-dht", "--cache-dir", t.TempDir(),
		"--port", strconv.Itoa(port), c.Torrent, c.Dir)
	seeder.WaitLine(t, "seeding album", 60*time.Second)

	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("ro,allow_other,cache_dir=%s,cache_size=64MiB,no_dht,peer=127.0.0.1:%d,read_timeout=30s,_netdev,nofail",
		filepath.Join(dir, "cache"), port)
	fstab := filepath.Join(dir, "fstab")
	badFstab := filepath.Join(dir, "fstab.bad")
	line := func(opts string) []byte {
		return []byte(fmt.Sprintf("# test fstab\n%s %s fuse.swarmfs %s 0 0\n", c.Torrent, mp, opts))
	}
	if err := os.WriteFile(fstab, line(opts), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badFstab, line(opts+",frobnicate=3"), 0o644); err != nil {
		t.Fatal(err)
	}

	var script strings.Builder
	fmt.Fprintf(&script, "fail() { echo \"FAIL: $*\"; exit 1; }\n")
	fmt.Fprintf(&script, "mount -t overlay overlay -o lowerdir=%s:/usr/sbin /usr/sbin || fail overlay\n", sbin)
	fmt.Fprintf(&script, "mount -T %s %s 2>%s/bad.err; st=$?\n", shq(badFstab), shq(mp), dir)
	fmt.Fprintf(&script, "cat %s/bad.err\n", dir)
	fmt.Fprintf(&script, "[ $st -eq 1 ] || fail \"unknown option: mount exited $st, want 1\"\n")
	fmt.Fprintf(&script, "grep -q frobnicate %s/bad.err || fail 'the message does not name the option'\n", dir)
	fmt.Fprintf(&script, "mount -v -T %s %s || fail \"mount exited $?\"\n", shq(fstab), shq(mp))
	fmt.Fprintf(&script, "grep ' %s .* fuse.swarmfs ' /proc/self/mountinfo || fail 'not in mountinfo'\n", mp)
	for rel, src := range c.Files {
		fmt.Fprintf(&script, "cmp %s %s || fail 'differs: %s'\n", shq(filepath.Join(mp, "album", rel)), shq(src), rel)
	}
	// ro in fstab does not make the kernel mount "ro" (which would refuse
	// the prefetch attribute); swarmfs refuses changes itself.
	notes := shq(filepath.Join(mp, "album", "notes.txt"))
	fmt.Fprintf(&script, "setfattr -n user.swarmfs.prefetch -v all %s || fail 'setfattr prefetch'\n", notes)
	fmt.Fprintf(&script, "touch %s 2>%s/touch.err && fail 'touch succeeded'\n", notes, dir)
	fmt.Fprintf(&script, "grep -q 'Read-only file system' %s/touch.err || fail \"touch: $(cat %s/touch.err)\"\n", dir, dir)
	fmt.Fprintf(&script, "findmnt -n -o OPTIONS %s\n", shq(mp))
	fmt.Fprintf(&script, "umount %s || fail umount\necho ALL-OK\n", shq(mp))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-m", "--propagation", "private", "sh", "-c", script.String())
	cmd.WaitDelay = 10 * time.Second // swarmfs shares the output pipe
	out, err := cmd.CombinedOutput()
	pid := 0
	if m := regexp.MustCompile(`mounted by swarmfs pid (\d+)`).FindSubmatch(out); m != nil {
		pid, _ = strconv.Atoi(string(m[1]))
	}
	if pid > 0 {
		// After umount swarmfs exits by itself; if the script failed before
		// that, killing it also ends its namespace and the mount in it.
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}
	if err != nil || !strings.Contains(string(out), "ALL-OK") {
		t.Fatalf("fstab mount in a private namespace: %v\n%s\nseeder:\n%s", err, out, seeder.Output())
	}
	t.Logf("%s", out)
	if pid == 0 {
		t.Fatal("mount -v did not report the swarmfs pid")
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("swarmfs (pid %d) still runs 30 s after umount", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
