package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/control"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/metainfo"
)

// TestFrontEndsOfAMount starts the front ends the way a mount would (a
// control socket keyed by the mountpoint, no HTTP) over a fake library, and
// drives them with the add, remove and status commands naming the
// mountpoint, also through a relative path.
func TestFrontEndsOfAMount(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	lib := librarytest.NewFake()
	lib.Put(metainfo.Hash{1}, "present", []string{"f"}, [][]byte{[]byte("x")}, nil)
	key, err := control.Key(mp)
	if err != nil {
		t.Fatal(err)
	}
	fe, err := startFrontEnds(context.Background(), livingFlags{}, lib, key, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	if fe.URL != "" || fe.TokenFile != "" {
		t.Errorf("HTTP started though not asked: %q %q", fe.URL, fe.TokenFile)
	}
	code, out, errOut := runCmd(t, "status", mp)
	if code != 0 || !strings.Contains(out, "present: downloading") {
		t.Fatalf("status: exit %d: %s%s", code, out, errOut)
	}
	t.Chdir(filepath.Dir(mp))
	magnet := "magnet:?xt=urn:btih:" + strings.Repeat("ef", 20) + "&dn=a/b"
	code, out, errOut = runCmd(t, "add", "mnt", magnet)
	if code != 0 || out != "added a/b ("+strings.Repeat("ef", 20)+"): mnt/a_b\n" {
		t.Errorf("add through a relative mountpoint: exit %d: %q %s", code, out, errOut)
	}
	if code, out, _ := runCmd(t, "remove", mp, "present"); code != 0 || !strings.HasPrefix(out, "removed present") {
		t.Errorf("remove: exit %d: %s", code, out)
	}
	if len(lib.Removed()) != 1 || len(lib.Torrents()) != 1 {
		t.Errorf("library after remove: %d removed, %d left", len(lib.Removed()), len(lib.Torrents()))
	}
}
