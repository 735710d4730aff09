package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
)

// maxPollFailures is how many polls in a row may fail with a transient
// error (unreachable, 5xx) before --wait gives up. The control path can be
// cut by the very fault being tested; chaosd keeps the run going anyway.
const maxPollFailures = 30

// RunOptions are the options of "chaosctl run".
type RunOptions struct {
	Name string
	// File is an ad hoc experiment file (-f): validated here, then sent
	// whole to chaosd, which validates it again and runs it.
	File   string
	Wait   bool
	DryRun bool
	// Force starts the run inside a freeze window.
	Force  bool
	Output string
	Poll   time.Duration
}

func (a *app) newRunCommand() *cobra.Command {
	o := &RunOptions{}
	cmd := &cobra.Command{
		Use:   "run NAME | -f FILE | suite NAME",
		Short: "Start a run of an experiment, optionally waiting for its verdict",
		Long: `Start a run of the experiment NAME of chaosd's library, or of the ad hoc experiment in FILE.

With -f FILE the file is first validated here exactly as 'chaosctl validate -f FILE' does
(errors on stderr as FILE:LINE:COL: field.path: message, exit 2; nothing is sent). chaosd then
validates it again with the same loader and runs it without adding it to its library; the run
record keeps the whole file (describe run -o yaml shows it under adHoc.spec). This needs a
credential with scope adhoc (or admin; in Kubernetes the RBAC verb adhoc). An ad hoc experiment
may not take the name of a library experiment (chaosd answers 422, exit 2: rename it), and its
schedule, if any, is ignored: it runs once, now.

Without --wait, print the run ID (or the run as JSON) and exit 0.

With --wait, follow the run: live progress (phase, elapsed time, current probe values) goes
to stderr, redrawn in place on a terminal and as plain lines otherwise (one per phase change,
probe values at most every 5s). At the end the report goes to stdout and the exit code is the
verdict's: 0 pass, 1 fail or aborted, 3 error.

Ctrl-C while waiting stops waiting only: the run goes on in chaosd and is NOT aborted, because
a run is owned by chaosd (which reverts its faults on its own) and an interrupted terminal
should not change the experiment. Abort it explicitly with 'chaosctl abort ID'.

'chaosctl run suite NAME' runs a suite (a game day: experiments in order); see its --help.`,
		Example: `  chaosctl run partition-c1-c2
  chaosctl run partition-c1-c2 --wait
  chaosctl run partition-c1-c2 --wait -o json > run.json
  chaosctl run -f my-experiment.yaml --wait`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case o.File != "" && len(args) > 0:
				return usageErrorf("run takes an experiment NAME or -f FILE, not both (got %q and -f %s)", args, o.File)
			case o.File == "" && len(args) != 1:
				return usageErrorf("run needs exactly one experiment NAME, or -f FILE (got %d arguments)", len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completeExperiments,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().StringVarP(&o.File, "filename", "f", "", "run the ad hoc experiment in this file (validated here and by chaosd; needs scope adhoc)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	cmd.Flags().BoolVarP(&o.Wait, "wait", "w", false, "wait for the verdict, showing progress on stderr")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "ask chaosd for a dry run (no fault is injected)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "start the run even inside a freeze window (the record names the window)")
	cmd.Flags().DurationVar(&o.Poll, "poll", time.Second, "how often --wait asks chaosd for the run")
	addReportOutputFlag(cmd, &o.Output)
	cmd.AddCommand(a.newRunSuiteCommand())
	return cmd
}

// Complete fills o from the arguments.
func (o *RunOptions) Complete(args []string) error {
	if len(args) > 0 {
		o.Name = args[0]
	}
	return nil
}

// Validate checks o without side effects.
func (o *RunOptions) Validate() error {
	if o.Name == "" && o.File == "" {
		return usageErrorf("experiment NAME is empty")
	}
	if o.Poll < 100*time.Millisecond {
		return usageErrorf("--poll %s is too short: use at least 100ms", o.Poll)
	}
	if o.Output == outputJUnit && !o.Wait {
		return usageErrorf("-o junit reports a verdict: add --wait")
	}
	return validateReportOutput(o.Output)
}

// Run starts the run and, with --wait, follows it to its verdict.
func (o *RunOptions) Run(ctx context.Context, a *app) error {
	req := api.StartRequest{Experiment: o.Name, DryRun: o.DryRun, Force: o.Force}
	what := o.Name
	if o.File != "" {
		spec, err := a.adHocSpec(o.File)
		if err != nil {
			return err
		}
		req.Spec, req.File, what = spec, o.File, "ad hoc experiment "+o.File
	}
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	run, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) {
		return c.StartRun(ctx, req)
	})
	if err != nil {
		return wrapf(err, "start %s", what)
	}
	if !o.Wait {
		if isData(o.Output) {
			return writeData(a.streams.Out, o.Output, run)
		}
		_, err := fmt.Fprintln(a.streams.Out, run.ID)
		return err
	}

	prog := newProgress(a.streams.ErrOut, a.isTerminal(a.streams.ErrOut), a.now)
	prog.started(run)
	run, err = o.wait(ctx, a, c, conn, run, prog)
	prog.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for run %s; it goes on in chaosd (chaosctl does not abort on Ctrl-C)\n"+
				"  follow it: chaosctl describe run %s\n"+
				"  abort it:  chaosctl abort %s", run.ID, run.ID, run.ID)
		}
		return wrapf(err, "wait for run %s", run.ID)
	}

	if err := writeReport(a.streams.Out, o.Output, run); err != nil {
		return err
	}
	if run.Verdict != api.VerdictPass || run.Interrupted {
		return &VerdictError{Run: run}
	}
	return nil
}

// adHocSpec validates an ad hoc experiment file as "chaosctl validate"
// does (same errors, on stderr) and returns its text. A file that is not
// valid is never sent.
func (a *app) adHocSpec(file string) (string, error) {
	if err := a.validateFiles([]string{file}); err != nil {
		printSpecErrors(a.streams.ErrOut, err)
		return "", &invalidSpecError{invalid: 1, total: 1}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageErrorf("read %s: %w", file, err)
	}
	if len(b) > api.MaxAdHocSpecBytes {
		return "", usageErrorf("%s: %d bytes is too large for an ad hoc experiment (chaosd takes at most %d)", file, len(b), api.MaxAdHocSpecBytes)
	}
	return string(b), nil
}

// wait polls the run until it is done. It returns the last run seen.
func (o *RunOptions) wait(ctx context.Context, a *app, c *client.Client, conn connection, run api.Run, prog *progress) (api.Run, error) {
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	failures := 0
	for !finished(run) {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-tick.C:
		}
		next, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) { return c.Run(ctx, run.ID) })
		switch {
		case err == nil:
			failures = 0
			run = next
			prog.update(run)
			continue
		case ctx.Err() != nil:
			return run, ctx.Err()
		case !transient(err) || failures+1 >= maxPollFailures:
			return run, err
		}
		failures++
		prog.warn(fmt.Sprintf("poll failed (%d/%d), retrying: %v", failures, maxPollFailures, err))
	}
	return run, nil
}

func finished(r api.Run) bool { return r.Phase == api.PhaseDone || r.Verdict != "" }

// transient errors are worth another poll.
func transient(err error) bool {
	var ae *api.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return errors.Is(err, api.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded)
}

// complete offers what list fetches from chaosd for a command's first
// argument (best effort: nothing, quietly, when chaosd cannot answer
// within 2s), never file names.
func (a *app) complete(cmd *cobra.Command, args []string, extra cobra.ShellCompDirective,
	list func(ctx context.Context, c *client.Client) ([]string, error),
) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, _, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	names, err := list(ctx, c)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return names, cobra.ShellCompDirectiveNoFileComp | extra
}

// completeExperiments completes experiment names from chaosd.
func (a *app) completeExperiments(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.complete(cmd, args, 0, func(ctx context.Context, c *client.Client) ([]string, error) {
		exps, err := c.Experiments(ctx)
		names := make([]string, 0, len(exps))
		for _, e := range exps {
			names = append(names, e.Name+"\t"+oneLine(e.Description))
		}
		return names, err
	})
}
