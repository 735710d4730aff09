// Package cli is chaosctl, the command-line client of chaosd: it starts
// runs and follows them live, lists runs and experiments, prints the human
// report, aborts runs and validates experiment files.
//
// Every verb is a cobra command built by a constructor from the app value
// (streams, environment, clock); nothing is package-level, and commands
// write only to the given streams, so tests run them against buffers.
// Errors are printed once and mapped to an exit code in one place: Run.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/library"
)

// IOStreams are the standard streams a command may use.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Run runs chaosctl with args (without the program name) and returns the
// process exit code (see ExitCode). It is the only place that prints an
// error.
func Run(ctx context.Context, args []string, streams IOStreams) int {
	return newApp(streams).run(ctx, args)
}

// app is what every command needs from the process. Tests build one with
// their own environment, clock and validator.
type app struct {
	streams   IOStreams
	lookupEnv func(string) (string, bool)
	now       func() time.Time
	// isTerminal reports whether w is a terminal (live progress redraws).
	isTerminal func(w io.Writer) bool
	// validateFiles validates experiment and suite files (validateWithLibrary).
	validateFiles func(paths []string) error

	global GlobalOptions
	// started is set once cobra has parsed flags and arguments and handed
	// over to a command: any error before that is a usage error.
	started bool
}

func newApp(streams IOStreams) *app {
	return &app{
		streams:       streams,
		lookupEnv:     os.LookupEnv,
		now:           time.Now,
		isTerminal:    isTerminal,
		validateFiles: validateWithLibrary,
	}
}

// validateWithLibrary validates experiment and suite files; suites are
// checked against the experiments among the files or, when there are
// none, against the built-in library (chaosd's default).
func validateWithLibrary(paths []string) error {
	return experiments.ValidateFilesAgainst(paths, library.Load)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.newRootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if !a.started {
		err = asUsage(err)
	}
	fmt.Fprintf(a.streams.ErrOut, "chaosctl: %s\n", Message(err))
	if isUsage(err) && cmd != nil {
		fmt.Fprintf(a.streams.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ExitCode(err)
}

// NewRootCommand returns the chaosctl command tree writing to streams. Run
// is the usual entry point; this is for embedding and documentation tools.
func NewRootCommand(streams IOStreams) *cobra.Command {
	return newApp(streams).newRootCommand()
}

func (a *app) newRootCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaosctl",
		Short: "Run and inspect chaos experiments on chaosd",
		Long: `chaosctl talks to chaosd, the chaos-engineering daemon: it starts experiment runs and
follows them live, lists runs and experiments, prints run reports, aborts runs and
validates experiment files.

Exit codes: 0 pass / success, 1 the system under test failed the experiment (verdict
fail or aborted), 2 invalid usage or invalid spec, 3 chaosctl could not do its job
(daemon unreachable, auth, server error, verdict error or interrupted run).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			a.started = true
			return nil
		},
	}
	cmd.SetIn(a.streams.In)
	cmd.SetOut(a.streams.Out)
	cmd.SetErr(a.streams.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })
	a.global.AddFlags(cmd)

	cmd.AddCommand(
		a.newRunCommand(),
		a.newGetCommand(),
		a.newDescribeCommand(),
		a.newReportCommand(),
		a.newAbortCommand(),
		a.newHaltCommand(),
		a.newPauseCommand(true),
		a.newPauseCommand(false),
		a.newValidateCommand(),
		a.newVersionCommand(),
		a.newConfigCommand(),
	)
	return cmd
}
