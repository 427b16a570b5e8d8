package utp

import (
	"os"
	"testing"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestMain fails the run when goroutines started by this package (socket
// readers, timer loops, deadline timers) outlive the tests.
func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/utp."))
}
