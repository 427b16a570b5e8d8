package library

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Errors returned by Library implementations and by the helpers here.
var (
	ErrNotFound  = errors.New("library: no such torrent or file")
	ErrExists    = errors.New("library: torrent already added")
	ErrNoInfo    = errors.New("library: metadata not known yet")
	ErrBadSource = errors.New("library: not a torrent file or magnet link")
	ErrAmbiguous = errors.New("library: name matches several torrents")
)

// Library is a changing set of torrents.
type Library interface {
	// Torrents returns a snapshot of every torrent, in no particular order.
	Torrents() []Torrent
	// Torrent returns a snapshot of the torrent with info hash h.
	Torrent(h metainfo.Hash) (Torrent, bool)
	// Open returns a reader of file index file of the torrent h. Its reads
	// set piece priorities and readahead as a reader of the mount does; it
	// holds them until Close.
	Open(ctx context.Context, h metainfo.Hash, file int) (Reader, error)
	// Add adds a torrent or magnet and returns its snapshot.
	Add(ctx context.Context, src Source) (Torrent, error)
	// Remove removes the torrent h. Readers open on it keep working until
	// they are closed; then the torrent goes. With purge its cached data is
	// deleted too.
	Remove(ctx context.Context, h metainfo.Hash, purge bool) error
}

// Reader reads one file of a torrent. ReadAt is safe for concurrent use;
// it blocks until the bytes are verified or ctx ends, and returns io.EOF
// with the bytes before the end of the file.
type Reader interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close() error
}

// Torrent is a snapshot of one torrent.
type Torrent struct {
	InfoHash metainfo.Hash
	// Name is the torrent's name (a magnet's dn or hex hash until its
	// metadata is known).
	Name string
	// Ready reports whether the metadata is known; Files is empty until then.
	Ready bool
	// Size is the total length of the files (0 until Ready).
	Size int64
	// Files lists the files, built only when read.
	Files Files
	// Modified is the torrent's creation date, or the time it was added
	// when the torrent does not say.
	Modified time.Time
	Stats    Stats
	// Dir is the torrent's directory relative to the mountpoint, set only
	// in the reply to an add that put the torrent in a mount.
	Dir string
}

// File is one file of a torrent.
type File struct {
	// Path is the file's path inside the torrent, "/"-separated, as
	// metainfo.File.DisplayPath gives it.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
}

// Stats is a torrent's transfer state.
type Stats struct {
	// State is a short word such as "downloading" or "fetching metadata".
	State string `json:"state"`
	// Downloaded and Uploaded count payload bytes exchanged with peers
	// since the torrent was added; WebSeedBytes those received from web
	// seeds (BEP 19), not in Downloaded.
	Downloaded   int64 `json:"downloaded"`
	Uploaded     int64 `json:"uploaded"`
	WebSeedBytes int64 `json:"web_seed_bytes"`
	// HashFailures counts pieces that failed their hash check; Banned is
	// the number of IPs banned for sending bad data; EvictedBytes counts
	// verified bytes the cache gave up under its cap.
	HashFailures int64 `json:"hash_failures"`
	Banned       int   `json:"banned"`
	EvictedBytes int64 `json:"evicted_bytes"`
	// DownRate and UpRate are recent payload rates in bytes per second.
	DownRate float64 `json:"down_rate"`
	UpRate   float64 `json:"up_rate"`
	Peers    int     `json:"peers"`
	Seeds    int     `json:"seeds"`
	// PiecesHave of PiecesTotal pieces are verified in the cache, holding
	// BytesHave bytes.
	PiecesHave  int   `json:"pieces_have"`
	PiecesTotal int   `json:"pieces_total"`
	BytesHave   int64 `json:"bytes_have"`
	// OpenReaders counts readers open on the torrent; Removing says that it
	// was removed and goes when they are closed.
	OpenReaders int  `json:"open_readers"`
	Removing    bool `json:"removing,omitempty"`
}

// Progress returns the verified fraction of the torrent, 0 to 1.
func (s Stats) Progress() float64 {
	if s.PiecesTotal == 0 {
		return 0
	}
	return float64(s.PiecesHave) / float64(s.PiecesTotal)
}

// FileIndex returns the index of the file at path p, or -1.
func (t Torrent) FileIndex(p string) int { return t.Files.Index(p) }

// jsonTorrent is Torrent's JSON form: the info hash as hex.
type jsonTorrent struct {
	InfoHash string    `json:"infohash"`
	Name     string    `json:"name"`
	Ready    bool      `json:"ready"`
	Size     int64     `json:"size"`
	Progress float64   `json:"progress"`
	Modified time.Time `json:"modified"`
	Files    Files     `json:"files"`
	Stats    Stats     `json:"stats"`
	Dir      string    `json:"dir,omitempty"`
}

// MarshalJSON writes the torrent with its info hash in hex.
func (t Torrent) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonTorrent{
		InfoHash: t.InfoHash.String(), Name: t.Name, Ready: t.Ready, Size: t.Size,
		Progress: t.Stats.Progress(), Modified: t.Modified, Files: t.Files, Stats: t.Stats, Dir: t.Dir,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Torrent) UnmarshalJSON(b []byte) error {
	var j jsonTorrent
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	h, err := metainfo.ParseHash(j.InfoHash)
	if err != nil {
		return fmt.Errorf("library: torrent %q: %w", j.Name, err)
	}
	*t = Torrent{InfoHash: h, Name: j.Name, Ready: j.Ready, Size: j.Size, Modified: j.Modified, Files: j.Files, Stats: j.Stats, Dir: j.Dir}
	return nil
}

// Find returns the torrent whose hex info hash (any case), or exact name,
// is s. A name shared by several torrents gives ErrAmbiguous.
func Find(lib Library, s string) (Torrent, error) {
	if h, err := metainfo.ParseHash(s); err == nil {
		if t, ok := lib.Torrent(h); ok {
			return t, nil
		}
	}
	var found []Torrent
	for _, t := range lib.Torrents() {
		if t.Name == s {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return Torrent{}, fmt.Errorf("%w: %q", ErrNotFound, s)
	case 1:
		return found[0], nil
	default:
		return Torrent{}, fmt.Errorf("%w: %q (use the info hash)", ErrAmbiguous, s)
	}
}
