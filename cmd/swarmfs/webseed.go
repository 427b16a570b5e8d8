package main

import (
	"flag"
	"net/url"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/engine"
)

// webSeedFlags are the web seed (BEP 19) flags of get, mount and serve.
type webSeedFlags struct {
	off  bool
	urls []string
}

func (w *webSeedFlags) register(fset *flag.FlagSet) {
	fset.BoolVar(&w.off, "no-web-seeds", false, "do not download from web seeds (the torrent's url-list and --web-seed)")
	fset.Func("web-seed", "also download from the web seed `URL` (an HTTP server with the torrent's files, as in a url-list; repeatable)", func(s string) error {
		w.urls = append(w.urls, s)
		return nil
	})
}

// check validates the URLs: absolute http or https URLs with a host.
func (w *webSeedFlags) check() error {
	for _, s := range w.urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError("--web-seed %q: want an http:// or https:// URL", s)
		}
	}
	if w.off && len(w.urls) > 0 {
		return usageError("--web-seed and --no-web-seeds contradict each other")
	}
	return nil
}

// apply sets the web seed fields of opt.
func (w *webSeedFlags) apply(opt engine.AddOptions) engine.AddOptions {
	opt.WebSeeds, opt.NoWebSeeds = w.urls, w.off
	return opt
}

// webSeedNote says how many bytes came from web seeds, "" when none did.
func webSeedNote(st engine.Stats) string {
	if st.WebSeedBytes <= 0 {
		return ""
	}
	return "web seeds " + humanize.IBytes(uint64(st.WebSeedBytes))
}
