package enginetest

import (
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/metainfo"
)

// PaddedContent is a generated multi-file torrent with BEP 47 pad files,
// for web seed tests: Dir is what a web server serves (Dir/Name/PATH...),
// Data the torrent's bytes in order (pad bytes included), Files the
// non-pad files' paths and contents.
type PaddedContent struct {
	Dir, Name string
	Meta      *metainfo.MetaInfo
	Torrent   string
	Data      []byte
	Files     map[string][]byte
}

// AwkwardFiles are file sizes and names that need percent-encoding in
// URLs, for MakePaddedContent, in units of the piece length pl.
func AwkwardFiles(pl int64) []FileSpec {
	return []FileSpec{
		{Path: "dir one/a b.bin", Size: 3*pl + 1234},
		{Path: "hash#tag.bin", Size: pl / 3},
		{Path: "100%.bin", Size: 2*pl - 7},
		{Path: "ünïcödé/файл 文件.bin", Size: 5000},
		{Path: "q?mark&amp;=+;,:@!$'().bin", Size: pl},
		{Path: "empty.bin", Size: 0},
		{Path: "tail", Size: 777},
	}
}

// MakePaddedContent writes files (Size pseudo-random bytes each, seeded
// by seed) below a temporary directory, puts a pad file after each file
// but the last so that every file starts on a piece boundary, and writes
// a torrent (name, piece length pl, url-list webSeeds) beside them.
// metainfo.Create makes no pad files, so the info is built here.
func MakePaddedContent(t testing.TB, name string, pl int64, files []FileSpec, seed uint64, webSeeds ...string) *PaddedContent {
	t.Helper()
	c := &PaddedContent{Dir: t.TempDir(), Name: name, Files: map[string][]byte{}}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type entry struct {
		Attr   string   `bencode:"attr,omitempty"`
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	var entries []entry
	for i, f := range files {
		data := make([]byte, f.Size)
		for k := range data {
			data[k] = byte(rng.Uint32())
		}
		p := filepath.Join(c.Dir, name, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c.Files[f.Path] = data
		c.Data = append(c.Data, data...)
		entries = append(entries, entry{Length: f.Size, Path: strings.Split(f.Path, "/")})
		if rem := int64(len(c.Data)) % pl; rem != 0 && i < len(files)-1 {
			pad := pl - rem
			c.Data = append(c.Data, make([]byte, pad)...)
			entries = append(entries, entry{Attr: "p", Length: pad, Path: []string{".pad", strconv.FormatInt(pad, 10)}})
		}
	}
	var pieces []byte
	for off := int64(0); off < int64(len(c.Data)); off += pl {
		h := sha1.Sum(c.Data[off:min(off+pl, int64(len(c.Data)))])
		pieces = append(pieces, h[:]...)
	}
	type info struct {
		Files       []entry `bencode:"files"`
		Name        string  `bencode:"name"`
		PieceLength int64   `bencode:"piece length"`
		Pieces      []byte  `bencode:"pieces"`
	}
	raw, err := metainfo.Marshal(struct {
		Info    info     `bencode:"info"`
		URLList []string `bencode:"url-list,omitempty"`
	}{info{entries, name, pl, pieces}, webSeeds})
	if err != nil {
		t.Fatal(err)
	}
	c.Torrent = filepath.Join(t.TempDir(), "padded.torrent")
	if err := os.WriteFile(c.Torrent, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if c.Meta, err = metainfo.LoadFile(c.Torrent); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartNginx serves root over HTTP/1.1 on a free loopback port with a
// generated config (nginx-light, run by the test, killed at its end) and
// returns the base URL, ending in "/". It skips the test when nginx is
// not installed.
func StartNginx(t testing.TB, root string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // not on PATH for users without sbin
		if _, err := os.Stat(bin); err != nil {
			t.Skip("enginetest: nginx not found (apt-get install nginx-light)")
		}
	}
	prefix := t.TempDir()
	for _, d := range []string{"logs", "tmp"} {
		if err := os.Mkdir(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Workers run as an unprivileged user when nginx starts as root; they
	// must be able to read the temporary directories.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t, "127.0.0.1")))
	conf := fmt.Sprintf(`%s
worker_processes 1;
error_log %[2]s/logs/error.log warn;
pid %[2]s/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {
        listen %[3]s;
        root %[4]s;
    }
}
`, user, prefix, addr, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	Start(t, bin, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "logs", "error.log"), "-g", "daemon off;")
	WaitPort(t, addr, 20*time.Second)
	return "http://" + addr + "/"
}
