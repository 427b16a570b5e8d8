package library

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/swarmfs/swarmfs/metainfo"
)

// Source is a torrent to add: exactly one of Meta and Magnet is set.
type Source struct {
	Meta   *metainfo.MetaInfo
	Magnet *metainfo.Magnet
}

// InfoHash returns the source's info hash.
func (s Source) InfoHash() metainfo.Hash {
	if s.Meta != nil {
		return s.Meta.InfoHash
	}
	if s.Magnet != nil {
		return s.Magnet.InfoHash
	}
	return metainfo.Hash{}
}

// Name returns the source's name: the torrent's, else the magnet's dn, else
// the hex info hash.
func (s Source) Name() string {
	switch {
	case s.Meta != nil:
		return s.Meta.Info.Name
	case s.Magnet != nil && s.Magnet.Name != "":
		return s.Magnet.Name
	}
	return s.InfoHash().String()
}

// ParseSource parses untrusted bytes holding either a .torrent file or a
// magnet link (surrounding white space allowed, as in a .magnet file). Its
// errors wrap ErrBadSource and the metainfo error that says why.
func ParseSource(b []byte) (Source, error) {
	if len(b) > metainfo.MaxTorrentSize {
		return Source{}, fmt.Errorf("%w: larger than %d MiB", ErrBadSource, metainfo.MaxTorrentSize>>20)
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) > 0 && trimmed[0] != 'd' {
		s := string(trimmed)
		if !strings.HasPrefix(strings.ToLower(s), "magnet:") {
			return Source{}, fmt.Errorf("%w: neither bencoded nor a magnet link", ErrBadSource)
		}
		m, err := metainfo.ParseMagnet(s)
		if err != nil {
			return Source{}, fmt.Errorf("%w: %w", ErrBadSource, err)
		}
		return Source{Magnet: m}, nil
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return Source{}, fmt.Errorf("%w: %w", ErrBadSource, err)
	}
	return Source{Meta: mi}, nil
}
