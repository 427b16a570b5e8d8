package engine

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmfs/swarmfs/engine/internal/metadata"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// metaFetch is the BEP 9 state of a torrent whose info is not known yet.
type metaFetch struct {
	asm     *metadata.Assembler[*peer]
	sizeSrc *peer // the peer whose metadata_size asm was built with
	out     map[*peer]int
}

func newMetaFetch() *metaFetch { return &metaFetch{out: make(map[*peer]int)} }

// maxMetaOutstanding is the number of ut_metadata requests in flight per peer.
const maxMetaOutstanding = 2

// metaWritten reports the metadata file written to the cache directory.
type metaWritten struct{ err error }

// metaPeerReady starts asking a peer that announced metadata_size.
func (ls *loopState) metaPeerReady(p *peer) {
	mf := ls.meta
	if mf == nil || ls.info != nil || p.ext == nil || p.ext.MetadataSize <= 0 {
		return
	}
	if _, ok := p.ext.ID(wire.ExtMetadata); !ok {
		return
	}
	if mf.asm == nil {
		asm, err := metadata.New[*peer](ls.t.infoHash, p.ext.MetadataSize)
		if err != nil {
			ls.dropPeer(p, err.Error())
			return
		}
		mf.asm, mf.sizeSrc = asm, p
	}
	ls.metaAsk(p)
}

// metaAsk keeps up to maxMetaOutstanding requests at p.
func (ls *loopState) metaAsk(p *peer) {
	mf := ls.meta
	if mf == nil || mf.asm == nil || p.removed || p.ext == nil || p.ext.MetadataSize != mf.asm.Size() {
		return
	}
	now := time.Now()
	for mf.out[p] < maxMetaOutstanding {
		i, ok := mf.asm.Next(p, now)
		if !ok {
			return
		}
		if !ls.sendExt(p, wire.ExtMetadata, wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i})) {
			return
		}
		mf.out[p]++
	}
}

func (ls *loopState) metaReject(p *peer, i int) {
	mf := ls.meta
	if mf == nil || mf.asm == nil {
		return
	}
	mf.out[p] = max(mf.out[p]-1, 0)
	mf.asm.Reject(p, i)
	ls.metaAskAll()
}

func (ls *loopState) metaData(p *peer, msg wire.MetadataMsg) {
	mf := ls.meta
	if mf == nil || mf.asm == nil {
		return // not asked (or already done): ignore
	}
	mf.out[p] = max(mf.out[p]-1, 0)
	if msg.TotalSize != 0 && msg.TotalSize != mf.asm.Size() {
		ls.dropPeer(p, fmt.Sprintf("ut_metadata total_size %d, expected %d", msg.TotalSize, mf.asm.Size()))
		return
	}
	done, err := mf.asm.Add(p, msg.Piece, msg.Data)
	var hm *metadata.HashMismatchError[*peer]
	switch {
	case errors.Is(err, metadata.ErrUnrequested):
		// A late answer: ignore.
	case errors.Is(err, metadata.ErrPieceSize):
		ls.dropPeer(p, err.Error())
	case errors.As(err, &hm):
		ls.t.log.Info("metadata failed verification", "err", err)
		if hm.Guilty {
			for _, q := range hm.Peers {
				ls.ban(q.addr.Addr(), "sent metadata that does not match the info hash")
				if q == mf.sizeSrc {
					// Its size may have been the lie: start over.
					mf.asm, mf.sizeSrc = nil, nil
				}
			}
		}
		ls.metaRestart()
	case err != nil:
		ls.dropPeer(p, err.Error())
	case done:
		ls.metadataDone(mf.asm.Bytes())
		return
	}
	ls.metaAskAll()
}

// metaRestart re-creates the assembler from a connected peer if needed.
func (ls *loopState) metaRestart() {
	mf := ls.meta
	clear(mf.out)
	if mf.asm != nil {
		return
	}
	for p := range ls.peers {
		ls.metaPeerReady(p)
		if mf.asm != nil {
			return
		}
	}
}

func (ls *loopState) metaAskAll() {
	if ls.meta == nil || ls.info != nil {
		return
	}
	if ls.meta.asm == nil {
		ls.metaRestart()
	}
	for p := range ls.peers {
		ls.metaAsk(p)
	}
}

// metaTick re-asks for timed out pieces.
func (ls *loopState) metaTick(time.Time) {
	if ls.meta == nil || ls.info != nil || ls.meta.asm == nil {
		return
	}
	// Requests older than the assembler's timeout are offered again by
	// Next; let every peer ask anew.
	clear(ls.meta.out)
	ls.metaAskAll()
}

// metaPeerGone forgets a peer's metadata requests.
func (ls *loopState) metaPeerGone(p *peer) {
	mf := ls.meta
	if mf == nil || mf.asm == nil {
		return
	}
	delete(mf.out, p)
	mf.asm.PeerGone(p)
	if mf.sizeSrc == p {
		mf.sizeSrc = nil
	}
}

// metadataDone turns the torrent into a normal one once the info
// dictionary verified.
func (ls *loopState) metadataDone(infoBytes []byte) {
	t := ls.t
	info, err := metainfo.ParseInfo(infoBytes)
	if err != nil {
		// The hash matched, so the info is what the swarm shares, but we
		// cannot use it.
		t.log.Error("metadata verified but unusable", "err", err)
		ls.meta.asm = nil
		return
	}
	mi := &metainfo.MetaInfo{Info: info, InfoBytes: infoBytes, InfoHash: t.infoHash, AnnounceList: t.trackers}
	if err := t.setInfo(mi); err != nil {
		t.log.Error("opening the cache for fetched metadata", "err", err)
		return
	}
	ls.meta = nil
	t.log.Info("metadata received", "name", info.Name, "pieces", info.NumPieces())
	root := t.c.cfg.CacheDir
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := saveMetadata(root, t.infoHash, infoBytes)
		select {
		case t.events <- metaWritten{err}:
		case <-t.closing:
		}
	}()
	ls.infoKnown(mi)
	if info.Private {
		ls.stopDHT()
	}
	for p := range ls.peers {
		ls.replayHaves(p)
		// Say what we have now (nothing, unless the cache held pieces).
		if ls.store != nil {
			if n, _ := ls.store.Present(); n > 0 {
				ls.sendHaves(p)
			}
		}
	}
	ls.refillAll = true
}

// metadataPath is where fetched metadata is kept: next to the cache store
// of the torrent, as root/<infohash>.metadata.
func metadataPath(root string, ih metainfo.Hash) string {
	return filepath.Join(root, ih.String()+".metadata")
}

// saveMetadata writes infoBytes atomically (temp file, fsync, rename).
func saveMetadata(root string, ih metainfo.Hash, infoBytes []byte) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	path := metadataPath(root, ih)
	f, err := os.CreateTemp(root, ".metadata-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(infoBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// loadMetadata reads metadata saved by saveMetadata and checks its hash.
func loadMetadata(root string, ih metainfo.Hash) ([]byte, error) {
	b, err := os.ReadFile(metadataPath(root, ih))
	if err != nil {
		return nil, err
	}
	if len(b) > wire.MaxMetadataSize || sha1.Sum(b) != ih {
		return nil, fmt.Errorf("engine: saved metadata for %s does not match its info hash", ih)
	}
	return b, nil
}
