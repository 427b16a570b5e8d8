package sdnotify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitPath is the systemd unit shipped in docs/, whose readiness this
// package sends.
const unitPath = "../../../../docs/systemd/swarmfs@.service"

// TestSystemdUnit checks docs/systemd/swarmfs@.service with
// `systemd-analyze verify` (an instance of it, with ExecStart pointing at
// an existing program, since verify checks that commands exist), and that
// it keeps the settings the docs promise: Type=notify, SIGTERM to stop,
// and no option that would hide the mount in a namespace of its own.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	keys := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	for k, want := range map[string]string{"Type": "notify", "KillSignal": "SIGTERM", "Restart": "on-failure"} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups", "ProtectClock", "ProtectProc",
		"ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "DynamicUser"} {
		if _, ok := keys[k]; ok {
			t.Errorf("%s= gives the service its own mount namespace: the FUSE mount would be invisible outside it", k)
		}
	}
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/swarmfs mount ") {
		t.Fatal("ExecStart does not run /usr/local/bin/swarmfs mount")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (apt-get install systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	inst := filepath.Join(t.TempDir(), "swarmfs@film.service")
	if err := os.WriteFile(inst, []byte(strings.ReplaceAll(unit, "/usr/local/bin/swarmfs", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", inst).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
