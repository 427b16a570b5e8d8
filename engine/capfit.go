package engine

import (
	"errors"
	"fmt"

	"github.com/swarmfs/swarmfs/cache"

	"github.com/swarmfs/swarmfs/metainfo"
)

// ErrCacheTooSmall is wrapped by the error of adding a torrent whose
// pieces a capped cache (Config.CacheSize) cannot hold as a reader needs
// them: its readahead window (Config.MaxReadahead ahead of it and as much
// behind it) and minCachePieces pieces it reads and pins. Pieces fetched for it would be evicted before
// they are read, and fetched again, forever.
var ErrCacheTooSmall = errors.New("engine: cache size too small")

// minCachePieces is the fewest pieces beyond the readahead window a capped
// cache must hold: those a read pins while it waits for them.
const minCachePieces = 4

// readaheadShare is the part of a capped cache that the default readahead
// window takes (1/readaheadShare), so that the pieces read before it stay
// cached while the window fills.
const readaheadShare = 8

// defaultReadahead returns the readahead window when Config.MaxReadahead
// is zero: DefaultMaxReadahead, or an eighth of a smaller cache.
func defaultReadahead(cacheSize int64) int64 {
	if cacheSize <= 0 {
		return DefaultMaxReadahead
	}
	return max(min(DefaultMaxReadahead, cacheSize/readaheadShare), 1)
}

// checkCacheFits returns an error wrapping ErrCacheTooSmall when the cache
// cap cannot hold a reader's readahead window and minCachePieces pieces
// of info. A torrent kept in its own files (opt.DataDir, opt.Content) is
// not under the cap.
func (c *Client) checkCacheFits(info *metainfo.Info, opt AddOptions) error {
	capBytes := c.cfg.CacheSize
	if capBytes <= 0 || info == nil || opt.layout() != (cache.DataFile{}) {
		return nil
	}
	need := 2*c.cfg.MaxReadahead + minCachePieces*info.PieceLength
	if capBytes >= need {
		return nil
	}
	return fmt.Errorf("%w: %s cannot hold twice the readahead window of %s and %d pieces of %s; it needs at least %s",
		ErrCacheTooSmall, mib(capBytes), mib(c.cfg.MaxReadahead), minCachePieces, mib(info.PieceLength), mib(need))
}

// mib formats n bytes in MiB for error messages.
func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
