package portmap

import (
	"os"
	"testing"

	"github.com/swarmfs/swarmfs/engine/enginetest"
)

func TestMain(m *testing.M) {
	os.Exit(enginetest.RunCheckingLeaks(m, "internal/portmap."))
}
