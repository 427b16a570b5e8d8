package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"

	"github.com/swarmfs/swarmfs/cmd/swarmfs/internal/logfmt"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// command is one subcommand of swarmfs.
type command struct {
	summary  string
	usage    string // synopsis after "swarmfs NAME"
	examples []string
	run      func(ctx context.Context, env *env, args []string) error
	// flagSet builds the command's flags (for help output); nil if none.
	flagSet func() *flag.FlagSet
}

// env is what a command may touch: its output streams, whether stderr
// (where status lines go) is a terminal, and whether it is the journal.
// Tests build one around buffers.
type env struct {
	stdout, stderr io.Writer
	tty            bool
	journal        bool
}

// commands is the table of subcommands; each is defined in its own file.
var commands = map[string]*command{
	"add":      addCommand,
	"create":   createCommand,
	"demo":     demoCommand,
	"get":      getCommand,
	"info":     infoCommand,
	"mount":    mountCommand,
	"remove":   removeCommand,
	"seed":     seedCommand,
	"serve":    serveCommand,
	"set-rate": setRateCommand,
	"status":   statusCommand,
	"unmount":  unmountCommand,
	"version":  versionCommand,
}

// errUsage marks an error caused by the command line; main prints usage too.
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, tty: logfmt.IsTerminal(os.Stderr), journal: logfmt.IsJournal(os.Stderr)}
	stopProfile := startProfile(os.Getenv("SWARMFS_CPUPROFILE"), e.stderr)
	code := run(ctx, e, os.Args[1:])
	stopProfile()
	os.Exit(code)
}

// startProfile writes a CPU profile of the whole run to path when path is
// set (SWARMFS_CPUPROFILE, for developers: go tool pprof reads it).
func startProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "swarmfs: SWARMFS_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printHelp(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				printCommandHelp(e.stdout, args[1], c)
				return 0
			}
		}
		printHelp(e.stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "swarmfs: unknown command %q (try 'swarmfs help')\n", name)
		return 2
	}
	err := c.run(ctx, e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(e.stdout, name, c)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "swarmfs %s: %s\n", name, printableLines(err.Error()))
		fmt.Fprintf(e.stderr, "usage: swarmfs %s %s\n", name, c.usage)
		return 2
	default:
		fmt.Fprintf(e.stderr, "swarmfs %s: %s\n", name, printableLines(err.Error()))
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "swarmfs mounts BitTorrent content as a read-only filesystem.")
	fmt.Fprintln(w, "\nUsage: swarmfs COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'swarmfs help COMMAND' for a command's flags and examples.")
}

func printCommandHelp(w io.Writer, name string, c *command) {
	fmt.Fprintf(w, "swarmfs %s: %s\n\nUsage: swarmfs %s %s\n", name, c.summary, name, c.usage)
	if fset := c.flags(); fset != nil {
		fmt.Fprintln(w, "\nFlags:")
		fset.SetOutput(w)
		fset.PrintDefaults()
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, ex := range c.examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}

// flags returns the command's flag set for help output, or nil. Commands
// build their flag set with newFlagSet so help and parsing agree.
func (c *command) flags() *flag.FlagSet {
	if c.flagSet == nil {
		return nil
	}
	return c.flagSet()
}
