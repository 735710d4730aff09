package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/daemon/runquery"
)

func (a *app) newDescribeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe RESOURCE",
		Short: "Show the report of a run, or an experiment and what a run of it would touch now",
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("describe needs a resource: run ID, suite-run ID or experiment NAME")
			}
			return usageErrorf("unknown resource %q: use run ID, suite-run ID or experiment NAME", args[0])
		},
	}
	cmd.AddCommand(a.newDescribeRunCommand(), a.newDescribeExperimentCommand(), a.newDescribeSuiteRunCommand())
	return cmd
}

// DescribeRunOptions are the options of "chaosctl describe run".
type DescribeRunOptions struct {
	ID     string
	Output string
}

func (a *app) newDescribeRunCommand() *cobra.Command {
	o := &DescribeRunOptions{}
	cmd := &cobra.Command{
		Use:   "run ID",
		Short: "Print the report of a run (its verdict does not change the exit code)",
		Example: `  chaosctl describe run r-0001
  chaosctl describe run r-0001 -o json`,
		Aliases:           []string{"runs"},
		Args:              oneID("describe run"),
		ValidArgsFunction: a.completeRunIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			if err := validateReportOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	addReportOutputFlag(cmd, &o.Output)
	return cmd
}

// Run prints the report.
func (o *DescribeRunOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	run, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) { return c.Run(ctx, o.ID) })
	if err != nil {
		return wrapf(err, "get run %s", o.ID)
	}
	if err := writeReport(a.streams.Out, o.Output, run); err != nil {
		return err
	}
	if o.Output == outputText {
		_, err = fmt.Fprint(a.streams.Out, reportHint(run.ID))
	}
	return err
}

func oneID(verb string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("%s needs exactly one run ID (got %d arguments)", verb, len(args))
		}
		return nil
	}
}

// DescribeExperimentOptions are the options of "chaosctl describe experiment".
type DescribeExperimentOptions struct {
	Name   string
	Output string
}

func (a *app) newDescribeExperimentCommand() *cobra.Command {
	o := &DescribeExperimentOptions{}
	cmd := &cobra.Command{
		Use:     "experiment NAME",
		Aliases: []string{"experiments", "exp"},
		Short:   "Show an experiment and what a run started now would touch (targets resolved now)",
		Long: `Show an experiment of chaosd's library: its duration, probes and RTO target, its targets
resolved now by chaosd (the nodes or service instances each selects, and how many of them the
blast radius would hit), and for every fault where it would land and whether that node's agent
answers and can run the fault's kind: the preview of a dry run, without running anything
(GET /v1/experiments/NAME/preview). Problems that would stop a run at preflight are listed
last. Exit 0 whatever they are: describing worked.`,
		Example: `  chaosctl describe experiment partition-c1-c2
  chaosctl describe experiment partition-c1-c2 -o yaml`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("describe experiment needs exactly one experiment NAME (got %d arguments)", len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completeExperiments,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if err := validateOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run asks chaosd for the preview and prints it.
func (o *DescribeExperimentOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	p, err := call(ctx, a, conn, func(ctx context.Context) (api.ExperimentPreview, error) { return c.Preview(ctx, o.Name) })
	if err != nil {
		return wrapf(err, "describe experiment %s", o.Name)
	}
	if isData(o.Output) {
		return writeData(a.streams.Out, o.Output, p)
	}
	return printPreview(a.streams.Out, p)
}

// printPreview writes an experiment preview for people.
func printPreview(out io.Writer, p api.ExperimentPreview) error {
	w := &errWriter{w: out}
	e := p.Experiment
	secs := func(s float64) string { return (time.Duration(s * float64(time.Second))).String() }
	w.printf("Name:         %s\n", e.Name)
	if e.Description != "" {
		w.printf("Description:  %s\n", oneLine(e.Description))
	}
	w.printf("Source:       %s\n", orDash(e.Source))
	if e.Schedule != "" {
		sched := e.Schedule
		if e.TimeZone != "" {
			sched += " (" + e.TimeZone + ")"
		}
		if e.NextRun != nil {
			sched += ", next " + e.NextRun.Format(time.RFC3339)
		}
		w.printf("Schedule:     %s\n", sched)
	}
	w.printf("Duration:     %s, probe interval %s, RTO target %s\n", secs(p.DurationSeconds), secs(p.ProbeIntervalSeconds), secs(p.RTOSeconds))

	w.printf("\nProbes:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tNAME\tCONDITION\tQUERY")
	for _, pr := range p.Probes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", pr.Phase, pr.Name, pr.Condition, oneLine(pr.Query))
	}
	_ = tw.Flush()

	w.printf("\nTargets (resolved %s):\n", p.ResolvedAt.UTC().Format(time.RFC3339))
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tCLUSTER\tSELECTS\tMODE\tWOULD HIT\tELIGIBLE NOW")
	for _, t := range p.Targets {
		var sel []string
		if len(t.Nodes) > 0 {
			sel = append(sel, "nodes "+strings.Join(t.Nodes, ","))
		}
		if t.Selector != "" {
			sel = append(sel, "labels "+t.Selector)
		}
		if t.Service != "" {
			sel = append(sel, "service "+t.Service)
		}
		hit := fmt.Sprintf("%d of %d", t.Picked, len(t.Eligible))
		if t.Mode != "all" && t.Picked < len(t.Eligible) {
			hit += " (random)"
		}
		eligible := strings.Join(t.Eligible, ", ")
		if t.Error != "" {
			eligible = "ERROR: " + oneLine(t.Error)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Cluster, orDash(strings.Join(sel, "; ")), t.Mode, hit, orDash(eligible))
	}
	_ = tw.Flush()

	w.printf("\nA run started now would touch:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "  FAULT\tKIND\tTARGET\tON\tAGENT\tPARAMETERS")
	for _, f := range p.Faults {
		params := "-"
		var compact bytes.Buffer
		if json.Compact(&compact, f.Params) == nil && compact.Len() > 0 {
			params = compact.String()
		}
		if len(f.On) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Target, "-", "-", params)
		}
		for i, pl := range f.On {
			on := pl.Cluster + "/" + pl.Node
			if pl.Instance != "" {
				on += " (" + pl.Instance + ")"
			}
			ready := "ready"
			if !pl.Ready {
				ready = "NOT READY"
			}
			name, kind, target := f.Name, f.Kind, f.Target
			if i > 0 {
				name, kind, target, params = "", "", "", ""
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", name, kind, target, on, ready, params)
		}
	}
	_ = tw.Flush()

	if len(p.Problems) == 0 {
		w.printf("\nProblems:     none (targets resolve and every agent can run its faults; Prometheus is checked when a run starts)\n")
	} else {
		w.printf("\nProblems (a run started now would stop at preflight):\n")
		for _, pr := range p.Problems {
			w.printf("  - %s\n", oneLine(pr))
		}
	}
	return w.err
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return len(b), nil
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// completeRunIDs completes run IDs from chaosd, newest first (best
// effort: nothing when chaosd cannot be asked).
func (a *app) completeRunIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.complete(cmd, args, cobra.ShellCompDirectiveKeepOrder, func(ctx context.Context, c *client.Client) ([]string, error) {
		runs, err := c.ListRuns(ctx, runquery.Query{Limit: maxCompletedRuns}.Values())
		ids := make([]string, 0, len(runs))
		for _, r := range runs {
			ids = append(ids, r.ID+"\t"+oneLine(fmt.Sprintf("%s %s %s", r.Experiment, r.Phase, r.Verdict)))
		}
		return ids, err
	})
}

// maxCompletedRuns is how many of the newest runs completion offers.
const maxCompletedRuns = 100
