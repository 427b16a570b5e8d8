// Package enginetest starts real BitTorrent software for tests: libtorrent
// seeders and leechers (through /usr/bin/python3), opentracker, aria2 and
// transmission (whose announces pass through a relay, see announceRelay).
// Every process is started by the test, killed in t.Cleanup, and every wait
// on it is bounded. A helper skips the test only when its tool is missing,
// naming the Debian package to install.
package enginetest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Python is the interpreter that has the libtorrent module on this machine.
const Python = "/usr/bin/python3"

//go:embed lt.py
var ltScript []byte

var (
	ltOnce sync.Once
	ltErr  error
)

// RequireLibtorrent skips t unless /usr/bin/python3 can import libtorrent.
func RequireLibtorrent(t testing.TB) {
	t.Helper()
	ltOnce.Do(func() {
		out, err := exec.Command(Python, "-c", "import libtorrent").CombinedOutput()
		if err != nil {
			ltErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if ltErr != nil {
		t.Skipf("libtorrent not available (apt-get install python3-libtorrent): %v", ltErr)
	}
}

// RequireTool skips t unless the named executable is on PATH.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (apt-get install %s)", name, debianPackage)
	}
	return p
}

// Proc is an external process started by a test. Lines it prints on stdout
// arrive on Lines; stderr is kept for failure messages.
type Proc struct {
	Name  string
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	log   []string // every stdout and stderr line, for diagnostics
	done  chan struct{}
}

// Start runs name with args, kills it in t.Cleanup and returns its handle.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return start(t, false, name, args...)
}

// start runs a process for Start, or with status set for programs that
// redraw a status line with carriage returns (transmission-cli): then
// stdout and stderr both feed Lines, "\r" ends a line too, blanks around a
// line are trimmed, and a line equal to the previous one is dropped, so
// that each change shows once.
func start(t testing.TB, status bool, name string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	type source struct {
		r       io.ReadCloser
		toLines bool
	}
	var sources []source
	var shared *os.File // write end of the status pipe, closed once started
	if status {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr, shared = pw, pw, pw
		sources = []source{{pr, true}}
	} else {
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		sources = []source{{stdout, true}, {stderr, false}}
	}
	p := &Proc{Name: filepath.Base(name), cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{})}
	err := cmd.Start()
	if shared != nil {
		shared.Close()
	}
	if err != nil {
		for _, src := range sources {
			src.r.Close()
		}
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status {
				defer src.r.Close() // our os.Pipe; cmd.Wait closes the others
			}
			p.pump(src.r, src.toLines, status)
		}()
	}
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, cmd.Process.Pid)
		}
	})
	return p
}

// pump reads r line by line into the log and, with toLines, onto Lines
// (see start for status).
func (p *Proc) pump(r io.Reader, toLines, status bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	if status {
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
				return i + 1, data[:i], nil
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
	}
	var prev string
	for sc.Scan() {
		line := sc.Text()
		if status {
			if line = strings.TrimSpace(line); line == "" || line == prev {
				continue
			}
			prev = line
		}
		p.mu.Lock()
		if len(p.log) < 2000 {
			p.log = append(p.log, line)
		}
		p.mu.Unlock()
		if toLines {
			select {
			case p.lines <- line:
			default: // nobody is reading progress; keep going
			}
		}
	}
	_, _ = io.Copy(io.Discard, r) // after an over-long line, keep the pipe flowing
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL to the process group it leads (the PID we started).
func (p *Proc) Kill() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// ExitCode returns the exit code of a process that has exited (see
// Exited), -1 while it runs or when a signal ended it.
func (p *Proc) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Exited is closed when the process has exited and its output is drained.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Output returns what the process printed so far (stdout and stderr).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// WaitLine waits until the process prints a line starting with prefix and
// returns the rest of that line. It fails the test at the deadline or if the
// process exits first.
func (p *Proc) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	s, err := p.AwaitLine(prefix, timeout)
	if err != nil {
		t.Fatalf("%s: %v\noutput:\n%s", p.Name, err, p.Output())
	}
	return s
}

// AwaitLine is WaitLine returning an error instead of failing the test.
func (p *Proc) AwaitLine(prefix string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return "", fmt.Errorf("exited before printing %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(line, prefix)), nil
			}
			if strings.HasPrefix(line, "error ") {
				return "", fmt.Errorf("reported %s", line)
			}
		case <-timer.C:
			return "", fmt.Errorf("no %q line within %v", prefix, timeout)
		}
	}
}

// LTOptions configures a libtorrent session started by StartLibtorrent.
type LTOptions struct {
	IP       string   // loopback address to bind and leave from, e.g. "127.0.7.2"
	Port     int      // 0 picks one
	Torrent  string   // .torrent path (or Magnet)
	Magnet   string   // magnet URI when Torrent is empty
	SavePath string   // data directory
	Peers    []string // "host:port" peers to connect to at start
	DHT      bool
	// DHTBootstrap is a comma-separated host:port list for libtorrent's DHT.
	DHTBootstrap string
	// SeedMode skips libtorrent's check of existing data (faster, trusts it).
	SeedMode bool
	// UploadMode adds the torrent in libtorrent's upload mode: it requests
	// no piece (a peer that only relays, e.g. for hole punching).
	UploadMode bool
	// NoPEX starts the session without libtorrent's default plugins
	// (ut_pex, ut_metadata, smart_ban): it learns no peers from others.
	NoPEX bool
	// Progress makes the driver print progress lines every 50 ms.
	Progress bool
	// ExitWhenDone makes the driver exit once the download finished.
	ExitWhenDone bool
	Timeout      time.Duration // driver's own lifetime cap; 0 = 10 minutes
	// Settings are libtorrent settings applied over the driver's own
	// (e.g. LTUTPOnly).
	Settings map[string]any
	// PeerLog makes the driver print a line "peer HOST PORT utp|tcp
	// punched|direct in|out" once per peer endpoint whose handshake
	// completed (see ParseLTPeerLine).
	PeerLog bool
	// CapLocalPeers puts every address in libtorrent's global peer class,
	// so that upload_rate_limit in Settings applies to private and
	// loopback addresses too (by default they are in the unlimited local
	// class).
	CapLocalPeers bool
}

// LTUTPOnly are the settings of a libtorrent peer that speaks uTP only,
// outgoing and incoming.
var LTUTPOnly = map[string]any{
	"enable_outgoing_tcp": false, "enable_incoming_tcp": false,
	"enable_outgoing_utp": true, "enable_incoming_utp": true,
}

// LT is a running libtorrent session.
type LT struct {
	*Proc
	// Addr is the session's listen address "ip:port".
	Addr string
	// uploadFile is where the driver keeps its payload upload counter.
	uploadFile string
}

// Uploaded returns the payload bytes the session has uploaded, as its
// driver last wrote them (every 50 ms while downloading, 200 ms after).
func (l *LT) Uploaded(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(l.uploadFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("libtorrent upload counter %q: %v", b, err)
	}
	return n
}

// StartLibtorrent starts a libtorrent session and waits until it listens.
func StartLibtorrent(t testing.TB, o LTOptions) *LT {
	t.Helper()
	RequireLibtorrent(t)
	tmp := t.TempDir()
	script := filepath.Join(tmp, "lt.py")
	uploadFile := filepath.Join(tmp, "uploaded")
	if err := os.WriteFile(script, ltScript, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	cfg := map[string]any{
		"ip": o.IP, "port": o.Port, "torrent": o.Torrent, "magnet": o.Magnet,
		"save_path": o.SavePath, "peers": o.Peers, "dht": o.DHT,
		"dht_bootstrap": o.DHTBootstrap, "seed_mode": o.SeedMode, "upload_mode": o.UploadMode, "no_pex": o.NoPEX,
		"progress": o.Progress, "exit_when_done": o.ExitWhenDone,
		"timeout": o.Timeout.Seconds(), "settings": o.Settings, "upload_file": uploadFile,
		"peer_log": o.PeerLog, "cap_local_peers": o.CapLocalPeers,
	}
	js, _ := json.Marshal(cfg)
	p := Start(t, Python, script, string(js))
	port := p.WaitLine(t, "listening ", 30*time.Second)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("libtorrent printed a bad port %q", port)
	}
	return &LT{Proc: p, Addr: net.JoinHostPort(o.IP, port), uploadFile: uploadFile}
}

// StartSeeder starts a libtorrent seeder for torrent over the data in dir
// and waits (up to two minutes) until libtorrent has checked the data and
// is seeding.
func StartSeeder(t testing.TB, ip, torrent, dir string) *LT {
	t.Helper()
	lt := StartLibtorrent(t, LTOptions{IP: ip, Torrent: torrent, SavePath: dir})
	lt.WaitSeeding(t, 2*time.Minute)
	return lt
}

// WaitSeeding waits until the session reports the seeding state.
func (l *LT) WaitSeeding(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := l.WaitLine(t, "state ", time.Until(deadline))
		if st == "seeding" {
			return
		}
	}
}

// WaitDone waits until the session finished downloading and returns the
// seconds it took and its average rate in bytes per second.
func (l *LT) WaitDone(ctx context.Context) (seconds, rate float64, err error) {
	timeout := 10 * time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	s, err := l.AwaitLine("done ", timeout)
	if err != nil {
		return 0, 0, fmt.Errorf("libtorrent: %w\n%s", err, l.Output())
	}
	_, err = fmt.Sscanf(s, "%f %f", &seconds, &rate)
	return seconds, rate, err
}

// FreePort returns a TCP and UDP port that is free on ip, and on every
// address, right now. It is drawn from below the kernel's ephemeral range
// (32768-60999 by default): a port the kernel handed out could be taken
// again by some test's outgoing connection before the caller binds it, which
// once failed a loaded run with "address already in use".
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 200 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		p := strconv.Itoa(port)
		if bindable(net.JoinHostPort(ip, p)) && bindable(":"+p) {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// The range FreePort draws from: under the default ephemeral range and
// above the ports daemons usually take.
const freePortLow, freePortHigh = 20000, 32768

// bindable says whether a TCP listener and a UDP socket can both bind addr.
func bindable(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// WaitPort waits until a TCP connect to addr succeeds.
func WaitPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tracker is a running opentracker.
type Tracker struct {
	*Proc
	HTTP string // announce URL over HTTP
	UDP  string // announce URL over UDP
}

// StartOpentracker starts opentracker on ip, serving the given info hashes
// (hex; Debian's build only serves whitelisted hashes).
func StartOpentracker(t testing.TB, ip string, infoHashes ...string) *Tracker {
	t.Helper()
	bin := RequireTool(t, "opentracker", "opentracker")
	// opentracker chroots to dir and drops to nobody before it reads the
	// whitelist, so both must be readable by others (t.TempDir is 0700).
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(dir, "wl.txt")
	if err := os.WriteFile(wl, []byte(strings.Join(infoHashes, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wl, 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t, ip)
	ps := strconv.Itoa(port)
	p := Start(t, bin, "-i", ip, "-p", ps, "-P", ps, "-d", dir, "-w", "/wl.txt")
	addr := net.JoinHostPort(ip, ps)
	WaitPort(t, addr, 10*time.Second)
	tr := &Tracker{Proc: p, HTTP: "http://" + addr + "/announce", UDP: "udp://" + addr}
	if len(infoHashes) > 0 {
		waitWhitelisted(t, tr.HTTP, infoHashes[0])
	}
	return tr
}

// waitWhitelisted waits until opentracker, which loads its whitelist in the
// background after it starts listening, accepts an announce of infoHash.
func waitWhitelisted(t testing.TB, announce, infoHash string) {
	t.Helper()
	raw, err := hex.DecodeString(infoHash)
	if err != nil || len(raw) != 20 {
		t.Fatalf("bad info hash %q", infoHash)
	}
	q := url.Values{}
	q.Set("info_hash", string(raw))
	q.Set("peer_id", "-SF0000-whitelistprb")
	q.Set("port", "1")
	q.Set("left", "0")
	client := &http.Client{Timeout: 2 * time.Second}
	get := func() (string, error) {
		resp, err := client.Get(announce + "?" + q.Encode())
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return string(body), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		// A regular announce: opentracker accepts "stopped" ones even
		// before the whitelist is loaded. Then the probe leaves again.
		if body, err := get(); err == nil && !strings.Contains(body, "failure reason") {
			q.Set("event", "stopped")
			if _, err := get(); err != nil {
				t.Fatalf("removing the whitelist probe: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker at %s never accepted %s (whitelist not loaded)", announce, infoHash)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Aria2Options configures an aria2c download.
type Aria2Options struct {
	IP      string // address to listen on and leave from
	Torrent string
	Dir     string
	// SeedTime is how long aria2 seeds after finishing; 0 exits when done.
	// aria2 learns peers only from the torrent's trackers, so the torrent
	// needs an announce URL (see StartOpentracker).
	SeedTime time.Duration
}

// StartAria2 runs aria2c on a .torrent into Dir. It finds peers through the
// torrent's trackers. Wait for it with Exited().
func StartAria2(t testing.TB, o Aria2Options) *Proc {
	t.Helper()
	bin := RequireTool(t, "aria2c", "aria2")
	port := FreePort(t, o.IP)
	args := []string{
		"--dir=" + o.Dir, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--listen-port=" + strconv.Itoa(port),
		"--interface=" + o.IP, "--seed-time=" + strconv.Itoa(int(o.SeedTime.Seconds())),
		"--check-integrity=true", "--bt-stop-timeout=300", "--summary-interval=0",
		"--console-log-level=warn", "--file-allocation=none", "--bt-tracker-interval=2",
	}
	if ip := net.ParseIP(o.IP); ip != nil && ip.To4() != nil {
		// The swarm is IPv4: without this aria2 also tries to listen on
		// IPv6 at the IPv4 address and logs a (harmless) bind error.
		args = append(args, "--disable-ipv6=true")
	}
	return Start(t, bin, append(args, o.Torrent)...)
}

// MaxRSS returns the peak resident set size of the exited process in bytes,
// or 0 while it runs.
func (p *Proc) MaxRSS() int64 {
	select {
	case <-p.done:
	default:
		return 0
	}
	if p.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
