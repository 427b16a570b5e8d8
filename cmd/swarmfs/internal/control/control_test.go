package control

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library/librarytest"
	"github.com/swarmfs/swarmfs/metainfo"
)

func start(t *testing.T, lib library.Library) (*Server, string) {
	t.Helper()
	path := SocketPath(filepath.Join(t.TempDir(), "run"), "/some/mountpoint")
	s, err := Listen(path, lib, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAddRemoveStatus(t *testing.T) {
	lib := librarytest.NewFake()
	_, path := start(t, lib)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v, %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v", di.Mode().Perm())
	}
	c := dial(t, path)

	tb := librarytest.MakeTorrent(t, "album", map[string]int{"a.flac": 1000, "b.txt": 3})
	got, err := c.Add(ctx(t), "album.torrent", tb)
	if err != nil || got.Name != "album" || got.Files.Len() != 2 || !got.Ready {
		t.Fatalf("add: %+v, %v", got, err)
	}
	mag := "magnet:?xt=urn:btih:" + metainfo.Hash{5}.String() + "&dn=mag"
	if got, err := c.Add(ctx(t), "link", []byte(mag)); err != nil || got.Name != "mag" || got.Ready {
		t.Fatalf("add magnet: %+v, %v", got, err)
	}
	if _, err := c.Add(ctx(t), "album.torrent", tb); !errors.Is(err, library.ErrExists) || !strings.Contains(err.Error(), "album.torrent") {
		t.Errorf("second add: %v, want ErrExists naming the source", err)
	}
	if _, err := c.Add(ctx(t), "junk", []byte("not a torrent")); !errors.Is(err, library.ErrBadSource) {
		t.Errorf("junk add: %v, want ErrBadSource", err)
	}

	ts, err := c.Status(ctx(t))
	if err != nil || len(ts) != 2 || ts[0].Name != "album" || ts[0].Files.At(0).Size != 1000 || ts[0].Stats.PiecesTotal != 4 {
		t.Fatalf("status: %+v, %v", ts, err)
	}

	// Remove by name and by info hash.
	if got, err := c.Remove(ctx(t), "album", true); err != nil || got.InfoHash != ts[0].InfoHash {
		t.Errorf("remove by name: %+v, %v", got, err)
	}
	if _, err := c.Remove(ctx(t), metainfo.Hash{5}.String(), false); err != nil {
		t.Errorf("remove by hash: %v", err)
	}
	if _, err := c.Remove(ctx(t), "album", false); !errors.Is(err, library.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if ts, err := c.Status(ctx(t)); err != nil || len(ts) != 0 {
		t.Errorf("status after removes: %+v, %v", ts, err)
	}
}

func TestAmbiguousName(t *testing.T) {
	lib := librarytest.NewFake()
	lib.Put(metainfo.Hash{1}, "same", nil, nil, nil)
	lib.Put(metainfo.Hash{2}, "same", nil, nil, nil)
	_, path := start(t, lib)
	if _, err := dial(t, path).Remove(ctx(t), "same", false); !errors.Is(err, library.ErrAmbiguous) {
		t.Errorf("remove of a shared name: %v", err)
	}
	if len(lib.Removed()) != 0 {
		t.Error("an ambiguous remove removed something")
	}
}

// TestRefusesOtherUsers checks the SO_PEERCRED test: a server that serves
// only another uid than this process's closes our connection unanswered.
func TestRefusesOtherUsers(t *testing.T) {
	lib := librarytest.NewFake()
	s, path := start(t, lib)
	s.uid.Store(int64(os.Getuid()) + 1)
	if _, err := dial(t, path).Status(ctx(t)); err == nil {
		t.Fatal("a connection of another user got an answer")
	}
	s.uid.Store(int64(os.Getuid()))
	if _, err := dial(t, path).Status(ctx(t)); err != nil {
		t.Fatalf("own user refused: %v", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	_, path := start(t, librarytest.NewFake())
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for _, line := range []string{`nonsense`, `{"op":"fly"}`, `{"op":"add"}`, `{"op":"remove"}`, `{"op":"status","extra":1}`, `{"op":"status"} {}`} {
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := br.ReadString('\n')
		if err != nil || !strings.Contains(resp, "protocol error") {
			t.Errorf("%s: answer %q, %v", line, resp, err)
		}
	}
	// The connection still works after bad requests.
	if _, err := conn.Write([]byte(`{"op":"status"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := br.ReadString('\n'); err != nil || strings.Contains(resp, "error") {
		t.Errorf("status after errors: %q, %v", resp, err)
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	lib := librarytest.NewFake()
	s, path := start(t, lib)
	if _, err := Listen(path, lib, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second server on a live socket: %v", err)
	}
	s.Close()
	// A socket file left behind by a dead server is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s2, err := Listen(path, lib, nil)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer s2.Close()
	if _, err := dial(t, path).Status(ctx(t)); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := Dial(ctx(t), path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dial after close: %v, want ErrNotExist", err)
	}
}

func TestLongSocketPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "x.sock")
	if _, err := Listen(path, librarytest.NewFake(), nil); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
		t.Fatalf("Listen on a %d-byte path: %v", len(path), err)
	}
}

func TestPaths(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/7")
	if d := Dir("/c"); d != "/run/user/7/swarmfs" {
		t.Errorf("Dir = %s", d)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if d := Dir("/c"); d != "/c/run" {
		t.Errorf("Dir without XDG_RUNTIME_DIR = %s", d)
	}
	a, _ := Key("/mnt/t/")
	b, _ := Key("/mnt/x/../t")
	u, _ := Key("http://127.0.0.1:8080/")
	if a != "/mnt/t" || a != b || u != "http://127.0.0.1:8080" {
		t.Errorf("keys %q %q %q", a, b, u)
	}
	if p := SocketPath("/d", a); len(filepath.Base(p)) != 21 || p == SocketPath("/d", u) {
		t.Errorf("socket path %s", p)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"op":"status"}`, `{"op":"add","source":"bWFnbmV0Og==","name":"x"}`, `{"op":"remove","target":"a","purge":true}`, `{"op":"rates"}`, `{"op":"rates","rates":{"up":1,"down":-2}}`, `{"op":1}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseRequest(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error does not wrap ErrProtocol: %v", err)
			}
			return
		}
		switch req.Op {
		case OpAdd:
			if len(req.Source) == 0 {
				t.Fatal("add without source accepted")
			}
		case OpRemove:
			if req.Target == "" {
				t.Fatal("remove without target accepted")
			}
		case OpStatus:
		case OpRates:
			if r := req.Rates; r != nil && (r.Up < 0 || r.Down < 0) {
				t.Fatal("negative rates accepted")
			}
		default:
			t.Fatalf("op %q accepted", req.Op)
		}
	})
}

// rateLib is a fake library with rate limits.
type rateLib struct {
	*librarytest.Fake
	r library.RateLimits
}

func (l *rateLib) RateLimits() library.RateLimits { return l.r }
func (l *rateLib) SetRateLimits(r library.RateLimits) error {
	l.r = r
	return nil
}

func TestRates(t *testing.T) {
	_, path := start(t, librarytest.NewFake())
	if _, err := dial(t, path).Rates(ctx(t), nil); !errors.Is(err, library.ErrNoRates) {
		t.Errorf("rates of a library without them: %v", err)
	}
	lib := &rateLib{Fake: librarytest.NewFake(), r: library.RateLimits{Up: 5}}
	_, path = start(t, lib)
	c := dial(t, path)
	if r, err := c.Rates(ctx(t), nil); err != nil || r != (library.RateLimits{Up: 5}) {
		t.Errorf("rates: %+v, %v", r, err)
	}
	if r, err := c.Rates(ctx(t), &library.RateLimits{Up: 1 << 20, Down: 7}); err != nil || r != (library.RateLimits{Up: 1 << 20, Down: 7}) || lib.r != r {
		t.Errorf("set rates: %+v, %v (library has %+v)", r, err, lib.r)
	}
	if _, err := c.Rates(ctx(t), &library.RateLimits{Up: -1}); err == nil {
		t.Errorf("negative rate: %v", err)
	}
}
