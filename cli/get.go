package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
)

func (a *app) newGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get RESOURCE",
		Short: "List runs, experiments or agents",
		Example: `  chaosctl get runs
  chaosctl get experiments -o json
  chaosctl get agents`,
		// Runnable so that "get" and "get foo" are usage errors, not help.
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("get needs a resource: runs, experiments, schedules or agents")
			}
			return usageErrorf("unknown resource %q: use runs, experiments, schedules or agents", args[0])
		},
	}
	cmd.AddCommand(a.newGetRunsCommand(), a.newGetExperimentsCommand(), a.newGetAgentsCommand(), a.newGetSchedulesCommand())
	return cmd
}

// GetOptions are the options of "chaosctl get runs|experiments".
type GetOptions struct {
	Output string
}

// Validate checks o without side effects.
func (o *GetOptions) Validate() error { return validateOutput(o.Output) }

func (a *app) newGetRunsCommand() *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:     "runs",
		Aliases: []string{"run"},
		Short:   "List runs, newest first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.RunRuns(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// RunRuns lists runs.
func (o *GetOptions) RunRuns(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	runs, err := call(ctx, a, conn, c.Runs)
	if err != nil {
		return wrapf(err, "list runs")
	}
	if o.Output == outputJSON {
		if runs == nil {
			runs = []api.Run{}
		}
		return writeJSON(a.streams.Out, runs)
	}
	now := a.now()
	tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tEXPERIMENT\tTRIGGER\tPHASE\tVERDICT\tRTO\tAGE")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.ID, r.Experiment, orDash(string(r.Trigger)), r.Phase, verdict, rto, age(now, r.CreatedAt))
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
	if o.Output == outputJSON {
		if exps == nil {
			exps = []api.ExperimentInfo{}
		}
		return writeJSON(a.streams.Out, exps)
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
	if o.Output == outputJSON {
		if agents == nil {
			agents = []api.AgentInfo{}
		}
		return writeJSON(a.streams.Out, agents)
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
