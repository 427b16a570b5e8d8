package webseed

import (
	"errors"
	"testing"

	"github.com/swarmfs/swarmfs/metainfo"
)

func TestFileURLs(t *testing.T) {
	multi := &metainfo.Info{Name: "My Torrent #1", Files: []metainfo.File{
		{Path: []string{"dir one", "a b.bin"}},
		{Path: []string{"100%", "q?x&y=z+1;2,3.bin"}},
		{Path: []string{"ünï", "文件"}},
	}}
	single := &metainfo.Info{Name: "file 50%.iso", SingleFile: true, Files: []metainfo.File{{Path: []string{"file 50%.iso"}}}}
	cases := []struct {
		base string
		info *metainfo.Info
		want []string
	}{
		{"http://h/pub/", multi, []string{
			"http://h/pub/My%20Torrent%20%231/dir%20one/a%20b.bin",
			"http://h/pub/My%20Torrent%20%231/100%25/q%3Fx&y=z+1%3B2%2C3.bin",
			"http://h/pub/My%20Torrent%20%231/%C3%BCn%C3%AF/%E6%96%87%E4%BB%B6",
		}},
		// A multi-file URL without "/" is a directory all the same.
		{"https://h:8443/pub", multi, []string{
			"https://h:8443/pub/My%20Torrent%20%231/dir%20one/a%20b.bin",
			"https://h:8443/pub/My%20Torrent%20%231/100%25/q%3Fx&y=z+1%3B2%2C3.bin",
			"https://h:8443/pub/My%20Torrent%20%231/%C3%BCn%C3%AF/%E6%96%87%E4%BB%B6",
		}},
		// Queries are kept, fragments dropped, escapes in the base kept.
		{"http://h/a%20b/?key=v#frag", single, []string{"http://h/a%20b/file%2050%25.iso?key=v"}},
		{"http://h/", single, []string{"http://h/file%2050%25.iso"}},
		{"http://h", multi, []string{
			"http://h/My%20Torrent%20%231/dir%20one/a%20b.bin",
			"http://h/My%20Torrent%20%231/100%25/q%3Fx&y=z+1%3B2%2C3.bin",
			"http://h/My%20Torrent%20%231/%C3%BCn%C3%AF/%E6%96%87%E4%BB%B6",
		}},
		// A single-file URL without "/" is the file, whatever its name.
		{"http://h/mirror/other-name.iso", single, []string{"http://h/mirror/other-name.iso"}},
		{"http://h/mirror/x.iso#frag", single, []string{"http://h/mirror/x.iso"}},
	}
	for _, c := range cases {
		got, err := fileURLs(c.base, c.info)
		if err != nil {
			t.Errorf("%s: %v", c.base, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %d URLs, want %d", c.base, len(got), len(c.want))
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s file %d:\n got %s\nwant %s", c.base, i, got[i], c.want[i])
			}
		}
	}
	for _, bad := range []string{"ftp://h/", "h/x", "/x", "http:///x", "http://h/%zz", "mailto:a@b", "http://[::1"} {
		if _, err := fileURLs(bad, multi); !errors.Is(err, ErrBadURL) {
			t.Errorf("%q: %v, want ErrBadURL", bad, err)
		}
	}
}
