package cache

import (
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/swarmfs/swarmfs/metainfo"
)

// The info dictionary of a torrent added by magnet link is kept beside its
// store as root/<40-hex info hash>.metadata, the bencoded bytes whose SHA-1
// is the info hash, so that adding the magnet again needs no peer to send
// it.

// MetadataPath returns where SaveMetadata keeps the info dictionary of ih.
func MetadataPath(root string, ih metainfo.Hash) string {
	return filepath.Join(root, ih.String()+".metadata")
}

// SaveMetadata durably stores infoBytes, the bencoded info dictionary whose
// SHA-1 is ih, under root (created when missing) with WriteFileAtomic. Bytes
// that do not hash to ih are refused with an error wrapping ErrBadMetadata.
func SaveMetadata(root string, ih metainfo.Hash, infoBytes []byte) error {
	if sha1.Sum(infoBytes) != ih {
		return fmt.Errorf("%w: %d bytes do not hash to %s", ErrBadMetadata, len(infoBytes), ih)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("cache: save metadata: %w", err)
	}
	if err := WriteFileAtomic(MetadataPath(root, ih), infoBytes, 0o600); err != nil {
		return fmt.Errorf("cache: save metadata: %w", err)
	}
	return nil
}

// LoadMetadata returns the info dictionary of ih saved by SaveMetadata. A
// missing file gives an error wrapping fs.ErrNotExist; a file larger than
// maxSize bytes or whose SHA-1 is not ih gives one wrapping ErrBadMetadata.
func LoadMetadata(root string, ih metainfo.Hash, maxSize int) ([]byte, error) {
	f, err := os.Open(MetadataPath(root, ih))
	if err != nil {
		return nil, fmt.Errorf("cache: load metadata: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxSize)+1))
	if err != nil {
		return nil, fmt.Errorf("cache: load metadata: %w", err)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrBadMetadata, f.Name(), maxSize)
	}
	if sha1.Sum(b) != ih {
		return nil, fmt.Errorf("%w: %s does not hash to its info hash", ErrBadMetadata, f.Name())
	}
	return b, nil
}
