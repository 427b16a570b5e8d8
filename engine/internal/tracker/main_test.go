package tracker

import (
	"os"
	"testing"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestMain fails the run when goroutines started by this package outlive
// the tests (read loops, announcers, fake trackers).
func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/tracker."))
}
