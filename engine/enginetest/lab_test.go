package enginetest

import (
	"crypto/sha1"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLabTools checks the helpers against the real tools: opentracker
// accepts a whitelisted hash, a libtorrent seeder reaches the seeding state,
// and a libtorrent leecher downloads from it with correct data.
func TestLabTools(t *testing.T) {
	RequireLibtorrent(t)
	c := MakeContent(t, "lab", 32<<10, []FileSpec{{Path: "a.bin", Size: 300_000}, {Path: "d/b.bin", Size: 70_000}})
	tr := StartOpentracker(t, "127.0.7.40", c.Meta.InfoHash.String())
	if tr.HTTP == "" || tr.UDP == "" {
		t.Fatal("no tracker URLs")
	}
	seed := StartSeeder(t, "127.0.7.41", c.Torrent, c.Dir)
	dst := t.TempDir()
	leech := StartLibtorrent(t, LTOptions{IP: "127.0.7.42", Torrent: c.Torrent, SavePath: dst, Peers: []string{seed.Addr}, ExitWhenDone: true})
	if _, _, err := leech.WaitDone(t.Context()); err != nil {
		t.Fatal(err)
	}
	for rel, src := range c.Files {
		want, _ := os.ReadFile(src)
		got, err := os.ReadFile(filepath.Join(dst, "lab", filepath.FromSlash(rel)))
		if err != nil || sha1.Sum(got) != sha1.Sum(want) {
			t.Errorf("%s: leecher's copy differs (%v)", rel, err)
		}
	}
	select {
	case <-leech.Exited():
	case <-time.After(30 * time.Second):
		t.Error("leecher did not exit when done")
	}
}
