// Package watch adds the torrents that appear in a directory to a library
// and removes them when their files go.
//
// # What it watches
//
// Regular files directly in Config.Dir named *.torrent (a torrent file) or
// *.magnet (a text file holding one magnet link), case-insensitively;
// names starting with "." are ignored (editors' and downloaders'
// temporary files). The directory is polled every Config.Interval
// (default 250 ms): polling is portable, survives the directory being
// replaced, and costs one readdir and a stat per file.
//
// # When a file counts
//
// A file is read once its size and modification time have stayed the
// same for one poll. If it does not parse, it is retried at each poll,
// since it may be half-written, until it has stayed unchanged for
// Config.Settle (default 2 s); then it is logged once as bad and skipped
// until it changes. A torrent that the library already has (added by
// another way) is left alone and is not removed with the file. A file
// whose contents change to another torrent removes the old one and adds
// the new. A file that disappears removes the torrent it added (without
// purging its cache).
//
// # Concurrency
//
// Run owns all state and runs on the caller's goroutine until its context
// ends. It calls the library's Add and Remove from that goroutine.
//
// # Errors
//
// Run returns an error only when the directory cannot be read at start;
// later failures (a file that vanishes mid-read, a failed add) are logged
// and retried or skipped as above.
package watch
