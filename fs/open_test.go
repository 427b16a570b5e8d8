package fs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestOpenIsBounded: an open whose reader does not come (a torrent too busy
// to answer) fails after the read timeout instead of hanging, and opens
// work again once the torrent answers.
func TestOpenIsBounded(t *testing.T) {
	ft := newFake("slow.bin", []fakeFile{{path: []string{"slow.bin"}, data: []byte("data")}}, fakeOptions{single: true})
	ft.openGate = make(chan struct{})
	_, dir := mountT(t, []Torrent{ft}, Options{ReadTimeout: 200 * time.Millisecond})
	var err error
	within(t, 10*time.Second, "open", func() error {
		var f *os.File
		if f, err = os.Open(filepath.Join(dir, "slow.bin")); err == nil {
			f.Close()
		}
		return nil
	})
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("open of a torrent that does not answer: %v, want EIO", err)
	}
	close(ft.openGate)
	within(t, 10*time.Second, "read", func() error {
		b, err := os.ReadFile(filepath.Join(dir, "slow.bin"))
		if err == nil && string(b) != "data" {
			t.Errorf("read %q", b)
		}
		return err
	})
}
