package readahead

import (
	"path"
	"strings"
)

// DefaultWarmAt is the share of a file read after which the head of the
// next file is worth fetching (the next episode, at low priority).
const DefaultWarmAt = 0.9

// File is a file of a torrent as the warm-up rule sees it: its path with
// slashes and its length.
type File struct {
	Path   string
	Length int64
}

// NextFile returns the index of the file that follows files[cur] for a
// viewer: the next non-empty file in the same directory, in natural name
// order ("ep9" before "ep10"), with the same extension (so "ep1.mkv" is
// followed by "ep2.mkv", not by "ep1.srt"). It returns false when there is
// none. The result does not change while the reader reads, so compute it
// once per open file.
func NextFile(files []File, cur int) (int, bool) {
	if cur < 0 || cur >= len(files) {
		return 0, false
	}
	dir, ext := path.Dir(files[cur].Path), strings.ToLower(path.Ext(files[cur].Path))
	name := files[cur].Path
	best := -1
	for i, f := range files {
		if i == cur || f.Length <= 0 || path.Dir(f.Path) != dir || strings.ToLower(path.Ext(f.Path)) != ext {
			continue
		}
		if naturalLess(name, f.Path) && (best < 0 || naturalLess(f.Path, files[best].Path)) {
			best = i
		}
	}
	return best, best >= 0
}

// WarmDue reports whether a reader that has read up to pos of a file of
// length bytes is far enough (at share at of the file, DefaultWarmAt when
// at is not in (0, 1]) to ask for the head of the next file.
func WarmDue(pos, length int64, at float64) bool {
	if at <= 0 || at > 1 {
		at = DefaultWarmAt
	}
	return length > 0 && float64(pos) >= at*float64(length)
}

// naturalLess compares two names with runs of digits compared as numbers,
// case-insensitively otherwise; equal names compare by their bytes.
func naturalLess(a, b string) bool {
	la, lb := strings.ToLower(a), strings.ToLower(b)
	i, j := 0, 0
	for i < len(la) && j < len(lb) {
		if isDigit(la[i]) && isDigit(lb[j]) {
			si, sj := i, j
			for i < len(la) && isDigit(la[i]) {
				i++
			}
			for j < len(lb) && isDigit(lb[j]) {
				j++
			}
			na, nb := strings.TrimLeft(la[si:i], "0"), strings.TrimLeft(lb[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			continue
		}
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
		i++
		j++
	}
	if len(la)-i != len(lb)-j {
		return len(la)-i < len(lb)-j
	}
	return a < b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
