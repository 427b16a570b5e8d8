package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func getxattr(t *testing.T, path, name string) string {
	t.Helper()
	var v string
	within(t, 10*time.Second, "getxattr", func() error {
		n, err := unix.Getxattr(path, name, nil)
		if err != nil {
			return fmt.Errorf("getxattr %s %s: %v", path, name, err)
		}
		buf := make([]byte, n)
		n, err = unix.Getxattr(path, name, buf)
		if err != nil {
			return fmt.Errorf("getxattr %s %s: %v", path, name, err)
		}
		v = string(buf[:n])
		return nil
	})
	return v
}

func TestMagnetFills(t *testing.T) {
	ft := multiFake("pending", fakeOptions{magnet: true})
	_, dir := mountT(t, []Torrent{ft}, Options{})
	var ents []os.DirEntry
	within(t, 10*time.Second, "ReadDir", func() error {
		var err error
		if ents, err = os.ReadDir(filepath.Join(dir, "pending")); err != nil {
			return err
		}
		return nil
	})
	if len(ents) != 0 {
		t.Fatalf("magnet directory holds %d entries before metadata", len(ents))
	}
	if v := getxattr(t, filepath.Join(dir, "pending"), XattrStatus); v != "fetching metadata (0 peers)" {
		t.Errorf("status before metadata: %q", v)
	}
	ft.setInfo()
	eventually(t, 10*time.Second, "the directory to fill", func() bool {
		_, err := os.Stat(filepath.Join(dir, "pending", "sub", "deeper", "c.bin"))
		return err == nil
	})
	got, err := os.ReadFile(filepath.Join(dir, "pending", "sub", "b.bin"))
	if err != nil || !bytes.Equal(got, fileData(ft, 1)) {
		t.Errorf("reading a file of the filled directory: %v", err)
	}
	ents, _ = os.ReadDir(filepath.Join(dir, "pending"))
	if len(ents) != 4 {
		t.Errorf("filled directory holds %d entries, want 4", len(ents))
	}
}

func TestMagnetAmongSeveral(t *testing.T) {
	m := newFake("solo.bin", []fakeFile{{path: []string{"solo.bin"}, data: randomBytes(9, 10_000)}}, fakeOptions{magnet: true, single: true})
	other := contentFake(fakeOptions{})
	_, dir := mountT(t, []Torrent{m, other}, Options{})
	if _, err := os.Stat(filepath.Join(dir, "solo.bin")); err != nil {
		t.Fatal(err)
	}
	m.setInfo()
	eventually(t, 10*time.Second, "the directory to fill", func() bool {
		fi, err := os.Stat(filepath.Join(dir, "solo.bin", "solo.bin"))
		return err == nil && fi.Size() == 10_000
	})
}

func TestXattrs(t *testing.T) {
	// 10 pieces of 1000 bytes; files: a = [0,2500), b = [2500,10000).
	ft := newFake("x", []fakeFile{
		{path: []string{"a"}, data: randomBytes(1, 2500)},
		{path: []string{"b"}, data: randomBytes(2, 7500)},
	}, fakeOptions{pieceLength: 1000, gated: true})
	ft.release(0, 2, 9)
	_, dir := mountT(t, []Torrent{ft}, Options{})
	a, b, top := filepath.Join(dir, "x", "a"), filepath.Join(dir, "x", "b"), filepath.Join(dir, "x")
	want := map[string]map[string]string{
		a:   {XattrInfoHash: ft.hash.String(), XattrProgress: "1500/2500", XattrPieces: "#.#", XattrStatus: "downloading"},
		b:   {XattrProgress: "1500/7500", XattrPieces: "#......#"},
		top: {XattrProgress: "3000/10000", XattrPieces: "#.#......#"},
		dir: {XattrInfoHash: ft.hash.String(), XattrProgress: "3000/10000"},
	}
	for path, attrs := range want {
		for name, v := range attrs {
			if got := getxattr(t, path, name); got != v {
				t.Errorf("%s %s = %q, want %q", path, name, got, v)
			}
		}
		buf := make([]byte, 1024)
		n, err := unix.Listxattr(path, buf)
		if err != nil {
			t.Fatal(err)
		}
		list := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
		if strings.Join(list, ",") != strings.Join(xattrNames, ",") {
			t.Errorf("listxattr %s: %q", path, list)
		}
	}
	if _, err := unix.Getxattr(a, "user.other", make([]byte, 10)); err != unix.ENODATA {
		t.Errorf("unknown attribute: %v, want ENODATA", err)
	}
	if _, err := unix.Getxattr(a, XattrInfoHash, make([]byte, 3)); err != unix.ERANGE {
		t.Errorf("small buffer: %v, want ERANGE", err)
	}
	ft.release(1)
	if got := getxattr(t, a, XattrProgress); got != "2500/2500" {
		t.Errorf("progress after a release: %q", got)
	}
	if _, err := exec.LookPath("getfattr"); err != nil {
		t.Skip("getfattr not installed (Debian package attr)")
	}
	out := run(t, 10*time.Second, "getfattr", "-d", a)
	for _, line := range []string{
		XattrInfoHash + `="` + ft.hash.String() + `"`,
		XattrProgress + `="2500/2500"`,
		XattrPieces + `="###"`,
		XattrStatus + `="downloading"`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("getfattr -d lacks %s:\n%s", line, out)
		}
	}
}

func TestPieceMap(t *testing.T) {
	if got := pieceMap([]bool{true, false, true}, 0, 5); got != "#.#.." {
		t.Errorf("short map: %q", got)
	}
	n := maxPieceMap*2 + 3
	pieces := make([]bool, n)
	for i := range pieces {
		pieces[i] = i < 6 || i == 9
	}
	got := pieceMap(pieces, 0, n)
	if len(got) > maxPieceMap {
		t.Fatalf("map of %d pieces is %d long", n, len(got))
	}
	if !strings.HasPrefix(got, "##.+.") || strings.Count(got, "#") != 2 || strings.Count(got, "+") != 1 {
		t.Errorf("grouped map starts %q (%d '#', %d '+')", got[:8], strings.Count(got, "#"), strings.Count(got, "+"))
	}
	if progress(5, 10) != "5/10" || strconv.Itoa(len(pieceMap(nil, 3, 3))) != "0" {
		t.Errorf("progress/empty map")
	}
}

func TestTranslate(t *testing.T) {
	bg := context.Background()
	interrupted, cancel := context.WithCancel(bg)
	cancel()
	timedOut, cancel2 := context.WithTimeoutCause(bg, 0, ErrReadTimeout)
	defer cancel2()
	unmounted, cancel3 := context.WithCancelCause(bg)
	cancel3(ErrUnmounted)
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want syscall.Errno
	}{
		{bg, nil, 0},
		{bg, io.EOF, 0},
		{bg, fmt.Errorf("engine: piece 3: %w", io.EOF), 0},
		{interrupted, fmt.Errorf("engine: no peers: %w", context.Canceled), syscall.EINTR},
		{timedOut, fmt.Errorf("engine: piece 3 unavailable: %w", context.DeadlineExceeded), syscall.EIO},
		{unmounted, fmt.Errorf("engine: %w", context.Canceled), syscall.EIO},
		{bg, fmt.Errorf("engine: own deadline: %w", context.DeadlineExceeded), syscall.EIO},
		{bg, fmt.Errorf("cache: %w", syscall.ENOSPC), syscall.ENOSPC},
		{bg, errors.New("engine: closed"), syscall.EIO},
	} {
		if got := translate(tc.ctx, tc.err); got != tc.want {
			t.Errorf("translate(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
