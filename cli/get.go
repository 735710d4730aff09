package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
	"github.com/chaosd/chaosd/daemon/runquery"
)

func (a *app) newGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get RESOURCE",
		Short: "List runs, experiments, schedules, agents, suites or suite runs",
		Example: `  chaosctl get runs
  chaosctl get experiments -o json
  chaosctl get agents`,
		// Runnable so that "get" and "get foo" are usage errors, not help.
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("get needs a resource: runs, experiments, schedules, agents, suites or suite-runs")
			}
			return usageErrorf("unknown resource %q: use runs, experiments, schedules, agents, suites or suite-runs", args[0])
		},
	}
	cmd.AddCommand(a.newGetRunsCommand(), a.newGetExperimentsCommand(), a.newGetAgentsCommand(), a.newGetSchedulesCommand(),
		a.newGetSuitesCommand(), a.newGetSuiteRunsCommand())
	return cmd
}

// GetOptions are the options of "chaosctl get runs|experiments".
type GetOptions struct {
	Output string
}

// Validate checks o without side effects.
func (o *GetOptions) Validate() error { return validateOutput(o.Output) }

// GetRunsOptions are the options of "chaosctl get runs".
type GetRunsOptions struct {
	Output   string
	Selector string
	Since    string
	Limit    int
	Watch    bool
	Poll     time.Duration

	query runquery.Query
}

func (a *app) newGetRunsCommand() *cobra.Command {
	o := &GetRunsOptions{}
	cmd := &cobra.Command{
		Use:     "runs",
		Aliases: []string{"run"},
		Short:   "List runs, newest first",
		Long: `List runs, newest first: ID EXPERIMENT TRIGGER PHASE VERDICT RTO AGE.

--selector (-l) filters with a label selector over each run's fields, in kubectl's syntax:
experiment, verdict, trigger (manual, schedule), phase, adhoc, dryRun and interrupted
(true/false), e.g. -l experiment=partition-c1-c2,verdict!=pass or -l 'verdict in (fail,aborted)'.
--since keeps runs created within a duration (30m, 24h, 7d) and --limit the newest N.
chaosd filters (GET /v1/runs?selector=&since=&limit=), so a long history is not shipped.

--watch (-w) prints the list, then every run that appears or changes (phase, verdict, RTO),
one row each, as kubectl get -w does, polling chaosd every --poll; it ends on Ctrl-C
(exit 0). With -o json or yaml each change is one document (YAML documents separated by ---).`,
		Example: `  chaosctl get runs -l experiment=partition-c1-c2 --since 24h
  chaosctl get runs -l verdict=fail,trigger=schedule --limit 5 -o yaml
  chaosctl get runs -w`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	f := cmd.Flags()
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector over experiment, verdict, trigger, phase, adhoc, dryRun, interrupted, suiteRun (e.g. experiment=NAME,verdict=fail or suiteRun=s-...)")
	f.StringVar(&o.Since, "since", "", "only runs created within this duration (e.g. 30m, 24h, 7d)")
	f.IntVar(&o.Limit, "limit", 0, "only the newest N runs (after the other filters; 0: all)")
	f.BoolVarP(&o.Watch, "watch", "w", false, "after the list, print every run that appears or changes, until Ctrl-C")
	f.DurationVar(&o.Poll, "poll", 2*time.Second, "how often --watch asks chaosd")
	_ = cmd.RegisterFlagCompletionFunc("selector", cobra.FixedCompletions(
		[]string{"experiment=", "verdict=", "trigger=", "phase=", "adhoc=true", "dryRun=true", "interrupted=true"}, cobra.ShellCompDirectiveNoSpace))
	return cmd
}

// Validate checks o without side effects, with the parser chaosd uses.
func (o *GetRunsOptions) Validate() error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	var err error
	if o.Selector != "" {
		if o.query.Selector, err = runquery.ParseSelector(o.Selector); err != nil {
			return usageErrorf("--%v", err)
		}
	}
	if o.Since != "" {
		if o.query.Since, err = runquery.ParseSince(o.Since); err != nil {
			return usageErrorf("--%v", err)
		}
	}
	switch {
	case o.Limit < 0 || o.Limit > runquery.MaxLimit:
		return usageErrorf("--limit %d: use 1 to %d (0: all)", o.Limit, runquery.MaxLimit)
	case o.Watch && o.Poll < 100*time.Millisecond:
		return usageErrorf("--poll %s is too short: use at least 100ms", o.Poll)
	}
	o.query.Limit = o.Limit
	return nil
}

// Run lists runs, then with --watch follows them.
func (o *GetRunsOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	list := func(ctx context.Context) ([]api.Run, error) { return c.ListRuns(ctx, o.query.Values()) }
	runs, err := call(ctx, a, conn, list)
	if err != nil {
		return wrapf(err, "list runs")
	}
	if runs == nil {
		runs = []api.Run{}
	}
	if !o.Watch {
		if isData(o.Output) {
			return writeData(a.streams.Out, o.Output, runs)
		}
		return printRuns(a.streams.Out, a.now(), runs, true)
	}
	return o.watch(ctx, a, conn, list, runs)
}

// watch prints the first list, then polls and prints every run that is
// new or changed, until ctx ends (Ctrl-C: exit 0). Polls that fail for a
// transient reason are retried with a warning on stderr, as --wait does.
func (o *GetRunsOptions) watch(ctx context.Context, a *app, conn connection, list func(context.Context) ([]api.Run, error), runs []api.Run) error {
	seen := map[string]string{}
	first := true
	emit := func(runs []api.Run) error {
		var changed []api.Run
		for i := len(runs) - 1; i >= 0; i-- { // oldest first, as they happened
			r := runs[i]
			if k := watchKey(r); seen[r.ID] != k {
				seen[r.ID] = k
				changed = append(changed, r)
			}
		}
		if first {
			// The first list newest first with its header, as without -w.
			slices.Reverse(changed)
		}
		defer func() { first = false }()
		if len(changed) == 0 && !first {
			return nil
		}
		if isData(o.Output) {
			for _, r := range changed {
				if o.Output == outputYAML {
					fmt.Fprintln(a.streams.Out, "---")
				}
				if err := writeData(a.streams.Out, o.Output, r); err != nil {
					return err
				}
			}
			return nil
		}
		return printRuns(a.streams.Out, a.now(), changed, first)
	}
	if err := emit(runs); err != nil {
		return err
	}
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		next, err := call(ctx, a, conn, list)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			failures = 0
			if err := emit(next); err != nil {
				return err
			}
			continue
		case !transient(err) || failures+1 >= maxPollFailures:
			return wrapf(err, "watch runs")
		}
		failures++
		fmt.Fprintf(a.streams.ErrOut, "chaosctl: warning: poll failed (%d/%d), retrying: %s\n", failures, maxPollFailures, oneLine(Message(err)))
	}
}

// watchKey is what --watch compares to see that a run changed.
func watchKey(r api.Run) string {
	rto := ""
	if r.RTO.MeasuredSeconds != nil {
		rto = report.Seconds(*r.RTO.MeasuredSeconds)
	}
	return fmt.Sprintf("%s|%s|%t|%s", r.Phase, r.Verdict, r.Interrupted, rto)
}

// printRuns writes runs as a table, with the header when header is set.
func printRuns(w io.Writer, now time.Time, runs []api.Run, header bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tEXPERIMENT\tTRIGGER\tPHASE\tVERDICT\tRTO\tAGE")
	}
	for _, r := range runs {
		rto := "-"
		if r.RTO.MeasuredSeconds != nil {
			rto = report.Seconds(*r.RTO.MeasuredSeconds)
		}
		verdict := orDash(string(r.Verdict))
		if r.Interrupted {
			verdict += " (interrupted)"
		}
		if r.DryRun {
			verdict += " (dry run)"
		}
		exp := r.Experiment
		if r.AdHoc != nil {
			exp += " (ad hoc)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.ID, exp, orDash(string(r.Trigger)), r.Phase, verdict, rto, age(now, r.CreatedAt))
	}
	return tw.Flush()
}

func (a *app) newGetExperimentsCommand() *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:     "experiments",
		Aliases: []string{"experiment", "exp"},
		Short:   "List the experiments chaosd knows, with their schedules",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.RunExperiments(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// RunExperiments lists experiments.
func (o *GetOptions) RunExperiments(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	exps, err := call(ctx, a, conn, c.Experiments)
	if err != nil {
		return wrapf(err, "list experiments")
	}
	if isData(o.Output) {
		if exps == nil {
			exps = []api.ExperimentInfo{}
		}
		return writeData(a.streams.Out, o.Output, exps)
	}
	now := a.now()
	tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tNEXT RUN\tSOURCE")
	for _, e := range exps {
		schedule := orDash(e.Schedule)
		if e.Schedule != "" && e.TimeZone != "" {
			schedule += " (" + e.TimeZone + ")"
		}
		next := "-"
		if e.NextRun != nil {
			next = e.NextRun.Format(time.RFC3339) + " (in " + age(*e.NextRun, now) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, schedule, next, orDash(e.Source))
	}
	return tw.Flush()
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments (got %q)", cmd.CommandPath(), args)
	}
	return nil
}

func (a *app) newGetAgentsCommand() *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:     "agents",
		Aliases: []string{"agent"},
		Short:   "List the node agents, whether they answer, and which fault kinds each node can run",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.RunAgents(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// RunAgents lists agents.
func (o *GetOptions) RunAgents(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	agents, err := call(ctx, a, conn, c.Agents)
	if err != nil {
		return wrapf(err, "list agents")
	}
	if isData(o.Output) {
		if agents == nil {
			agents = []api.AgentInfo{}
		}
		return writeData(a.streams.Out, o.Output, agents)
	}
	tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tSTATUS\tACTIVE FAULTS\tUNAVAILABLE KINDS")
	var notes []string
	for _, ag := range agents {
		status := "ready"
		if !ag.Reachable {
			status = "UNREACHABLE"
			notes = append(notes, fmt.Sprintf("%s/%s: %s", ag.Cluster, ag.Node, ag.Error))
		}
		var kinds []string
		for k, why := range ag.Unavailable {
			kinds = append(kinds, k)
			notes = append(notes, fmt.Sprintf("%s/%s cannot run %s: %s", ag.Cluster, ag.Node, k, why))
		}
		sort.Strings(kinds)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", ag.Cluster, ag.Node, status, ag.ActiveFaults, orDash(strings.Join(kinds, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sort.Strings(notes)
	for _, n := range notes {
		fmt.Fprintln(a.streams.Out, "  "+oneLine(n))
	}
	return nil
}
