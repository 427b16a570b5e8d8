package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/metainfo"
)

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
