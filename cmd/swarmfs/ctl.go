package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/control"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
)

// ctlTimeout bounds one control command.
const ctlTimeout = time.Minute

var addCommand = &command{
	summary: "add torrents to a running mount or server",
	usage:   "[flags] MOUNTPOINT|URL SOURCE...  (SOURCE: FILE.torrent, FILE.magnet, MAGNET, or a directory of them)",
	examples: []string{
		"swarmfs add ~/t ubuntu.iso.torrent",
		"swarmfs add http://127.0.0.1:8080 'magnet:?xt=urn:btih:...'",
	},
	flagSet: func() *flag.FlagSet { return ctlFlags("add") },
	run:     runAdd,
}

var removeCommand = &command{
	summary: "remove a torrent from a running mount or server (open files keep working until closed)",
	usage:   "[flags] MOUNTPOINT|URL NAME|INFOHASH",
	examples: []string{
		"swarmfs remove ~/t ubuntu.iso",
		"swarmfs remove --purge ~/t d2474e86c95b19b8bcfdb92bc12c9d44667cfa36",
	},
	flagSet: func() *flag.FlagSet { return ctlFlags("remove") },
	run:     runRemove,
}

var statusCommand = &command{
	summary:  "show the torrents of a running mount or server",
	usage:    "[flags] MOUNTPOINT|URL",
	examples: []string{"swarmfs status ~/t", "swarmfs status --json http://127.0.0.1:8080"},
	flagSet:  func() *flag.FlagSet { return ctlFlags("status") },
	run:      runStatus,
}

// ctlFlags builds the flags of add, remove and status.
func ctlFlags(name string) *flag.FlagSet {
	f := newFlagSet(name)
	f.String("cache-dir", "", "`DIR` the mount or server uses for its cache, where its control socket is when $XDG_RUNTIME_DIR is not set")
	switch name {
	case "remove":
		f.Bool("purge", false, "also delete the torrent's cached data")
	case "status":
		f.Bool("json", false, "print JSON")
	}
	return f
}

// dialControl connects to the control socket of target.
func dialControl(ctx context.Context, f *flag.FlagSet, target string) (*control.Client, error) {
	cacheDir := f.Lookup("cache-dir").Value.String()
	if cacheDir == "" {
		cacheDir = cache.DefaultDir()
	}
	key, err := control.Key(target)
	if err != nil {
		return nil, err
	}
	c, err := control.Dial(ctx, control.SocketPath(control.Dir(cacheDir), key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a running swarmfs mount or server (%w)", target, err)
	}
	return c, err
}

func flagBool(f *flag.FlagSet, name string) bool {
	return f.Lookup(name).Value.(flag.Getter).Get().(bool)
}

func runAdd(ctx context.Context, e *env, args []string) error {
	f := ctlFlags("add")
	pos, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageError("want a mountpoint or URL and at least one source")
	}
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	srcs, err := readCtlSources(pos[1:])
	if err != nil {
		return err
	}
	c, err := dialControl(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer c.Close()
	var failed int
	for _, s := range srcs {
		t, err := c.Add(ctx, s.name, s.data)
		if err != nil {
			fmt.Fprintf(e.stderr, "swarmfs add: %s\n", printableLines(err.Error()))
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "added %s (%s): %s\n", printable(t.Name), t.InfoHash, printable(where(pos[0], t)))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sources not added", failed, len(srcs))
	}
	return nil
}

// where says where an added torrent shows up.
func where(target string, t library.Torrent) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return strings.TrimRight(target, "/") + "/#t-" + t.InfoHash.String()
	}
	if t.Dir != "" {
		return filepath.Join(target, t.Dir)
	}
	return filepath.Join(target, strings.ReplaceAll(t.Name, "/", "_"))
}

// ctlSource is one source read by the client: its bytes go to the server.
type ctlSource struct {
	name string
	data []byte
}

// readCtlSources reads magnet links, .torrent and .magnet files, and the
// .torrent and .magnet files directly inside directories.
func readCtlSources(args []string) ([]ctlSource, error) {
	var out []ctlSource
	for _, a := range args {
		if strings.HasPrefix(strings.ToLower(a), "magnet:") {
			out = append(out, ctlSource{name: a, data: []byte(a)})
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		names := []string{a}
		if fi.IsDir() {
			names = nil
			for _, pat := range []string{"*.torrent", "*.magnet"} {
				m, err := filepath.Glob(filepath.Join(a, pat))
				if err != nil {
					return nil, err
				}
				names = append(names, m...)
			}
			if len(names) == 0 {
				return nil, fmt.Errorf("%s: no .torrent or .magnet files in this directory", a)
			}
			slices.Sort(names)
		}
		for _, n := range names {
			b, err := readLimited(n, metainfo.MaxTorrentSize)
			if err != nil {
				return nil, err
			}
			out = append(out, ctlSource{name: n, data: b})
		}
	}
	return out, nil
}

// readLimited reads a file of at most max bytes.
func readLimited(name string, max int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, max>>20)
	}
	return b, nil
}

func runRemove(ctx context.Context, e *env, args []string) error {
	f := ctlFlags("remove")
	pos, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want a mountpoint or URL and a torrent name or info hash")
	}
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	c, err := dialControl(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.Remove(ctx, pos[1], flagBool(f, "purge"))
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("removed %s (%s)", printable(t.Name), t.InfoHash)
	if n := t.Stats.OpenReaders; n > 0 {
		msg += fmt.Sprintf("; it goes when its %d open file(s) are closed", n)
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}

func runStatus(ctx context.Context, e *env, args []string) error {
	f := ctlFlags("status")
	pos, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want a mountpoint or URL")
	}
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	c, err := dialControl(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer c.Close()
	ts, err := c.Status(ctx)
	if err != nil {
		return err
	}
	sortTorrents(ts)
	if flagBool(f, "json") {
		if ts == nil {
			ts = []library.Torrent{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stdout, "no torrents")
	}
	for _, t := range ts {
		fmt.Fprintf(e.stdout, "%s  %s\n", t.InfoHash, statusLine(t.Name, engineStats(t.Stats)))
	}
	return nil
}

// sortedTorrents returns the library's torrents sorted for people.
func sortedTorrents(lib library.Library) []library.Torrent {
	ts := lib.Torrents()
	sortTorrents(ts)
	return ts
}

func sortTorrents(ts []library.Torrent) {
	slices.SortFunc(ts, func(a, b library.Torrent) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.InfoHash.String(), b.InfoHash.String()))
	})
}

// engineStats turns library stats back into engine stats for statusLine.
func engineStats(s library.Stats) engine.Stats {
	state, _ := engine.ParseState(s.State)
	return engine.Stats{
		Downloaded: s.Downloaded, Uploaded: s.Uploaded, DownRate: s.DownRate, UpRate: s.UpRate,
		Peers: s.Peers, Seeds: s.Seeds, PiecesHave: s.PiecesHave, PiecesTotal: s.PiecesTotal,
		BytesHave: s.BytesHave, State: state, WebSeedBytes: s.WebSeedBytes,
		HashFailures: s.HashFailures, Banned: s.Banned, EvictedBytes: s.EvictedBytes,
	}
}
