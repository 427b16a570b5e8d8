package metainfo

import (
	"errors"
	"fmt"
	"strings"
)

// checkComponent validates one path component (or a torrent name): it must
// be usable as a single directory entry on Linux, so that joining it below
// a directory can never leave that directory.
func checkComponent(c string) error {
	switch {
	case c == "":
		return errors.New("empty path component")
	case c == "." || c == "..":
		return fmt.Errorf("path component %q", c)
	case strings.IndexByte(c, 0) >= 0:
		return fmt.Errorf("path component %q contains NUL", c)
	case strings.IndexByte(c, '/') >= 0:
		return fmt.Errorf("path component %q contains '/'", c)
	case len(c) > MaxComponentLength:
		return fmt.Errorf("path component of %d bytes, more than %d", len(c), MaxComponentLength)
	}
	return nil
}

// checkPath validates the components of one file path of a multi-file
// torrent and its length below the torrent's directory, whose name is
// nameLen bytes long.
func checkPath(p []string, nameLen int) error {
	if len(p) == 0 {
		return errors.New("empty path")
	}
	if len(p) > MaxPathDepth {
		return fmt.Errorf("path of %d components, more than %d", len(p), MaxPathDepth)
	}
	n := nameLen
	for _, c := range p {
		if err := checkComponent(c); err != nil {
			return err
		}
		n += 1 + len(c)
	}
	if n > MaxPathLength {
		return fmt.Errorf("path of %d bytes with the torrent's name, more than %d (PATH_MAX)", n, MaxPathLength)
	}
	return nil
}

// isLegacyPad reports whether a path follows the pre-BEP 47 convention of
// putting pad files in a top-level ".pad" directory.
func isLegacyPad(p []string) bool {
	return len(p) >= 2 && p[0] == ".pad"
}

// checkCollisions rejects two files with the same path and a file whose path
// is also a directory of another file (a/b and a/b/c).
func checkCollisions(files []File) error {
	paths := make(map[string]struct{}, len(files))
	for _, f := range files {
		k := f.DisplayPath()
		if _, dup := paths[k]; dup {
			return fmt.Errorf("%w: duplicate file path %q", ErrInvalid, k)
		}
		paths[k] = struct{}{}
	}
	for _, f := range files {
		// Each proper prefix of the path is a directory; it must not be a file.
		full, n := f.DisplayPath(), 0
		for _, c := range f.Path[:len(f.Path)-1] {
			n += len(c)
			dir := full[:n]
			if _, clash := paths[dir]; clash {
				return fmt.Errorf("%w: %q is both a file and a directory", ErrInvalid, dir)
			}
			n++ // the "/" separator
		}
	}
	return nil
}
