package cache

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/enginetest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestFilesLayoutLibtorrentSeeds writes a torrent libtorrent made (hybrid,
// with BEP 47 pad files between the files) into an empty directory with
// the Files layout, then has libtorrent check that directory: it must find
// every piece and seed, so the layout is the one libtorrent writes itself.
func TestFilesLayoutLibtorrentSeeds(t *testing.T) {
	enginetest.RequireLibtorrent(t)
	rng := rand.New(rand.NewPCG(83, 84))
	src := t.TempDir()
	tree := makeTree(t, rng, src, "tree")
	torrentPath := filepath.Join(t.TempDir(), "lt.torrent")
	script := `
import sys, libtorrent as lt
fs = lt.file_storage()
lt.add_files(fs, sys.argv[1])
ct = lt.create_torrent(fs, 16384)
lt.set_piece_hashes(ct, sys.argv[2])
open(sys.argv[3], "wb").write(lt.bencode(ct.generate()))
`
	if out, err := exec.Command(enginetest.Python, "-c", script, tree, src, torrentPath).CombinedOutput(); err != nil {
		t.Fatalf("libtorrent create_torrent: %v\n%s", err, out)
	}
	mi, err := metainfo.LoadFile(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Info.TotalLength == lastEnd(mi.Info) {
		t.Fatal("libtorrent made no pad files: the test would not check them")
	}
	tt := torrentOfTree(t, mi, tree)
	out := t.TempDir()
	s := openFilesT(t, t.TempDir(), out, tt, Config{})
	writeMixed(t, rng, s, tt)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sameTrees(t, tree, filepath.Join(out, "tree"))
	lt := enginetest.StartLibtorrent(t, enginetest.LTOptions{IP: "127.0.13.2", Torrent: torrentPath, SavePath: out, Timeout: 2 * time.Minute})
	lt.WaitSeeding(t, time.Minute)
	lt.Kill()
	<-lt.Exited()
	if _, err := os.Stat(filepath.Join(out, "tree", ".pad")); err == nil {
		t.Fatal("pad files appeared")
	}
}

// lastEnd returns where the last listed file ends: less than TotalLength
// when pad bytes sit between the files (none follow the last one).
func lastEnd(info *metainfo.Info) int64 {
	var sum int64
	for _, f := range info.Files {
		sum += f.Length
	}
	return sum
}
