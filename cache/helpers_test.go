package cache

import (
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestMain fails the run when goroutines started by the package outlive
// the tests.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(m.Run()) // the crash test's writer child: killed, not checked
	}
	os.Exit(enginetest.RunCheckingLeaks(m, "swarmfs/cache.(*"))
}

// torrent is a generated payload with its Info.
type torrent struct {
	info    *metainfo.Info
	hash    metainfo.Hash
	payload []byte
}

// genTorrent builds an Info by hand over random data: total bytes in pieces
// of pieceLen (the last one shorter when total is not a multiple).
func genTorrent(rng *rand.Rand, pieceLen, total int64) *torrent {
	payload := make([]byte, total)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	rand.NewChaCha8(seed).Read(payload)
	return torrentOf(payload, pieceLen)
}

func torrentOf(payload []byte, pieceLen int64) *torrent {
	total := int64(len(payload))
	return hashTorrent(&metainfo.Info{
		Name:        "generated",
		PieceLength: pieceLen,
		TotalLength: total,
		SingleFile:  true,
		Files:       []metainfo.File{{Path: []string{"generated"}, Length: total}},
	}, payload)
}

// hashTorrent fills in the piece hashes of info (whose geometry and files
// are set) from payload and derives an info hash from them.
func hashTorrent(info *metainfo.Info, payload []byte) *torrent {
	total, pieceLen := info.TotalLength, info.PieceLength
	info.Pieces = make([]metainfo.Hash, (total+pieceLen-1)/pieceLen)
	h := sha1.New()
	for i := range info.Pieces {
		off := int64(i) * pieceLen
		info.Pieces[i] = sha1.Sum(payload[off:min(off+pieceLen, total)])
		h.Write(info.Pieces[i][:])
	}
	fmt.Fprintf(h, "%d", pieceLen)
	var ih metainfo.Hash
	h.Sum(ih[:0])
	return &torrent{info: info, hash: ih, payload: payload}
}

func (tt *torrent) piece(i int) []byte {
	off := tt.info.PieceOffset(i)
	return tt.payload[off : off+tt.info.PieceSize(i)]
}

func openT(t testing.TB, root string, tt *torrent, cfg Config) *Store {
	t.Helper()
	s, err := Open(root, tt.hash, tt.info, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitVerified waits for background verification with a deadline.
func waitVerified(t testing.TB, s *Store) {
	t.Helper()
	select {
	case <-s.VerifyDone():
	case <-time.After(30 * time.Second):
		t.Fatal("background verification did not finish")
	}
}

// checkPresentData reads every present piece and compares it with the
// payload.
func checkPresentData(t testing.TB, s *Store, tt *torrent) {
	t.Helper()
	buf := make([]byte, tt.info.PieceLength)
	for i, ok := range s.Bitfield() {
		if !ok {
			continue
		}
		n, err := s.ReadPiece(i, buf)
		if err != nil {
			t.Fatalf("ReadPiece(%d): %v", i, err)
		}
		if string(buf[:n]) != string(tt.piece(i)) {
			t.Fatalf("piece %d: data differs from payload", i)
		}
	}
}
