package fs

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestFailLogOneLinePerReason: reads failing for one reason (a full cache
// disk) log one warning, not one per read; another reason, or the same one
// after a quiet minute, logs again.
func TestFailLogOneLinePerReason(t *testing.T) {
	disk := errors.New("engine: cannot store pieces in the cache")
	read := func(piece int) string {
		return failReason(syscall.EIO, fmt.Errorf("reading piece %d: %w", piece, fmt.Errorf("%w: no space left on device", disk)))
	}
	var f failLog
	t0 := time.Unix(1000, 0)
	if f.repeat(read(1), t0) {
		t.Fatal("the first failure was taken for a repeat")
	}
	for i := 2; i < 100; i++ {
		if !f.repeat(read(i), t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("read of piece %d logged again: one line per reason", i)
		}
	}
	other := failReason(syscall.EIO, fmt.Errorf("reading piece 3: %w", errors.New("no peer has the piece")))
	if f.repeat(other, t0.Add(time.Second)) {
		t.Fatal("another reason was taken for a repeat")
	}
	if f.repeat(read(5), t0.Add(2*time.Second)) {
		t.Fatal("the disk failure after another reason was taken for a repeat")
	}
	if f.repeat(read(6), t0.Add(2*time.Second+failRepeatWindow)) {
		t.Fatal("the same reason after a quiet window was not logged again")
	}
}
