// Command swarmfs mounts BitTorrent content as a read-only filesystem.
//
// It owns the command line and everything shown to people: the command
// table (main.go; each command's definition, flags and run function in its
// own file), the flags shared by get, seed and mount (flags.go: one
// byteSize type for every size flag, --peer parsed once into addresses),
// loading sources (sources.go: .torrent files, magnets, directories of
// torrents), status lines (status.go), the adapter from engine.Torrent
// to fs.Torrent (adapter.go), engineLibrary (library.go: the torrents of
// serve and mount, whose removal waits for open readers), mountLibrary
// (mountlib.go: the engineLibrary of a mount, whose adds and removes also
// change the mount), the front ends (frontends.go), the seed policy
// (seedpolicy.go: --seed-ratio and --seed-time for get --seed, and
// removedSeeding, which keeps a torrent removed from serve or a mount
// seeding in the engine until its policy is reached) and the rate limits
// of a running library (rates.go: engineLibrary as a library.RateLimiter
// for the control socket and HTTP API, and the set-rate command).
//
// Names from torrents, magnets, peers and files reach a terminal or a log
// line only through printable (display.go), the one sanitizer: control
// characters, escape sequences, C1 controls, bidi overrides and invalid
// UTF-8 are shown escaped. The loggers it builds (engineFlags.logger for
// --log-format text|json and the journal, newLogger for demo) wrap their
// handler in sanitizingHandler so that messages and attribute values from
// the engine and the mount pass through it too, and info --json escapes
// such runes as \u escapes. Status lines are redrawn in place only when
// stderr is a terminal (logfmt.IsTerminal); mount and serve tell systemd
// their state through sdnotify (READY, STATUS, STOPPING).
//
// Concurrency: each command runs in the goroutine that called run; status
// printing happens there. The control socket, watch directory and HTTP
// server call the library from their own goroutines; mountLibrary
// serializes adds and removes with one mutex, so the library and the mount
// change in the same order. The adapter's stats feed (one goroutine per
// mounted torrent, ended when the torrent leaves the engine, or when the
// mount is gone for demo's mountTorrents) refreshes the snapshot the
// mount's getxattr handlers read, so they never wait on a torrent loop.
// removedSeeding runs one goroutine per removed torrent still seeding; it
// polls the torrent's published stats (never waiting on its loop), and
// Close, or adding the torrent again, ends it and waits for it.
//
// Errors: a command returns an error; run prints it once (escaped) with
// the command's name and exits 1, or 2 for command-line mistakes
// (errUsage), adding the usage line.
package main
