package enginetest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// RunCheckingLeaks runs the tests of m and turns a passing run into a
// failure when goroutines whose stacks mention any of match (for example
// "swarmfs/cache.") are still running 10 s after the tests ended. It
// returns the exit code for os.Exit. Use it from TestMain.
func RunCheckingLeaks(m *testing.M, match ...string) int {
	code := m.Run()
	if code == 0 {
		if leaked := LeakedGoroutines(10*time.Second, match...); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	return code
}

// LeakedGoroutines waits up to d for every goroutine whose stack mentions
// one of match to end and returns the stacks of those still running, or ""
// when none is. Goroutines of TestMain and of this package are ignored.
func LeakedGoroutines(d time.Duration, match ...string) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, ".TestMain(") || strings.Contains(g, "swarmfs/engine/enginetest.") {
				continue
			}
			for _, m := range match {
				if strings.Contains(g, m) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
