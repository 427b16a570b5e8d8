package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/internal/metadata"
	"github.com/swarmfs/swarmfs/engine/internal/wire"
	"github.com/swarmfs/swarmfs/metainfo"
)

// metaFetch is the BEP 9 state of a torrent whose info is not known yet.
// Peers may claim different metadata sizes, and a liar's claim must not
// stop the others: there is one assembler per claimed size, each asking
// only the peers that claim it.
type metaFetch struct {
	bySize map[int]*sizeFetch
	asked  map[*peer]map[int]time.Time // requests in flight: peer -> piece -> when
	slow   map[*peer]time.Time         // when a peer left a request unanswered for metaAnswerTimeout
}

// sizeFetch assembles the info dictionary of one claimed size.
type sizeFetch struct {
	asm      *metadata.Assembler[*peer]
	progress time.Time // when it was created or last stored a piece
}

func newMetaFetch() *metaFetch {
	return &metaFetch{
		bySize: make(map[int]*sizeFetch),
		asked:  make(map[*peer]map[int]time.Time),
		slow:   make(map[*peer]time.Time),
	}
}

// held returns the bytes of metadata pieces stored by all assemblers.
func (mf *metaFetch) held() int {
	n := 0
	for _, sf := range mf.bySize {
		n += sf.asm.Have() * metadata.PieceSize
	}
	return n
}

// Limits of metadata fetching.
const (
	// maxMetaOutstanding is the number of ut_metadata requests in flight
	// per peer.
	maxMetaOutstanding = 2
	// maxMetaHeld caps the metadata pieces stored for all claimed sizes
	// together; no piece is requested beyond it. Assemblers that make no
	// progress for metadata.DefaultTimeout give their pieces up.
	maxMetaHeld = 2 * wire.MaxMetadataSize
	// metaAnswerTimeout is how long a peer may leave its ut_metadata
	// requests unanswered before they go to other peers; it is then not
	// asked again for metaSlowFor. (A silent peer would otherwise hold
	// its pieces for the assembler's much longer timeout; each silent
	// peer asked before an honest one still costs this long.)
	metaAnswerTimeout = 2 * time.Second
	// metaStaleAfter is the assemblers' Timeout: a piece asked of one peer
	// is also offered to the next peer that asks after this long, so that
	// silent peers are tried in parallel with the others, not in turn.
	metaStaleAfter = 500 * time.Millisecond
	metaSlowFor    = 20 * time.Second
)

// metaWritten reports the metadata file written to the cache directory.
type metaWritten struct{ err error }

// metaSize returns the metadata size p claimed first, or 0 when it cannot
// serve ut_metadata.
func metaSize(p *peer) int {
	if p.removed || p.ext == nil || p.metaClaim <= 0 {
		return 0
	}
	if _, ok := p.ext.ID(wire.ExtMetadata); !ok {
		return 0
	}
	return p.metaClaim
}

// metaPeerReady starts asking a peer that announced metadata_size.
func (ls *loopState) metaPeerReady(p *peer) {
	mf := ls.meta
	size := metaSize(p)
	if mf == nil || ls.info() != nil || size == 0 {
		return
	}
	if mf.bySize[size] == nil {
		asm, err := metadata.New[*peer](ls.t.infoHash, size)
		if err != nil {
			ls.dropPeer(p, err.Error())
			return
		}
		asm.Timeout = metaStaleAfter
		mf.bySize[size] = &sizeFetch{asm: asm, progress: time.Now()}
	}
	ls.metaAsk(p)
}

// metaAsk keeps up to maxMetaOutstanding requests at p.
func (ls *loopState) metaAsk(p *peer) {
	mf := ls.meta
	if mf == nil {
		return
	}
	sf := mf.bySize[metaSize(p)]
	if sf == nil {
		return
	}
	now := time.Now()
	if at, ok := mf.slow[p]; ok && now.Sub(at) < metaSlowFor {
		return
	}
	for len(mf.asked[p]) < maxMetaOutstanding && mf.held() < maxMetaHeld {
		i, ok := sf.asm.Next(p, now)
		if !ok {
			return
		}
		if !ls.sendExt(p, wire.ExtMetadata, wire.AppendMetadataMsg(nil, wire.MetadataMsg{Type: wire.MetadataRequest, Piece: i})) {
			return
		}
		if mf.asked[p] == nil {
			mf.asked[p] = make(map[int]time.Time, maxMetaOutstanding)
		}
		if _, again := mf.asked[p][i]; !again {
			mf.asked[p][i] = now // a re-ask does not restart the peer's clock
		}
	}
}

// answered records p's answer (data or reject) for piece i.
func (mf *metaFetch) answered(p *peer, i int) {
	delete(mf.asked[p], i)
}

func (ls *loopState) metaReject(p *peer, i int) {
	mf := ls.meta
	if mf == nil {
		return
	}
	sf := mf.bySize[metaSize(p)]
	if sf == nil {
		return
	}
	mf.answered(p, i)
	sf.asm.Reject(p, i)
	ls.metaAskAll()
}

func (ls *loopState) metaData(p *peer, msg wire.MetadataMsg) {
	mf := ls.meta
	if mf == nil {
		return // not asked (or already done): ignore
	}
	size := metaSize(p)
	sf := mf.bySize[size]
	if sf == nil {
		return // not asked: ignore
	}
	mf.answered(p, msg.Piece)
	if msg.TotalSize != 0 && msg.TotalSize != size {
		ls.dropPeer(p, fmt.Sprintf("ut_metadata total_size %d, but metadata_size %d", msg.TotalSize, size))
		return
	}
	have := sf.asm.Have()
	done, err := sf.asm.Add(p, msg.Piece, msg.Data)
	if sf.asm.Have() > have {
		sf.progress = time.Now()
	}
	var hm *metadata.HashMismatchError[*peer]
	switch {
	case errors.Is(err, metadata.ErrUnrequested):
		// A late answer: ignore.
	case errors.Is(err, metadata.ErrPieceSize):
		ls.dropPeer(p, err.Error())
	case errors.As(err, &hm):
		ls.t.log.Info("metadata failed verification", "size", size, "err", err)
		if hm.Guilty {
			// One peer sent it all: it lied, maybe about the size too.
			// Honest peers claiming this size start a new assembler.
			delete(mf.bySize, size)
			for _, q := range hm.Peers {
				ls.ban(q.addr.Addr(), "sent metadata that does not match the info hash")
			}
		}
		for q := range mf.asked {
			if metaSize(q) == size {
				delete(mf.asked, q) // the assembler forgot them
			}
		}
	case err != nil:
		ls.dropPeer(p, err.Error())
	case done:
		ls.metadataDone(sf.asm.Bytes())
		return
	}
	ls.metaAskAll()
}

func (ls *loopState) metaAskAll() {
	if ls.meta == nil || ls.info() != nil {
		return
	}
	// Peers without requests in flight first: a silent peer must not get
	// its own stale piece again before the others had a chance.
	var busy []*peer
	for p := range ls.conns.peers {
		if len(ls.meta.asked[p]) > 0 {
			busy = append(busy, p)
			continue
		}
		ls.metaPeerReady(p)
	}
	for _, p := range busy {
		ls.metaPeerReady(p)
	}
}

// metaTick hands the requests of peers that sit on them to others, and
// frees the assemblers of sizes no connected peer claims any more or that
// stored nothing for a while.
func (ls *loopState) metaTick(now time.Time) {
	mf := ls.meta
	if mf == nil || ls.info() != nil {
		return
	}
	claimed := make(map[int]bool)
	for p := range ls.conns.peers {
		claimed[metaSize(p)] = true
	}
	for size, sf := range mf.bySize {
		stalled := sf.asm.Have() > 0 && now.Sub(sf.progress) > metadata.DefaultTimeout
		if !claimed[size] || stalled {
			delete(mf.bySize, size)
		}
	}
	for p, reqs := range mf.asked {
		for _, at := range reqs {
			if now.Sub(at) > metaAnswerTimeout {
				for _, sf := range mf.bySize {
					sf.asm.PeerGone(p)
				}
				delete(mf.asked, p)
				mf.slow[p] = now
				p.log.Debug("ut_metadata request unanswered; asking others", "after", now.Sub(at).Round(time.Millisecond))
				break
			}
		}
	}
	ls.metaAskAll()
}

// metaPeerGone forgets a peer's metadata requests.
func (ls *loopState) metaPeerGone(p *peer) {
	mf := ls.meta
	if mf == nil {
		return
	}
	delete(mf.asked, p)
	delete(mf.slow, p)
	for _, sf := range mf.bySize {
		sf.asm.PeerGone(p)
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
		delete(ls.meta.bySize, len(infoBytes))
		return
	}
	mi := &metainfo.MetaInfo{Info: info, InfoBytes: infoBytes, InfoHash: t.infoHash, AnnounceList: t.trackers}
	if err := t.c.checkCacheFits(info, t.opt); err != nil {
		// Nothing could stay in the cache long enough to be read.
		t.log.Error("metadata received, but the torrent does not fit the cache; paused", "err", err)
		t.fault.set(err, time.Now())
		ls.setPaused(true)
		delete(ls.meta.bySize, len(infoBytes))
		return
	}
	if err := t.setInfo(mi); err != nil {
		t.log.Error("opening the cache for fetched metadata", "err", err)
		return
	}
	ls.meta = nil
	t.log.Info("metadata received", "name", info.Name, "pieces", info.NumPieces())
	root := t.c.cfg.CacheDir
	t.goWorker(func() {
		t.post(metaWritten{cache.SaveMetadata(root, t.infoHash, infoBytes)})
	})
	ls.infoKnown(mi)
	if info.Private {
		ls.stopDHT()
	}
	for p := range ls.conns.peers {
		ls.replayHaves(p)
		// Say what we have now (nothing, unless the cache held pieces).
		if st := ls.store(); st != nil {
			if n, _ := st.Present(); n > 0 {
				ls.sendHaves(p)
			}
		}
	}
	ls.conns.refillAll = true
	ls.publish()
	close(t.infoReady) // after the snapshot: Stats then has the pieces
}
