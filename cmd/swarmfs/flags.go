package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/logfmt"
	"github.com/swarmfs/swarmfs/engine"
)

// engineFlags are the flags shared by get, seed and mount.
type engineFlags struct {
	cacheDir     string
	cacheSize    byteSize
	port         int
	maxConns     int
	maxPeers     int // connections per torrent
	maxUp        byteSize
	maxDown      byteSize
	noUpload     bool
	readahead    byteSize
	noDHT        bool
	dhtBootstrap string
	peers        addrList
	encryption   string
	transport    string
	noLSD        bool
	noPortMap    bool
	verbose      bool
	logFormat    logfmt.Format
}

func (f *engineFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.cacheDir, "cache-dir", "", "`DIR` for the verified piece cache (default $XDG_CACHE_HOME/swarmfs or ~/.cache/swarmfs)")
	fset.Var(&f.cacheSize, "cache-size", "cap the cache at `SIZE`, e.g. 10GiB; least recently used pieces are evicted (default unlimited)")
	fset.IntVar(&f.port, "port", 0, "`PORT` to accept peers on, TCP and UDP (uTP, DHT) (default: any free port)")
	fset.IntVar(&f.maxConns, "max-conns", 0, "at most `N` peer connections in all (default 200)")
	fset.IntVar(&f.maxPeers, "max-conns-per-torrent", 0, "at most `N` peer connections per torrent (default a quarter of --max-conns, at least 10)")
	fset.IntVar(&f.maxPeers, "max-peers", 0, "the same as --max-conns-per-torrent")
	fset.Var(&f.maxUp, "max-upload-rate", "cap what is sent to peers at `SIZE` per second, e.g. 2MiB; protocol bytes count (default unlimited)")
	fset.Var(&f.maxDown, "max-download-rate", "cap what is received from peers at `SIZE` per second, e.g. 10MiB; reads waiting for data come first (default unlimited)")
	fset.BoolVar(&f.noUpload, "no-upload", false, "never upload: choke every peer and serve no piece (downloading goes on)")
	fset.Var(&f.readahead, "readahead", "largest readahead window of one open file, `SIZE` such as 64MiB (default 64MiB)")
	fset.BoolVar(&f.noDHT, "no-dht", false, "do not use the DHT to find peers")
	fset.StringVar(&f.dhtBootstrap, "dht-bootstrap", "", "DHT bootstrap `NODES`, comma-separated host:port (default: the well-known public routers)")
	fset.Var(&f.peers, "peer", "`ADDRS` of peers to connect to at start, comma-separated ip:port, besides trackers and DHT")
	fset.StringVar(&f.encryption, "encryption", "prefer", "protocol encryption (MSE): `MODE` prefer (try it, fall back to plain), require, or off")
	fset.BoolVar(&f.noLSD, "no-lsd", false, "do not announce torrents on the local network or find peers there (LSD)")
	fset.BoolVar(&f.noPortMap, "no-port-mapping", false, "do not ask the home router to forward the listen port (PCP, NAT-PMP, UPnP)")
	fset.StringVar(&f.transport, "transport", "utp,tcp", "peer connection `TRANSPORTS`, comma-separated: utp, tcp (uTP is tried first)")
	fset.BoolVar(&f.verbose, "v", false, "log debug messages to stderr")
	fset.Var(&f.logFormat, "log-format", "log `FORMAT` on stderr: text (key=value lines) or json (one object a line, for log shippers; status lines on a non-terminal become records too)")
}

// logger returns the command's logger: warnings (debug messages with -v)
// on e.stderr in the --log-format format, journal style when stderr is the
// journal. Messages and attribute values pass through printable.
func (f *engineFlags) logger(e *env) *slog.Logger {
	return slog.New(sanitizingHandler{logfmt.NewHandler(e.stderr, logfmt.Options{
		Format: f.logFormat, Level: logLevel(f.verbose), Journal: e.journal,
	})})
}

// statusHandler returns where status lines go on a stderr that is not a
// terminal: nil for plain lines (text), or a handler that writes each
// line as an info record "status" with the line in attribute "line"
// (json), so that stderr stays one format.
func (f *engineFlags) statusHandler(e *env) slog.Handler {
	if f.logFormat != logfmt.JSON || e.tty {
		return nil
	}
	return sanitizingHandler{logfmt.NewHandler(e.stderr, logfmt.Options{Format: logfmt.JSON})}
}

// check validates the flags' values; commands call it right after parsing
// so that a bad flag is reported before any file is read.
func (f *engineFlags) check() error {
	if f.port < 0 || f.port > 65535 {
		return usageError("--port %d is not a TCP port", f.port)
	}
	if f.maxPeers < 0 {
		return usageError("--max-conns-per-torrent must not be negative")
	}
	if f.maxConns < 0 {
		return usageError("--max-conns must not be negative")
	}
	if f.maxConns > 0 && f.maxPeers > f.maxConns {
		return usageError("--max-conns-per-torrent %d is above --max-conns %d", f.maxPeers, f.maxConns)
	}
	if f.maxUp > maxRate || f.maxDown > maxRate {
		return usageError("--max-upload-rate and --max-download-rate must be at most %s", humanize.IBytes(maxRate))
	}
	switch engine.EncryptionPolicy(f.encryption) {
	case engine.EncryptionPrefer, engine.EncryptionRequire, engine.EncryptionOff:
	default:
		return usageError("--encryption %q: want prefer, require or off", f.encryption)
	}
	if _, err := engine.ParseTransports(f.transport); err != nil {
		return usageError("--transport %q: want utp, tcp or utp,tcp", f.transport)
	}
	return nil
}

// config turns the flags into an engine configuration logging to log.
func (f *engineFlags) config(log *slog.Logger) (engine.Config, error) {
	if err := f.check(); err != nil {
		return engine.Config{}, err
	}
	transports, _ := engine.ParseTransports(f.transport) // checked
	cfg := engine.Config{
		Transports:         transports,
		NoLSD:              f.noLSD,
		NoPortMapping:      f.noPortMap,
		CacheDir:           f.cacheDir,
		CacheSize:          int64(f.cacheSize),
		MaxConns:           f.maxConns,
		MaxConnsPerTorrent: f.maxPeers,
		MaxUploadRate:      int64(f.maxUp),
		MaxDownloadRate:    int64(f.maxDown),
		NoUpload:           f.noUpload,
		MaxReadahead:       int64(f.readahead),
		NoDHT:              f.noDHT,
		Encryption:         engine.EncryptionPolicy(f.encryption),
		Logger:             log,
	}
	if f.port != 0 {
		cfg.ListenAddr = ":" + strconv.Itoa(f.port)
	}
	if f.dhtBootstrap != "" {
		cfg.DHTBootstrap = splitList(f.dhtBootstrap)
	}
	return cfg, nil
}

// newClient validates the flags and starts an engine client logging to
// log. The --peer addresses to add to each torrent are f.peers.
func (f *engineFlags) newClient(log *slog.Logger) (*engine.Client, error) {
	cfg, err := f.config(log)
	if err != nil {
		return nil, err
	}
	return engine.New(cfg)
}

// addrList is a flag holding peer addresses, comma-separated ip:port; it
// is parsed once, when the flag is set, and repeating the flag adds more.
type addrList []netip.AddrPort

func (l *addrList) String() string {
	s := make([]string, len(*l))
	for i, ap := range *l {
		s[i] = ap.String()
	}
	return strings.Join(s, ",")
}

func (l *addrList) Set(v string) error {
	for _, s := range splitList(v) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("--peer %q: want ip:port", s)
		}
		*l = append(*l, ap)
	}
	return nil
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

// byteSize is a flag holding a size such as 10GiB, 512MB or 1048576,
// parsed by humanize. Every size flag uses it; zero prints as "" so that
// help shows no default for it.
type byteSize int64

// maxByteSize bounds a size flag; larger values are refused at parsing.
const maxByteSize = 1 << 62

// maxRate bounds a rate flag (the engine's limiters take up to 1 TiB/s).
const maxRate = 1 << 40

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
	if n > maxByteSize {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = byteSize(n)
	return nil
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints nothing by itself.
func newFlagSet(name string) *flag.FlagSet {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	return fset
}

// parseFlags parses args into fset, turning flag errors into usage errors.
// Flags may come before or after positional arguments.
func parseFlags(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError("%v", err)
		}
		args = fset.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
