package holepunch

import (
	"os"
	"testing"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/holepunch."))
}
