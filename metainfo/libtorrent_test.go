package metainfo

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, the one python3-libtorrent installs
// into (the python3 first on PATH may be another build).
const systemPython = "/usr/bin/python3"

// needLibtorrent skips the test when libtorrent's Python binding is missing.
func needLibtorrent(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, systemPython, "-c", "import libtorrent").Run(); err != nil {
		t.Skipf("%s cannot import libtorrent (install the Debian package python3-libtorrent): %v", systemPython, err)
	}
}

// runPython runs a Python program with arguments under a deadline and
// returns its stdout.
func runPython(t *testing.T, timeout time.Duration, prog string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, append([]string{"-c", prog}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes()
}

// describePy prints, as JSON, what libtorrent makes of each .torrent given.
const describePy = `
import json, sys
import libtorrent as lt
res = {}
for path in sys.argv[1:]:
    ti = lt.torrent_info(path)
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        files.append({"path": fs.file_path(i), "size": fs.file_size(i), "offset": fs.file_offset(i)})
    res[path] = {"info_hash": str(ti.info_hashes().v1), "name": ti.name(),
                 "piece_length": ti.piece_length(), "num_pieces": ti.num_pieces(),
                 "total_size": ti.total_size(), "files": files}
json.dump(res, sys.stdout)
`

func TestLibtorrentAgreesOnFixtures(t *testing.T) {
	needLibtorrent(t)
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "good", "*.torrent"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var lt map[string]goldenTorrent
	if err := json.Unmarshal(runPython(t, 60*time.Second, describePy, paths...), &lt); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		mi, err := LoadFile(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		want, ok := lt[p]
		if !ok {
			t.Errorf("%s: libtorrent reported nothing", p)
			continue
		}
		compareSummary(t, filepath.Base(p), summarize(mi), want)
	}
}

// checkPy adds a torrent to a libtorrent session with its data in place,
// waits (with a deadline) for libtorrent to check it, and prints the info
// hash, the pieces it found and the piece count.
const checkPy = `
import json, sys, time
import libtorrent as lt
torrent, save_path = sys.argv[1], sys.argv[2]
s = lt.session({'listen_interfaces': '127.0.1.1:0', 'outgoing_interfaces': '127.0.1.1',
                'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False,
                'enable_natpmp': False,
                'alert_mask': lt.alert.category_t.status_notification | lt.alert.category_t.error_notification})
ti = lt.torrent_info(torrent)
h = s.add_torrent({'ti': ti, 'save_path': save_path})
deadline = time.time() + 40
checked = False
while not checked and time.time() < deadline:
    s.wait_for_alert(200)
    for a in s.pop_alerts():
        if isinstance(a, lt.torrent_checked_alert):
            checked = True
st = h.status()
json.dump({"info_hash": str(ti.info_hashes().v1), "num_pieces": st.num_pieces,
           "total": ti.num_pieces(), "state": str(st.state) if checked else "check did not finish", "error": str(st.errc.message()) if st.errc.value() else ""}, sys.stdout)
`

// writeTree creates files (path -> size) under dir with pseudo-random content.
func writeTree(t testing.TB, dir string, files map[string]int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	for _, name := range sortedKeys(files) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, files[name])
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreatedTorrentVerifiesInLibtorrent(t *testing.T) {
	needLibtorrent(t)
	for _, tc := range []struct {
		name  string
		files map[string]int
		pl    int64
	}{
		{"multi", map[string]int{"a.bin": 40000, "empty": 0, "sub/b.bin": 16384, "sub/deep/c.txt": 12345, "z": 1}, 16384},
		{"single", map[string]int{"only.bin": 100001}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "content")
			writeTree(t, root, tc.files, 1)
			src := root
			if tc.name == "single" {
				src = filepath.Join(root, "only.bin")
			}
			mi, err := Create(src, CreateOptions{PieceLength: tc.pl, Trackers: [][]string{{"http://127.0.1.1:1/announce"}}, CreatedBy: "swarmfs test"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := mi.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			tf := filepath.Join(dir, "out.torrent")
			if err := os.WriteFile(tf, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var got struct {
				InfoHash  string `json:"info_hash"`
				NumPieces int    `json:"num_pieces"`
				Total     int    `json:"total"`
				State     string `json:"state"`
				Error     string `json:"error"`
			}
			save := filepath.Dir(src)
			out := runPython(t, 60*time.Second, checkPy, tf, save)
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got.InfoHash != mi.InfoHash.String() {
				t.Errorf("libtorrent info hash %s, ours %s", got.InfoHash, mi.InfoHash)
			}
			if got.Total != mi.Info.NumPieces() || got.NumPieces != got.Total {
				t.Errorf("libtorrent found %d of %d pieces (ours: %d), state %s %s",
					got.NumPieces, got.Total, mi.Info.NumPieces(), got.State, got.Error)
			}
			// A corrupted byte must make libtorrent miss a piece: the check
			// above is not vacuous.
			victim := filepath.Join(root, filepath.FromSlash(sortedKeys(tc.files)[0]))
			data, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(victim, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out = runPython(t, 60*time.Second, checkPy, tf, save)
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got.NumPieces != got.Total-1 {
				t.Errorf("after corrupting one byte libtorrent has %d of %d pieces, want one missing (state %s)",
					got.NumPieces, got.Total, strings.TrimSpace(got.State))
			}
		})
	}
}
