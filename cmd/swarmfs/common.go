package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
)

// engineFlags are the flags shared by get, seed and mount.
type engineFlags struct {
	cacheDir     string
	cacheSize    byteSize
	port         int
	maxPeers     int
	readahead    byteSize
	noDHT        bool
	dhtBootstrap string
	peers        string
	encryption   string
	verbose      bool
}

func (f *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cacheDir, "cache-dir", "", "`DIR` for the verified piece cache (default $XDG_CACHE_HOME/swarmfs or ~/.cache/swarmfs)")
	fs.Var(&f.cacheSize, "cache-size", "cap the cache at `SIZE`, e.g. 10GiB; least recently used pieces are evicted (default unlimited)")
	fs.IntVar(&f.port, "port", 0, "TCP `PORT` to accept peers on (default: any free port)")
	fs.IntVar(&f.maxPeers, "max-peers", 0, "connect at most `N` peers per torrent (default 50)")
	fs.Var(&f.readahead, "readahead", "largest readahead window of one open file, `SIZE` such as 64MiB (default 64MiB)")
	fs.BoolVar(&f.noDHT, "no-dht", false, "do not use the DHT to find peers")
	fs.StringVar(&f.dhtBootstrap, "dht-bootstrap", "", "DHT bootstrap `NODES`, comma-separated host:port (default: the well-known public routers)")
	fs.StringVar(&f.peers, "peer", "", "`ADDRS` of peers to connect to at start, comma-separated ip:port, besides trackers and DHT")
	fs.StringVar(&f.encryption, "encryption", "prefer", "protocol encryption (MSE): `MODE` prefer (try it, fall back to plain), require, or off")
	fs.BoolVar(&f.verbose, "v", false, "log debug messages to stderr")
}

// check validates the flags' values; commands call it right after parsing
// so that a bad flag is reported before any file is read.
func (f *engineFlags) check() error {
	if f.port < 0 || f.port > 65535 {
		return usageError("--port %d is not a TCP port", f.port)
	}
	if f.maxPeers < 0 {
		return usageError("--max-peers must not be negative")
	}
	switch engine.EncryptionPolicy(f.encryption) {
	case engine.EncryptionPrefer, engine.EncryptionRequire, engine.EncryptionOff:
	default:
		return usageError("--encryption %q: want prefer, require or off", f.encryption)
	}
	_, err := f.startPeers()
	return err
}

// config turns the flags into an engine configuration.
func (f *engineFlags) config(stderr io.Writer) (engine.Config, error) {
	if err := f.check(); err != nil {
		return engine.Config{}, err
	}
	cfg := engine.Config{
		CacheDir:     f.cacheDir,
		CacheSize:    int64(f.cacheSize),
		MaxPeers:     f.maxPeers,
		MaxReadahead: int64(f.readahead),
		NoDHT:        f.noDHT,
		Encryption:   engine.EncryptionPolicy(f.encryption),
		Logger:       newLogger(stderr, f.verbose),
	}
	if f.port != 0 {
		cfg.ListenAddr = ":" + strconv.Itoa(f.port)
	}
	if f.dhtBootstrap != "" {
		cfg.DHTBootstrap = splitList(f.dhtBootstrap)
	}
	return cfg, nil
}

// newClient validates the flags and starts an engine client; it also
// returns the --peer addresses to add to each torrent.
func (f *engineFlags) newClient(stderr io.Writer) (*engine.Client, []netip.AddrPort, error) {
	cfg, err := f.config(stderr)
	if err != nil {
		return nil, nil, err
	}
	peers, err := f.startPeers()
	if err != nil {
		return nil, nil, err
	}
	c, err := engine.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, peers, nil
}

// startPeers parses --peer.
func (f *engineFlags) startPeers() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range splitList(f.peers) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return nil, usageError("--peer %q: want ip:port", s)
		}
		out = append(out, ap)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newLogger logs warnings (or debug messages with -v) as text to w.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// byteSize is a flag holding a size such as 10GiB, 512MB or 1048576.
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return ""
	}
	return humanize.IBytes(uint64(*b))
}

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("bad size %q (want e.g. 10GiB, 512MB)", s)
	}
	if n > 1<<62 {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = byteSize(n)
	return nil
}

// source is one thing to mount or download: a torrent file or a magnet.
type source struct {
	arg    string
	meta   *metainfo.MetaInfo // set for .torrent files
	magnet *metainfo.Magnet   // set for magnet URIs
}

// loadSources expands the command-line sources: .torrent files, magnet
// URIs, and directories (every *.torrent directly inside).
func loadSources(args []string) ([]source, error) {
	var out []source
	for _, a := range args {
		if strings.HasPrefix(a, "magnet:") {
			m, err := metainfo.ParseMagnet(a)
			if err != nil {
				return nil, err
			}
			out = append(out, source{arg: a, magnet: m})
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			mi, err := metainfo.LoadFile(a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", a, err)
			}
			out = append(out, source{arg: a, meta: mi})
			continue
		}
		names, err := filepath.Glob(filepath.Join(a, "*.torrent"))
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no .torrent files in this directory", a)
		}
		slices.Sort(names)
		for _, n := range names {
			mi, err := metainfo.LoadFile(n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			out = append(out, source{arg: n, meta: mi})
		}
	}
	seen := map[metainfo.Hash]string{}
	for _, s := range out {
		h := s.infoHash()
		if prev, ok := seen[h]; ok {
			return nil, fmt.Errorf("%s and %s are the same torrent (%s)", prev, s.arg, h)
		}
		seen[h] = s.arg
	}
	return out, nil
}

func (s source) infoHash() metainfo.Hash {
	if s.meta != nil {
		return s.meta.InfoHash
	}
	return s.magnet.InfoHash
}

// add adds the source to the client.
func (s source) add(c *engine.Client, opt engine.AddOptions) (*engine.Torrent, error) {
	if s.meta != nil {
		return c.AddTorrent(s.meta, opt)
	}
	return c.AddMagnet(s.magnet, opt)
}

// statusLine formats one torrent's progress for humans.
func statusLine(name string, st engine.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", name)
	if st.PiecesTotal == 0 {
		fmt.Fprintf(&b, "%s (%d peers)", st.State, st.Peers)
		return b.String()
	}
	pct := 100 * float64(st.PiecesHave) / float64(st.PiecesTotal)
	fmt.Fprintf(&b, "%s %.1f%% (%s)  down %s/s  up %s/s  peers %d (%d seeds)",
		st.State, pct, humanize.IBytes(uint64(max(st.BytesHave, 0))),
		humanize.IBytes(uint64(max(st.DownRate, 0))), humanize.IBytes(uint64(max(st.UpRate, 0))),
		st.Peers, st.Seeds)
	return b.String()
}

// eta formats the time left to fetch left bytes at rate bytes/s.
func eta(left int64, rate float64) string {
	if left <= 0 {
		return "done"
	}
	if rate < 1 {
		return "ETA unknown"
	}
	d := time.Duration(float64(left)/rate) * time.Second
	return "ETA " + d.Round(time.Second).String()
}

// statusPrinter writes status lines: in place on a terminal, as plain lines
// at most every interval otherwise.
type statusPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	last     time.Time
	width    int
}

func (p *statusPrinter) print(now time.Time, lines []string, force bool) {
	if p.tty {
		s := strings.Join(lines, " | ")
		pad := ""
		if n := p.width - len(s); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", s, pad)
		p.width = len(s)
		return
	}
	if !force && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	for _, l := range lines {
		fmt.Fprintln(p.w, l)
	}
}

// done ends an in-place line.
func (p *statusPrinter) done() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

var errInterrupted = errors.New("interrupted")
