package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/metainfo"
)

var createCommand = &command{
	summary: "make a .torrent file from a file or directory",
	usage:   "[flags] PATH [-o FILE.torrent]",
	examples: []string{
		"swarmfs create ./videos -o videos.torrent",
		"swarmfs create -t http://tracker.example/announce movie.mkv",
		"swarmfs create -t udp://a.example:1337,udp://b.example:1337 -t http://backup.example/announce ./dir",
		"swarmfs create --piece-length 1MiB --private --comment 'season 1' -w https://cdn.example/files/ ./show -o show.torrent",
	},
	run:     runCreate,
	flagSet: func() *flag.FlagSet { return newCreateFlags().fs },
}

type createFlags struct {
	fs                        *flag.FlagSet
	output, comment, name, by string
	trackers, webSeeds        listFlag
	pieceLength               byteSize
	private, noDate, force    bool
}

func newCreateFlags() *createFlags {
	c := &createFlags{fs: newFlagSet("create")}
	fset := c.fs
	fset.StringVar(&c.output, "output", "", "write the torrent to `FILE` (default: NAME.torrent in the current directory)")
	fset.Var(&c.trackers, "tracker", "announce `URL`s of one tracker tier, separated by commas; repeat the flag for backup tiers (BEP 12)")
	fset.Var(&c.webSeeds, "web-seed", "web seed `URL` (BEP 19); repeatable, or several separated by commas")
	fset.Var(&c.pieceLength, "piece-length", "piece `SIZE`, a power of two from 16KiB to 16MiB, e.g. 256KiB (default: chosen from the total size, about 1000-2000 pieces)")
	fset.BoolVar(&c.private, "private", false, "set the private flag (BEP 27): peers come only from the trackers, no DHT or PEX")
	fset.StringVar(&c.comment, "comment", "", "store `TEXT` as the torrent's comment")
	fset.StringVar(&c.name, "name", "", "torrent `NAME` (default: the base name of PATH)")
	fset.StringVar(&c.by, "created-by", "swarmfs "+version, "store `TEXT` as the creating program; empty leaves it out")
	fset.BoolVar(&c.noDate, "no-date", false, "leave out the creation date, so the same input gives the same file")
	fset.BoolVar(&c.force, "force", false, "overwrite the output file if it exists")
	// One-letter aliases share the long flag's value.
	for short, long := range map[string]string{"o": "output", "t": "tracker", "w": "web-seed", "p": "private", "c": "comment", "n": "name", "f": "force"} {
		fset.Var(fset.Lookup(long).Value, short, "short for -"+long)
	}
	return c
}

func runCreate(ctx context.Context, e *env, args []string) error {
	c := newCreateFlags()
	pos, err := parseFlags(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("want exactly one PATH, got %d arguments", len(pos))
	}
	opts := metainfo.CreateOptions{
		PieceLength: int64(c.pieceLength), Private: c.private, Comment: c.comment,
		CreatedBy: c.by, Name: c.name, NoDate: c.noDate,
	}
	for _, t := range c.trackers {
		tier, err := splitURLs(t, "tracker", "http", "https", "udp")
		if err != nil {
			return err
		}
		opts.Trackers = append(opts.Trackers, tier)
	}
	for _, w := range c.webSeeds {
		urls, err := splitURLs(w, "web seed", "http", "https")
		if err != nil {
			return err
		}
		opts.WebSeeds = append(opts.WebSeeds, urls...)
	}
	if p := int64(c.pieceLength); p != 0 && (p < metainfo.MinCreatePieceLength || p > metainfo.MaxCreatePieceLength || p&(p-1) != 0) {
		return usageError("--piece-length %s: want a power of two from 16KiB to 16MiB", humanize.IBytes(uint64(p)))
	}

	mi, err := metainfo.CreateContext(ctx, pos[0], opts)
	if err != nil {
		return err
	}
	out := c.output
	if out == "" {
		out = mi.Info.Name + ".torrent"
	}
	b, err := mi.Bytes()
	if err != nil {
		return err
	}
	if err := writeTorrentFile(out, b, c.force); err != nil {
		return err
	}
	in := mi.Info
	fmt.Fprintf(e.stdout, "created %s\n", printable(out))
	fmt.Fprintf(e.stdout, "  name:      %s\n", printable(in.Name))
	fmt.Fprintf(e.stdout, "  info hash: %s\n", mi.InfoHash)
	fmt.Fprintf(e.stdout, "  size:      %s in %d files\n", size(in.TotalLength), len(in.Files))
	fmt.Fprintf(e.stdout, "  pieces:    %d x %s\n", in.NumPieces(), humanize.IBytes(uint64(in.PieceLength)))
	fmt.Fprintf(e.stdout, "  magnet:    %s\n", mi.Magnet())
	return nil
}

// splitURLs splits a comma-separated list of URLs and checks each has one
// of the allowed schemes.
func splitURLs(v, what string, schemes ...string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, usageError("%s %q is not a URL", what, s)
		}
		ok := false
		for _, sc := range schemes {
			ok = ok || strings.EqualFold(u.Scheme, sc)
		}
		if !ok {
			return nil, usageError("%s %q: scheme must be one of %s", what, s, strings.Join(schemes, ", "))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, usageError("empty %s list", what)
	}
	return out, nil
}

// writeTorrentFile writes data to path with cache.WriteFileAtomic, so a
// reader never sees half a torrent, even after a crash. Without force an
// existing file is an error.
func writeTorrentFile(path string, data []byte, force bool) error {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists (use --force to overwrite)", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return cache.WriteFileAtomic(path, data, 0o644)
}
