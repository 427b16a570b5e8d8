package control

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir returns the directory of control sockets: $XDG_RUNTIME_DIR/swarmfs,
// else cacheDir/run.
func Dir(cacheDir string) string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "swarmfs")
	}
	return filepath.Join(cacheDir, "run")
}

// Key returns the key of a target: an http:// or https:// URL unchanged
// but for a trailing slash, anything else taken as a mountpoint and made
// absolute and clean.
func Key(target string) (string, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return strings.TrimRight(target, "/"), nil
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", fmt.Errorf("control: %w", err)
	}
	return abs, nil
}

func name(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// SocketPath returns the socket of key in dir.
func SocketPath(dir, key string) string { return filepath.Join(dir, name(key)+".sock") }

// TokenPath returns the HTTP API token file of key in dir.
func TokenPath(dir, key string) string { return filepath.Join(dir, name(key)+".token") }
