package webseed

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/swarmfs/swarmfs/metainfo"
)

// fileURLs returns the GetRight-style (BEP 19) URL of every file of info,
// indexed like info.Files. For a single-file torrent a URL not ending in
// "/" is the file itself; otherwise the torrent's name and, for a
// multi-file torrent, the file's path are appended, each path element
// percent-encoded on its own. A multi-file URL without a final "/" is
// treated as if it had one, as libtorrent does. Query strings are kept;
// fragments are dropped.
func fileURLs(raw string, info *metainfo.Info) ([]string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadURL, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q: scheme is not http or https", ErrBadURL, raw)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q: no host", ErrBadURL, raw)
	}
	u.Fragment, u.RawFragment = "", ""
	base := u.EscapedPath()
	urls := make([]string, len(info.Files))
	if info.SingleFile && !strings.HasSuffix(base, "/") {
		urls[0] = u.String()
		return urls, nil
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	base += url.PathEscape(info.Name)
	var b strings.Builder
	for i, f := range info.Files {
		b.Reset()
		b.WriteString(base)
		if !info.SingleFile {
			for _, el := range f.Path {
				b.WriteByte('/')
				b.WriteString(url.PathEscape(el))
			}
		}
		v := *u
		v.RawPath = b.String()
		if v.Path, err = url.PathUnescape(v.RawPath); err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadURL, raw, err)
		}
		urls[i] = v.String()
	}
	return urls, nil
}
