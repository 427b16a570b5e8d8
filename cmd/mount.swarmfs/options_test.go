package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMapOptions(t *testing.T) {
	tests := []struct {
		opts    string
		sloppy  bool
		flags   []string
		timeout time.Duration
		err     string // substring of the error; "" for none
	}{
		{opts: "ro,allow_other,cache_dir=/var/cache/swarmfs,cache_size=20GiB,_netdev",
			flags: []string{"--allow-other", "--cache-dir", "/var/cache/swarmfs", "--cache-size", "20GiB"}},
		{opts: "defaults", flags: nil},
		{opts: "rw,nosuid,nodev,noatime,auto,nofail,user,x-systemd.automount,x-systemd.idle-timeout=60,comment=x", flags: nil},
		{opts: "no_dht,prefetch,debug,port=6881,max_peers=80,readahead=32MiB,read_timeout=90s,page_cache=never,encryption=require",
			flags: []string{"--no-dht", "--prefetch", "-v", "--port", "6881", "--max-peers", "80", "--readahead", "32MiB",
				"--read-timeout", "90s", "--page-cache", "never", "--encryption", "require"}},
		{opts: `peer="10.0.0.1:6881,10.0.0.2:6881",peer=10.0.0.3:1,dht_bootstrap=router:6881`,
			flags: []string{"--peer", "10.0.0.1:6881,10.0.0.2:6881,10.0.0.3:1", "--dht-bootstrap", "router:6881"}},
		{opts: "allow_other,allow_other", flags: []string{"--allow-other"}},
		{opts: "max_conns=100,max_conns_per_torrent=40,max_upload_rate=1MiB,max_download_rate=8MiB,no_upload",
			flags: []string{"--max-conns", "100", "--max-conns-per-torrent", "40", "--max-upload-rate", "1MiB", "--max-download-rate", "8MiB", "--no-upload"}},
		{opts: "mount_timeout=30s", timeout: 30 * time.Second},
		{opts: "ro,bogus_option", err: `"bogus_option"`},
		{opts: "ro,bogus_option=1", sloppy: true, flags: nil},
		{opts: "cache_dir", err: `"cache_dir": needs a value`},
		{opts: "cache_dir=", err: "needs a value"},
		{opts: "cache_dir=/a,cache_dir=/b", err: "given twice"},
		{opts: "allow_other=1", err: "takes no value"},
		{opts: "ro=yes", err: "takes no value"},
		{opts: "noexec", err: `"noexec"`},
		{opts: "suid", err: `"suid"`},
		{opts: "mount_timeout=soon", err: "mount_timeout"},
		{opts: `peer="1.2.3.4:5`, err: "unbalanced"},
	}
	for _, tt := range tests {
		opts, err := splitOptions(tt.opts)
		var flags []string
		var h helperOptions
		if err == nil {
			flags, h, _, err = mapOptions(opts, tt.sloppy)
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errOption) {
				t.Errorf("%q: error %v, want one containing %s", tt.opts, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.opts, err)
			continue
		}
		if !slices.Equal(flags, tt.flags) {
			t.Errorf("%q:\n got flags %q\nwant flags %q", tt.opts, flags, tt.flags)
		}
		want := tt.timeout
		if want == 0 {
			want = defaultMountTimeout
		}
		if h.mountTimeout != want {
			t.Errorf("%q: mount timeout %v, want %v", tt.opts, h.mountTimeout, want)
		}
	}
}

// TestOptionsTable checks the table's own rules; TestFlagsExist checks its
// flags against swarmfs itself.
func TestOptionsTable(t *testing.T) {
	for name, o := range options {
		if strings.Contains(name, "-") {
			t.Errorf("option %s: fstab options are spelled with underscores", name)
		}
		switch o.kind {
		case optIgnored:
			if o.why == "" || o.flag != "" {
				t.Errorf("option %s: ignored options say why and have no flag", name)
			}
		default:
			if !strings.HasPrefix(o.flag, "-") {
				t.Errorf("option %s: no flag", name)
			}
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want invocation
		err  bool
	}{
		{args: []string{"/t/a.torrent", "/mnt/t", "-o", "ro,allow_other", "-t", "fuse.swarmfs"},
			want: invocation{source: "/t/a.torrent", mountpoint: "/mnt/t", options: []string{"ro", "allow_other"}, fstype: "fuse.swarmfs"}},
		{args: []string{"-nsfv", "-oro", "-o", "cache_dir=/c", "src", "mp"},
			want: invocation{source: "src", mountpoint: "mp", options: []string{"ro", "cache_dir=/c"}, sloppy: true, fake: true, verbose: true}},
		{args: []string{"-v", "--", "-weird-source", "mp"},
			want: invocation{source: "-weird-source", mountpoint: "mp", verbose: true}},
		{args: []string{"src"}, err: true},
		{args: []string{"src", "mp", "extra"}, err: true},
		{args: []string{"src", "mp", "-o"}, err: true},
		{args: []string{"src", "mp", "-x"}, err: true},
		{args: []string{"src", "mp", "-t", "ext4"}, err: true},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args)
		if tt.err {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if got.source != tt.want.source || got.mountpoint != tt.want.mountpoint || !slices.Equal(got.options, tt.want.options) ||
			got.fstype != tt.want.fstype || got.sloppy != tt.want.sloppy || got.fake != tt.want.fake || got.verbose != tt.want.verbose {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.args, got, tt.want)
		}
	}
}

func TestRunRejectsUnknownOption(t *testing.T) {
	var stderr strings.Builder
	code := run([]string{"src", "/mnt/x", "-o", "ro,frobnicate"}, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `"frobnicate"`) {
		t.Errorf("exit %d, stderr %q; want 1 and a message naming frobnicate", code, stderr.String())
	}
}

func TestParseMountinfo(t *testing.T) {
	const info = `22 1 0:21 / /proc rw,nosuid - proc proc rw
101 22 0:55 / /mnt/t rw,nosuid,nodev - fuse.swarmfs swarmfs ro,user_id=0
102 22 0:56 / /mnt/t rw - fuse.sshfs host: rw
103 22 0:57 / /mnt/my\040films rw shared:5 master:2 - fuse.swarmfs swarmfs ro
104 22 0:58 / /mnt/t/sub rw - fuse.swarmfs swarmfs ro
garbage line
`
	for mp, want := range map[string][]string{"/mnt/t": {"101"}, "/mnt/my films": {"103"}, "/mnt": nil} {
		ids, err := parseMountinfo(strings.NewReader(info), mp)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for id := range ids {
			got = append(got, id)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ids %v, want %v", mp, got, want)
		}
	}
	if got := unescapeMountinfo(`a\134b\011c\012d\040e\04`); got != "a\\b\tc\nd e\\04" {
		t.Errorf("unescape: %q", got)
	}
}

// FuzzMapOptions checks that no option string makes the helper panic, and
// that every flag it produces is one of the table's.
func FuzzMapOptions(f *testing.F) {
	f.Add("ro,allow_other,cache_dir=/c,cache_size=1GiB,_netdev", false)
	f.Add(`peer="1.2.3.4:5,6.7.8.9:1",x-systemd.automount,bogus`, true)
	f.Fuzz(func(t *testing.T, s string, sloppy bool) {
		opts, err := splitOptions(s)
		if err != nil {
			return
		}
		flags, _, _, err := mapOptions(opts, sloppy)
		if err != nil {
			return
		}
		known := map[string]bool{}
		for _, o := range options {
			known[o.flag] = true
		}
		for i := 0; i < len(flags); i++ {
			if !known[flags[i]] {
				t.Fatalf("flag %q not from the table (flags %q)", flags[i], flags)
			}
			if flags[i] != "-v" && !strings.HasPrefix(flags[i], "--") || flags[i] == "--" {
				t.Fatalf("bad flag %q", flags[i])
			}
			if o := flagKind(flags[i]); o == optValue || o == optList {
				i++ // its value
			}
		}
	})
}

func flagKind(flag string) optKind {
	for _, o := range options {
		if o.flag == flag {
			return o.kind
		}
	}
	return optIgnored
}
