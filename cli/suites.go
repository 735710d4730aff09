package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
	"github.com/chaosd/chaosd/daemon/client"
)

// RunSuiteOptions are the options of "chaosctl run suite".
type RunSuiteOptions struct {
	Name   string
	Wait   bool
	DryRun bool
	Force  bool
	Output string
	Poll   time.Duration
}

func (a *app) newRunSuiteCommand() *cobra.Command {
	o := &RunSuiteOptions{}
	cmd := &cobra.Command{
		Use:   "suite NAME",
		Short: "Start a run of a suite (a game day: experiments in order), optionally waiting for its verdict",
		Long: `Start a run of the suite NAME of chaosd's library: its experiments run one after the other
as one unit with one record (chaosctl describe suite-run ID), pausing between them at least the
next experiment's steady-state baseline, and (stopOnFailure, the default) stopping at the first
experiment whose verdict is not pass.

Without --wait, print the suite run ID (or the suite run as JSON/YAML) and exit 0.

With --wait, follow the suite: which experiment runs, its phase, the pauses go to stderr; at the
end the suite's report goes to stdout (-o junit: ONE JUnit XML file with a test suite per
experiment and a test case per experiment and per criterion) and the exit code is the suite's
verdict's: 0 every experiment passed, 1 fail or aborted, 3 error or interrupted.

Ctrl-C stops waiting only; abort the suite with 'chaosctl abort ID' (the current experiment is
aborted and the rest never start). 'chaosctl halt' stops every suite too.`,
		Example: `  chaosctl run suite game-day
  chaosctl run suite game-day --wait -o junit > game-day.xml
  chaosctl run suite game-day --dry-run --wait`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("run suite needs exactly one suite NAME (got %d arguments)", len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completeSuites,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().BoolVarP(&o.Wait, "wait", "w", false, "wait for the suite's verdict, showing progress on stderr")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "run every experiment as a dry run (nothing injected, no pauses)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "start the suite even inside a freeze window (the record names the window)")
	cmd.Flags().DurationVar(&o.Poll, "poll", time.Second, "how often --wait asks chaosd for the suite run")
	addReportOutputFlag(cmd, &o.Output)
	return cmd
}

// Validate checks o without side effects.
func (o *RunSuiteOptions) Validate() error {
	if strings.TrimSpace(o.Name) == "" {
		return usageErrorf("suite NAME is empty")
	}
	if o.Poll < 100*time.Millisecond {
		return usageErrorf("--poll %s is too short: use at least 100ms", o.Poll)
	}
	if o.Output == outputJUnit && !o.Wait {
		return usageErrorf("-o junit reports a verdict: add --wait")
	}
	return validateReportOutput(o.Output)
}

// Run starts the suite run and, with --wait, follows it to its verdict.
func (o *RunSuiteOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	sr, err := call(ctx, a, conn, func(ctx context.Context) (api.SuiteRun, error) {
		return c.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: o.Name, DryRun: o.DryRun, Force: o.Force})
	})
	if err != nil {
		return wrapf(err, "start suite %s", o.Name)
	}
	if !o.Wait {
		if isData(o.Output) {
			return writeData(a.streams.Out, o.Output, sr)
		}
		_, err := fmt.Fprintln(a.streams.Out, sr.ID)
		return err
	}
	dry := ""
	if sr.DryRun {
		dry = " (dry run)"
	}
	fmt.Fprintf(a.streams.ErrOut, "suite run %s of %s started%s: %d experiments; waiting for the verdict (Ctrl-C stops waiting, not the suite)\n",
		sr.ID, sr.Suite, dry, len(sr.Entries))
	sp := &suiteProgress{a: a, start: a.now()}
	sr, err = o.wait(ctx, a, c, conn, sr, sp)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for suite run %s; it goes on in chaosd (chaosctl does not abort on Ctrl-C)\n"+
				"  follow it: chaosctl describe suite-run %s\n"+
				"  abort it:  chaosctl abort %s", sr.ID, sr.ID, sr.ID)
		}
		return wrapf(err, "wait for suite run %s", sr.ID)
	}
	if err := a.writeSuiteReport(ctx, c, conn, o.Output, sr); err != nil {
		return err
	}
	if sr.Verdict != api.VerdictPass || sr.Interrupted {
		return &SuiteVerdictError{Run: sr}
	}
	return nil
}

// wait polls the suite run until it is done.
func (o *RunSuiteOptions) wait(ctx context.Context, a *app, c *client.Client, conn connection, sr api.SuiteRun, sp *suiteProgress) (api.SuiteRun, error) {
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	failures := 0
	sp.update(sr)
	for sr.Phase != api.SuiteDone {
		select {
		case <-ctx.Done():
			return sr, ctx.Err()
		case <-tick.C:
		}
		next, err := call(ctx, a, conn, func(ctx context.Context) (api.SuiteRun, error) { return c.SuiteRun(ctx, sr.ID) })
		switch {
		case err == nil:
			failures = 0
			sr = next
			sp.update(sr)
			continue
		case ctx.Err() != nil:
			return sr, ctx.Err()
		case !transient(err) || failures+1 >= maxPollFailures:
			return sr, err
		}
		failures++
		fmt.Fprintf(a.streams.ErrOut, "  poll failed (%d/%d), retrying: %v\n", failures, maxPollFailures, err)
	}
	return sr, nil
}

// suiteProgress prints one line on stderr whenever the suite moves: the
// experiment that starts, its phase changes, its verdict, each pause.
type suiteProgress struct {
	a     *app
	start time.Time
	last  string
}

func (p *suiteProgress) update(sr api.SuiteRun) {
	line := ""
	switch c := sr.Current; {
	case sr.Phase == api.SuiteDone:
		line = "suite " + report.SuiteVerdict(sr)
	case c >= 0 && c < len(sr.Entries) && sr.Phase == api.SuitePausing:
		e := sr.Entries[c]
		until := ""
		if e.NotBefore != nil {
			until = fmt.Sprintf(" (%s)", e.NotBefore.Sub(p.a.now()).Round(time.Second))
		}
		line = fmt.Sprintf("[%d/%d] pausing before %s%s: its steady-state baseline must not see the previous fault", c+1, len(sr.Entries), e.Experiment, until)
	case c >= 0 && c < len(sr.Entries):
		e := sr.Entries[c]
		line = fmt.Sprintf("[%d/%d] %s: run %s, phase %s", c+1, len(sr.Entries), e.Experiment, orDash(e.RunID), orDash(string(e.Phase)))
	default:
		line = "suite " + string(sr.Phase) + ": the first experiment starts"
	}
	// The pause's remaining time changes every poll: compare without it.
	key := line
	if i := strings.Index(key, " ("); i >= 0 && sr.Phase == api.SuitePausing {
		key = key[:i]
	}
	if key == p.last {
		return
	}
	p.last = key
	fmt.Fprintf(p.a.streams.ErrOut, "+%s %s\n", report.Seconds(p.a.now().Sub(p.start).Seconds()), line)
}

// writeSuiteReport prints a finished suite run in the chosen format; for
// JUnit it fetches every experiment's run record.
func (a *app) writeSuiteReport(ctx context.Context, c *client.Client, conn connection, format string, sr api.SuiteRun) error {
	switch format {
	case outputJSON, outputYAML:
		return writeData(a.streams.Out, format, sr)
	case outputJUnit:
		runs := map[string]api.Run{}
		for _, e := range sr.Entries {
			if e.RunID == "" {
				continue
			}
			run, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) { return c.Run(ctx, e.RunID) })
			if err != nil {
				fmt.Fprintf(a.streams.ErrOut, "chaosctl: run %s of the suite: %s (its JUnit test suite says so)\n", e.RunID, Message(err))
				continue
			}
			runs[e.RunID] = run
		}
		return report.SuiteJUnit(a.streams.Out, sr, runs)
	}
	return report.SuiteText(a.streams.Out, sr)
}

// SuiteVerdictError is returned when a suite run ended with a verdict
// other than pass; its exit code is that verdict's (see ExitCode).
type SuiteVerdictError struct {
	Run api.SuiteRun
}

func (e *SuiteVerdictError) Error() string {
	return fmt.Sprintf("suite run %s of %s: %s", e.Run.ID, e.Run.Suite, report.SuiteVerdict(e.Run))
}

// completeSuites completes suite names from chaosd.
func (a *app) completeSuites(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.complete(cmd, args, 0, func(ctx context.Context, c *client.Client) ([]string, error) {
		suites, err := c.Suites(ctx)
		names := make([]string, 0, len(suites))
		for _, s := range suites {
			names = append(names, s.Name+"\t"+oneLine(s.Description))
		}
		return names, err
	})
}

func (a *app) newGetSuitesCommand() *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:     "suites",
		Aliases: []string{"suite"},
		Short:   "List the suites chaosd knows (their experiments, stopOnFailure, pause, schedule)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			c, conn, err := a.client()
			if err != nil {
				return err
			}
			suites, err := call(cmd.Context(), a, conn, c.Suites)
			if err != nil {
				return wrapf(err, "list suites")
			}
			if isData(o.Output) {
				if suites == nil {
					suites = []api.SuiteInfo{}
				}
				return writeData(a.streams.Out, o.Output, suites)
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tEXPERIMENTS\tON FAILURE\tPAUSE\tSCHEDULE\tNEXT RUN")
			for _, s := range suites {
				onFail := "stop"
				if !s.StopOnFailure {
					onFail = "go on"
				}
				pause := s.Pause
				if pause == "" {
					pause = "auto (baseline)"
				}
				schedule := orDash(s.Schedule)
				if s.Schedule != "" && s.TimeZone != "" {
					schedule += " (" + s.TimeZone + ")"
				}
				next := "-"
				if s.NextRun != nil {
					next = s.NextRun.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, strings.Join(s.Experiments, ","), onFail, pause, schedule, next)
			}
			return tw.Flush()
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

func (a *app) newGetSuiteRunsCommand() *cobra.Command {
	o := &GetOptions{}
	var suite string
	cmd := &cobra.Command{
		Use:     "suite-runs",
		Aliases: []string{"suite-run", "suiteruns"},
		Short:   "List suite runs, newest first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			c, conn, err := a.client()
			if err != nil {
				return err
			}
			runs, err := call(cmd.Context(), a, conn, c.SuiteRuns)
			if err != nil {
				return wrapf(err, "list suite runs")
			}
			out := []api.SuiteRun{}
			for _, r := range runs {
				if suite == "" || r.Suite == suite {
					out = append(out, r)
				}
			}
			if isData(o.Output) {
				return writeData(a.streams.Out, o.Output, out)
			}
			now := a.now()
			tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tSUITE\tTRIGGER\tPHASE\tVERDICT\tPASSED\tAGE")
			for _, r := range out {
				passed := 0
				for _, e := range r.Entries {
					if e.Verdict == api.VerdictPass {
						passed++
					}
				}
				verdict := orDash(string(r.Verdict))
				if r.Interrupted {
					verdict += " (interrupted)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.Suite, r.Trigger, r.Phase, verdict, passed, len(r.Entries), age(now, r.CreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&suite, "suite", "", "only runs of this suite")
	addOutputFlag(cmd, &o.Output)
	return cmd
}

func (a *app) newDescribeSuiteRunCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "suite-run ID",
		Aliases: []string{"suite-runs", "suiterun"},
		Short:   "Print the report of a suite run (its verdict does not change the exit code)",
		Example: `  chaosctl describe suite-run s-20261125-100000-a1b2c3
  chaosctl describe suite-run s-20261125-100000-a1b2c3 -o junit > game-day.xml`,
		Args: oneID("describe suite-run"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateReportOutput(output); err != nil {
				return err
			}
			c, conn, err := a.client()
			if err != nil {
				return err
			}
			id := args[0]
			sr, err := call(cmd.Context(), a, conn, func(ctx context.Context) (api.SuiteRun, error) { return c.SuiteRun(ctx, id) })
			if err != nil {
				return wrapf(err, "get suite run %s", id)
			}
			return a.writeSuiteReport(cmd.Context(), c, conn, output, sr)
		},
	}
	addReportOutputFlag(cmd, &output)
	return cmd
}

// abortSuiteRun asks chaosd to abort a suite run (abort with an s- ID).
func (o *AbortOptions) abortSuiteRun(ctx context.Context, a *app, c *client.Client, conn connection) error {
	sr, err := call(ctx, a, conn, func(ctx context.Context) (api.SuiteRun, error) { return c.AbortSuiteRun(ctx, o.ID) })
	if err != nil {
		return wrapf(err, "abort suite run %s", o.ID)
	}
	if isData(o.Output) {
		return writeData(a.streams.Out, o.Output, sr)
	}
	current := "no experiment running"
	if i := sr.Current; i >= 0 && i < len(sr.Entries) {
		current = fmt.Sprintf("%s (run %s) aborted", sr.Entries[i].Experiment, orDash(sr.Entries[i].RunID))
	}
	_, err = fmt.Fprintf(a.streams.Out, "suite run %s: abort requested: %s; no further experiment starts\n", sr.ID, current)
	return err
}
