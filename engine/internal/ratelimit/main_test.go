package ratelimit

import (
	"os"
	"testing"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

// TestMain fails the run when goroutines started by the tests or by the
// package (timer callbacks, waits) outlive the tests.
func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/ratelimit."))
}
