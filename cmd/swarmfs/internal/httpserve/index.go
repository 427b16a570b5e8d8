package httpserve

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/library"
)

var indexTmpl = template.Must(template.New("index").Funcs(template.FuncMap{
	"bytes":    func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
	"percent":  func(st library.Stats) string { return fmt.Sprintf("%.1f%%", 100*st.Progress()) },
	"fileURL":  fileURL,
	"hasMedia": hasMedia,
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>swarmfs</title>
<style>body{font-family:sans-serif;margin:1em 2em}td{padding:0 1em 0 0}td.n{text-align:right}</style>
</head><body>
<h1>swarmfs</h1>
{{if not .}}<p>No torrents.</p>{{end}}
{{range .}}<h2 id="t-{{.InfoHash}}">{{.Name}}</h2>
<p>{{if .Ready}}{{bytes .Size}}, {{percent .Stats}} verified{{else}}waiting for metadata{{end}},
{{.Stats.State}}, {{.Stats.Peers}} peers{{if hasMedia .}} · <a href="/playlist/{{.InfoHash}}.m3u">playlist</a>{{end}}</p>
{{if .Files.Len}}<table>
{{$t := .}}{{range $i, $f := .Files.All}}<tr><td><a href="{{fileURL $t $f}}">{{$f.Path}}</a></td><td class="n">{{bytes $f.Size}}</td></tr>
{{end}}</table>{{end}}
{{end}}</body></html>
`))

// sorted returns the library's torrents by name, then info hash.
func (s *Server) sorted() []library.Torrent {
	ts := s.lib.Torrents()
	slices.SortFunc(ts, func(a, b library.Torrent) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.InfoHash.String(), b.InfoHash.String()))
	})
	return ts
}

// serveIndex writes the HTML index.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	if err := indexTmpl.Execute(w, s.sorted()); err != nil {
		s.log.Debug("writing index", "err", err)
	}
}

// fileURL returns the path of a file, each component escaped.
func fileURL(t library.Torrent, f library.File) string {
	parts := strings.Split(f.Path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/files/" + t.InfoHash.String() + "/" + strings.Join(parts, "/")
}

func hasMedia(t library.Torrent) bool {
	for _, f := range t.Files.All() {
		if isMedia(f.Path) {
			return true
		}
	}
	return false
}

// servePlaylist writes /playlist/INFOHASH.m3u.
func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request, rest string) {
	hs, ok := strings.CutSuffix(rest, ".m3u")
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: want /playlist/INFOHASH.m3u", ErrBadPath))
		return
	}
	h, err := parseHash(hs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := s.lib.Torrent(h)
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: torrent %s", library.ErrNotFound, h))
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	for _, f := range t.Files.All() {
		if !isMedia(f.Path) {
			continue
		}
		// Titles are one line: strip what could break the format.
		title := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, f.Path)
		fmt.Fprintf(&b, "#EXTINF:-1,%s\n%s%s\n", title, base, fileURL(t, f))
	}
	w.Header().Set("Content-Type", "audio/x-mpegurl; charset=utf-8")
	w.Header().Set("Content-Disposition", "inline; filename=\""+h.String()+".m3u\"")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(b.String()))
}
