package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

// TestSetRate starts serve with rate limits, reads and changes them with
// `swarmfs set-rate` over the control socket and through the HTTP API.
func TestSetRate(t *testing.T) {
	s := startServe(t, "--cache-dir", t.TempDir(), "--no-dht", "--max-upload-rate", "1MiB", "--max-conns", "20", "--max-conns-per-torrent", "5")
	if code, out, errOut := runCmd(t, "set-rate", s.url); code != 0 || out != "upload 1.0 MiB/s, download unlimited\n" {
		t.Fatalf("set-rate: exit %d: %q %s", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "set-rate", "--down", "2MiB", s.url); code != 0 || out != "upload 1.0 MiB/s, download 2.0 MiB/s\n" {
		t.Fatalf("set-rate --down: exit %d: %q %s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "set-rate", "--up", "lots", s.url); code != 2 || !strings.Contains(errOut, "bad size") {
		t.Errorf("set-rate --up lots: exit %d: %s", code, errOut)
	}

	api := s.url + "/api/rates"
	resp, body := request(t, http.MethodGet, api, nil)
	var got library.RateLimits
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got != (library.RateLimits{Up: 1 << 20, Down: 2 << 20}) {
		t.Fatalf("GET /api/rates: %d %s", resp.StatusCode, body)
	}
	if resp, body := request(t, http.MethodPut, api, []byte(`{"up":0}`)); resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("PUT without a token: %d %s", resp.StatusCode, body)
	}
	if resp, body := request(t, http.MethodPut, api, []byte(`{"up":-1}`), "Authorization", "Bearer "+s.token); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT a negative rate: %d %s", resp.StatusCode, body)
	}
	resp, body = request(t, http.MethodPut, api, []byte(`{"up":0}`), "Authorization", "Bearer "+s.token)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got != (library.RateLimits{Up: 0, Down: 2 << 20}) {
		t.Fatalf("PUT /api/rates: %d %s", resp.StatusCode, body)
	}
	if code, out, _ := runCmd(t, "set-rate", s.url); code != 0 || out != "upload unlimited, download 2.0 MiB/s\n" {
		t.Errorf("after the API call: exit %d: %q", code, out)
	}
}

// TestEngineFlags checks the flags of limits and seeding reach the engine
// configuration, and the combinations that make no sense are refused.
func TestEngineFlags(t *testing.T) {
	var g getFlags
	pos, err := parseFlags(g.flagSet(), []string{"--max-upload-rate", "2MiB", "--max-download-rate", "10MiB", "--max-conns", "80", "--max-conns-per-torrent", "30", "--no-upload", "x.torrent"})
	if err != nil || len(pos) != 1 {
		t.Fatal(pos, err)
	}
	cfg, err := g.config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxUploadRate != 2<<20 || cfg.MaxDownloadRate != 10<<20 || cfg.MaxConns != 80 || cfg.MaxConnsPerTorrent != 30 || !cfg.NoUpload {
		t.Errorf("config %+v", cfg)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "--seed", "--no-upload", "x.torrent"}, "exclude each other"},
		{[]string{"get", "--seed-ratio", "1", "--no-upload", "x.torrent"}, "exclude each other"},
		{[]string{"get", "--seed-ratio", "-1", "x.torrent"}, "--seed-ratio must not be negative"},
		{[]string{"get", "--max-conns", "10", "--max-conns-per-torrent", "20", "x.torrent"}, "above --max-conns"},
		{[]string{"get", "--max-upload-rate", "2PiB", "x.torrent"}, "at most"},
		{[]string{"seed", "--no-upload", "x.torrent", "."}, "would upload nothing"},
		{[]string{"serve", "--no-upload", "--seed-time", "1h"}, "exclude each other"},
	} {
		if code, _, errOut := runCmd(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d: %s (want %q)", tc.args, code, errOut, tc.want)
		}
	}
}
