package metainfo

import (
	"errors"
	"fmt"
)

// checkComponent validates one path component (or a torrent name): it must
// be usable as a single directory entry on Linux, so that joining it below
// a directory can never leave that directory.
func checkComponent[S ~string | ~[]byte](c S) error {
	switch {
	case len(c) == 0:
		return errors.New("empty path component")
	case string(c) == "." || string(c) == "..":
		return fmt.Errorf("path component %q", c)
	case indexByte(c, 0) >= 0:
		return fmt.Errorf("path component %q contains NUL", c)
	case indexByte(c, '/') >= 0:
		return fmt.Errorf("path component %q contains '/'", c)
	case len(c) > MaxComponentLength:
		return fmt.Errorf("path component of %d bytes, more than %d", len(c), MaxComponentLength)
	}
	return nil
}

func indexByte[S ~string | ~[]byte](s S, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// checkPath validates the components of one file path of a multi-file
// torrent and its length below the torrent's directory, whose name is
// nameLen bytes long.
func checkPath[S ~string | ~[]byte](p []S, nameLen int) error {
	if err := checkComponents(p); err != nil {
		return err
	}
	n := nameLen
	for _, c := range p {
		n += 1 + len(c)
	}
	if n > MaxPathLength {
		return fmt.Errorf("path of %d bytes with the torrent's name, more than %d (PATH_MAX)", n, MaxPathLength)
	}
	return nil
}

// checkComponents validates the components of one file path of a
// multi-file torrent and their number, but not the path's length.
func checkComponents[S ~string | ~[]byte](p []S) error {
	if len(p) == 0 {
		return errors.New("empty path")
	}
	if len(p) > MaxPathDepth {
		return fmt.Errorf("path of %d components, more than %d", len(p), MaxPathDepth)
	}
	for _, c := range p {
		if err := checkComponent(c); err != nil {
			return err
		}
	}
	return nil
}

// isLegacyPad reports whether a path follows the pre-BEP 47 convention of
// putting pad files in a top-level ".pad" directory.
func isLegacyPad(p [][]byte) bool {
	return len(p) >= 2 && string(p[0]) == ".pad"
}
