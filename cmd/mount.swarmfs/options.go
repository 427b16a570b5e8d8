package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// errOption marks a bad mount option; main exits with status 1 for it.
var errOption = errors.New("bad mount option")

// optKind says how a mount option becomes `swarmfs mount` arguments.
type optKind uint8

const (
	optValue   optKind = iota // name=value -> --flag value
	optList                   // like optValue; repeats join with commas
	optBool                   // name -> --flag
	optIgnored                // mount(8)'s own, or already in effect
)

// option is one mount option swarmfs understands.
type option struct {
	kind optKind
	flag string // `swarmfs mount` flag, for optValue, optList and optBool
	why  string // for optIgnored: why nothing needs doing (for -v)
}

// options maps mount option names (fstab spelling, with underscores) to
// swarmfs mount flags. `swarmfs mount --help` is the reference for flags.
var options = map[string]option{
	"cache_dir":             {kind: optValue, flag: "--cache-dir"},
	"cache_size":            {kind: optValue, flag: "--cache-size"},
	"port":                  {kind: optValue, flag: "--port"},
	"max_peers":             {kind: optValue, flag: "--max-peers"},
	"max_conns":             {kind: optValue, flag: "--max-conns"},
	"max_conns_per_torrent": {kind: optValue, flag: "--max-conns-per-torrent"},
	"max_upload_rate":       {kind: optValue, flag: "--max-upload-rate"},
	"max_download_rate":     {kind: optValue, flag: "--max-download-rate"},
	"no_upload":             {kind: optBool, flag: "--no-upload"},
	"readahead":             {kind: optValue, flag: "--readahead"},
	"read_timeout":          {kind: optValue, flag: "--read-timeout"},
	"page_cache":            {kind: optValue, flag: "--page-cache"},
	"encryption":            {kind: optValue, flag: "--encryption"},
	"peer":                  {kind: optList, flag: "--peer"},
	"dht_bootstrap":         {kind: optList, flag: "--dht-bootstrap"},
	"allow_other":           {kind: optBool, flag: "--allow-other"},
	"no_dht":                {kind: optBool, flag: "--no-dht"},
	"prefetch":              {kind: optBool, flag: "--prefetch"},
	"debug":                 {kind: optBool, flag: "-v"},

	"ro":         {kind: optIgnored, why: "swarmfs refuses every change itself (EROFS); the kernel mount stays rw so that setfattr user.swarmfs.prefetch reaches it"},
	"rw":         {kind: optIgnored, why: "mount(8)'s default; swarmfs refuses every change all the same"},
	"nosuid":     {kind: optIgnored, why: "always in effect"},
	"nodev":      {kind: optIgnored, why: "always in effect"},
	"exec":       {kind: optIgnored, why: "the default"},
	"noatime":    {kind: optIgnored, why: "a read-only mount never updates access times"},
	"nodiratime": {kind: optIgnored, why: "a read-only mount never updates access times"},
	"relatime":   {kind: optIgnored, why: "a read-only mount never updates access times"},
	"defaults":   {kind: optIgnored, why: "mount(8)'s own"},
	"auto":       {kind: optIgnored, why: "mount(8)'s own"},
	"noauto":     {kind: optIgnored, why: "mount(8)'s own"},
	"user":       {kind: optIgnored, why: "mount(8)'s own"},
	"nouser":     {kind: optIgnored, why: "mount(8)'s own"},
	"users":      {kind: optIgnored, why: "mount(8)'s own"},
	"owner":      {kind: optIgnored, why: "mount(8)'s own"},
	"group":      {kind: optIgnored, why: "mount(8)'s own"},
	"_netdev":    {kind: optIgnored, why: "mount(8)'s and systemd's own"},
	"nofail":     {kind: optIgnored, why: "mount(8)'s and systemd's own"},
}

// helperOptions are options of this helper itself, not of swarmfs.
type helperOptions struct {
	mountTimeout time.Duration // how long to wait for the mount to appear
}

const defaultMountTimeout = 2 * time.Minute

// splitOptions splits a mount option string at commas. A value may be
// enclosed in double quotes to hold commas (peer="1.2.3.4:1,5.6.7.8:2"),
// as libmount allows; the quotes are removed.
func splitOptions(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, fmt.Errorf("%w: unbalanced double quote in %q", errOption, s)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

// mapOptions turns mount options into `swarmfs mount` flags and this
// helper's own settings. Unknown options are an error naming the option,
// unless sloppy (mount -s), when they are returned as ignored. notes
// explains each option that needs no flag, for -v.
func mapOptions(opts []string, sloppy bool) (flags []string, h helperOptions, notes []string, err error) {
	h.mountTimeout = defaultMountTimeout
	lists := map[string][]string{}
	var listOrder []string
	seen := map[string]bool{}
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		switch {
		case strings.HasPrefix(name, "x-"), name == "comment":
			notes = append(notes, o+": for mount(8) and systemd")
			continue
		case name == "mount_timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return nil, h, nil, fmt.Errorf("%w %q: want a positive duration such as 90s", errOption, o)
			}
			h.mountTimeout = d
			continue
		}
		spec, ok := options[name]
		if !ok {
			if sloppy {
				notes = append(notes, o+": unknown, ignored (sloppy)")
				continue
			}
			return nil, h, nil, fmt.Errorf("%w %q: swarmfs does not know it (docs/fstab.md lists the options)", errOption, name)
		}
		switch spec.kind {
		case optIgnored, optBool:
			if hasValue {
				return nil, h, nil, fmt.Errorf("%w %q: takes no value", errOption, o)
			}
			if spec.kind == optIgnored {
				notes = append(notes, name+": "+spec.why)
				continue
			}
			if !seen[name] {
				flags = append(flags, spec.flag)
			}
		case optValue:
			if !hasValue || value == "" {
				return nil, h, nil, fmt.Errorf("%w %q: needs a value (%s=...)", errOption, name, name)
			}
			if seen[name] {
				return nil, h, nil, fmt.Errorf("%w %q: given twice", errOption, name)
			}
			flags = append(flags, spec.flag, value)
		case optList:
			if !hasValue || value == "" {
				return nil, h, nil, fmt.Errorf("%w %q: needs a value (%s=...)", errOption, name, name)
			}
			if lists[name] == nil {
				listOrder = append(listOrder, name)
			}
			lists[name] = append(lists[name], value)
		}
		seen[name] = true
	}
	for _, name := range listOrder {
		flags = append(flags, options[name].flag, strings.Join(lists[name], ","))
	}
	return flags, h, notes, nil
}
