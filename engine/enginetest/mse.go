package enginetest

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// LTEncryption is libtorrent's protocol encryption (MSE/PE) configuration.
type LTEncryption struct {
	// Out and In are out_enc_policy and in_enc_policy: "forced" (only
	// encrypted connections), "enabled" (libtorrent's default) or
	// "disabled".
	Out, In string
	// Level is allowed_enc_level: "rc4", "plaintext" or "both" ("" = both).
	Level string
	// PreferRC4 makes libtorrent select RC4 when a peer offers both methods
	// (libtorrent's default selects plaintext).
	PreferRC4 bool
}

// mseDriver runs lt.py with the encryption settings merged into every
// session it creates. Arguments: the encryption JSON, lt.py's path, then
// lt.py's own JSON argument.
const mseDriver = `import json, runpy, sys
import libtorrent as lt

enc = json.loads(sys.argv[1])
policy = {"forced": lt.enc_policy.forced, "enabled": lt.enc_policy.enabled, "disabled": lt.enc_policy.disabled}
level = {"rc4": lt.enc_level.rc4, "plaintext": lt.enc_level.plaintext, "both": lt.enc_level.both}
extra = {
    "out_enc_policy": int(policy[enc["out"]]),
    "in_enc_policy": int(policy[enc["in"]]),
    "allowed_enc_level": int(level[enc["level"] or "both"]),
    "prefer_rc4": bool(enc["prefer_rc4"]),
}
real_session = lt.session

def session(settings=None, *args, **kwargs):
    merged = dict(settings or {})
    merged.update(extra)
    s = real_session(merged, *args, **kwargs)
    got = s.get_settings()
    for k, v in extra.items():
        if got[k] != v:
            print("error setting %s is %r, want %r" % (k, got[k], v), flush=True)
            sys.exit(1)
    return s

lt.session = session
script = sys.argv[2]
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
`

// StartLibtorrentEncrypted is StartLibtorrent with libtorrent's protocol
// encryption set as enc says.
func StartLibtorrentEncrypted(t testing.TB, o LTOptions, enc LTEncryption) *LT {
	t.Helper()
	RequireLibtorrent(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "lt.py")
	driver := filepath.Join(dir, "lt_mse.py")
	if err := os.WriteFile(script, ltScript, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(driver, []byte(mseDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Peers == nil {
		o.Peers = []string{} // lt.py iterates the list
	}
	cfg := map[string]any{
		"ip": o.IP, "port": o.Port, "torrent": o.Torrent, "magnet": o.Magnet,
		"save_path": o.SavePath, "peers": o.Peers, "dht": o.DHT,
		"dht_bootstrap": o.DHTBootstrap, "seed_mode": o.SeedMode, "upload_mode": o.UploadMode, "no_pex": o.NoPEX,
		"progress": o.Progress, "exit_when_done": o.ExitWhenDone,
		"timeout": o.Timeout.Seconds(), "settings": o.Settings,
	}
	js, _ := json.Marshal(cfg)
	ejs, _ := json.Marshal(map[string]any{"out": enc.Out, "in": enc.In, "level": enc.Level, "prefer_rc4": enc.PreferRC4})
	p := Start(t, Python, driver, string(ejs), script, string(js))
	port := p.WaitLine(t, "listening ", 30*time.Second)
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("libtorrent printed a bad port %q", port)
	}
	return &LT{Proc: p, Addr: net.JoinHostPort(o.IP, port)}
}
