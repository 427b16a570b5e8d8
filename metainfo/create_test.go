package metainfo

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestAutoPieceLength(t *testing.T) {
	const KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
	tests := []struct{ total, want int64 }{
		{1, 16 * KiB},
		{30 * MiB, 16 * KiB},
		{40 * MiB, 32 * KiB},        // transmission: 32 KiB under 50 MiB
		{100 * MiB, 64 * KiB},       // transmission: 64 KiB from 50 MiB
		{400 * MiB, 256 * KiB},      // transmission: 256 KiB from 350 MiB
		{1 * GiB, 1 * MiB},          // transmission: 1 MiB from 1 GiB
		{1 << 50, 16 * MiB},         // capped
		{2000 * 16 * KiB, 16 * KiB}, // exactly 2000 pieces still fits
		{2000*16*KiB + 16*KiB, 32 * KiB},
	}
	for _, tt := range tests {
		if got := AutoPieceLength(tt.total); got != tt.want {
			t.Errorf("AutoPieceLength(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
}

// referenceHashes hashes the concatenation of files in order, one piece at a
// time, on one goroutine: the obvious implementation Create must agree with.
func referenceHashes(t *testing.T, root string, paths []string, pl int64) []Hash {
	t.Helper()
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	var out []Hash
	for off := 0; off < len(all); off += int(pl) {
		out = append(out, sha1.Sum(all[off:min(len(all), off+int(pl))]))
	}
	return out
}

func TestCreateDirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "content")
	files := map[string]int{"b.bin": 20000, "a.txt": 5, "a/x": 16384, "a/y/z": 1, "empty": 0, "c": 70001}
	writeTree(t, root, files, 2)
	// Sorted by path components: "a/..." before "a.txt".
	// A symlink to a regular file is followed.
	order := []string{"a/x", "a/y/z", "a.txt", "b.bin", "c", "d-link", "empty"}
	if err := os.Symlink(filepath.Join(root, "c"), filepath.Join(root, "d-link")); err != nil {
		t.Fatal(err)
	}

	for _, workers := range []int{1, 3, 0} {
		mi, err := Create(root, CreateOptions{
			PieceLength: 16384, Trackers: [][]string{{"http://a/", "http://b/"}, {"udp://c:1"}},
			WebSeeds: []string{"http://w/"}, Private: true, Comment: "c", CreatedBy: "me", NoDate: true, Workers: workers,
		})
		if err != nil {
			t.Fatal(err)
		}
		in := mi.Info
		var got []string
		for _, f := range in.Files {
			got = append(got, f.DisplayPath())
		}
		if !reflect.DeepEqual(got, order) {
			t.Fatalf("files %q, want %q", got, order)
		}
		if !reflect.DeepEqual(in.Pieces, referenceHashes(t, root, order, 16384)) {
			t.Fatalf("workers=%d: piece hashes differ from the reference", workers)
		}
		if in.Name != "content" || !in.Private || in.SingleFile || mi.Comment != "c" || mi.CreatedBy != "me" ||
			!mi.CreationDate.IsZero() || len(mi.Trackers()) != 2 || mi.WebSeeds[0] != "http://w/" {
			t.Fatalf("metadata: %+v", mi)
		}
	}
}

func TestCreateSingleFileAndDeterminism(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]int{"f.bin": 123457}, 3)
	p := filepath.Join(dir, "f.bin")
	a, err := Create(p, CreateOptions{NoDate: true, Name: "renamed.bin"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(p, CreateOptions{NoDate: true, Name: "renamed.bin", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := a.Bytes()
	bb, _ := b.Bytes()
	if !bytes.Equal(ab, bb) {
		t.Fatal("same input, different torrents")
	}
	if !a.Info.SingleFile || a.Info.Name != "renamed.bin" || a.Info.PieceLength != 16384 || a.Info.NumPieces() != 8 {
		t.Fatalf("single file info: %+v", a.Info)
	}
	if !reflect.DeepEqual(a.Info.Pieces, referenceHashes(t, dir, []string{"f.bin"}, 16384)) {
		t.Fatal("piece hashes differ from the reference")
	}
	c, err := Create(p, CreateOptions{})
	if err != nil || c.CreationDate.IsZero() {
		t.Fatalf("default options: date %v, %v", c.CreationDate, err)
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]int{"ok/f": 10, "empty/e": 0}, 4)
	fifoDir := filepath.Join(dir, "fifo")
	if err := os.Mkdir(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, fifoDir, map[string]int{"f": 10}, 5)
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	writeTree(t, dangling, map[string]int{"f": 10}, 6)
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dangling, "link")); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(dir, "dirlink")
	writeTree(t, dirLink, map[string]int{"f": 10}, 7)
	if err := os.Symlink(filepath.Join(dir, "ok"), filepath.Join(dirLink, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		opts CreateOptions
		want string
	}{
		{filepath.Join(dir, "missing"), CreateOptions{}, "no such file"},
		{filepath.Join(dir, "empty"), CreateOptions{}, "no content"},
		{fifoDir, CreateOptions{}, "not a regular file"},
		{dangling, CreateOptions{}, "no such file"},
		{dirLink, CreateOptions{}, "not a regular file"},
		{filepath.Join(dir, "ok"), CreateOptions{PieceLength: 1000}, "power of two"},
		{filepath.Join(dir, "ok"), CreateOptions{PieceLength: 8192}, "power of two"},
		{filepath.Join(dir, "ok"), CreateOptions{Name: "../x"}, "name"},
	}
	for _, tt := range tests {
		_, err := Create(tt.path, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Create(%s, %+v) = %v, want an error containing %q", tt.path, tt.opts, err, tt.want)
		}
	}
}

func TestCreateContextCancelled(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]int{"f": 100000}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := CreateContext(ctx, dir, CreateOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled create: %v", err)
	}
}
