package main

import (
	"context"
	"fmt"
	"runtime"
)

var versionCommand = &command{
	summary:  "print the swarmfs version",
	usage:    "",
	examples: []string{"swarmfs version"},
	run: func(_ context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError("version takes no arguments")
		}
		fmt.Fprintf(e.stdout, "swarmfs %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	},
}
