package dht

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/metainfo"
)

const (
	maxStateSize  = 1 << 20
	maxStateNodes = 2000
)

var errNoState = errors.New("dht: no state file")

// stateFile is the bencoded state: the node id and the routing table's
// nodes in compact form.
type stateFile struct {
	ID     string `bencode:"id"`
	Nodes  string `bencode:"nodes,omitempty"`
	Nodes6 string `bencode:"nodes6,omitempty"`
}

// saveState writes the state with cache.WriteFileAtomic.
func saveState(path string, id metainfo.Hash, nodes []nodeInfo) error {
	b, err := metainfo.Marshal(&stateFile{
		ID:     string(id[:]),
		Nodes:  compactNodes(nodes, true),
		Nodes6: compactNodes(nodes, false),
	})
	if err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	if err := cache.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	return nil
}

// loadState reads a state file written by saveState. A missing file
// returns errNoState.
func loadState(path string) (metainfo.Hash, []nodeInfo, error) {
	var id metainfo.Hash
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return id, nil, errNoState
	}
	if err != nil {
		return id, nil, fmt.Errorf("dht: load state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return id, nil, fmt.Errorf("dht: load state: %w", err)
	}
	if len(b) > maxStateSize {
		return id, nil, fmt.Errorf("dht: load state: %s larger than %d bytes", path, maxStateSize)
	}
	var s stateFile
	if err := metainfo.Unmarshal(b, &s); err != nil {
		return id, nil, fmt.Errorf("dht: load state %s: %w", path, err)
	}
	if id, err = hash20(s.ID, "state node id"); err != nil {
		return id, nil, fmt.Errorf("dht: load state %s: %w", path, err)
	}
	nodes, err := parseNodes(s.Nodes, 4, maxStateNodes)
	if err != nil {
		return id, nil, fmt.Errorf("dht: load state %s: %w", path, err)
	}
	nodes6, err := parseNodes(s.Nodes6, 16, maxStateNodes)
	if err != nil {
		return id, nil, fmt.Errorf("dht: load state %s: %w", path, err)
	}
	return id, append(nodes, nodes6...), nil
}
