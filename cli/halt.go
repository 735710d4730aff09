package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

// HaltOptions are the options of "chaosctl halt".
type HaltOptions struct {
	Cluster     string
	Output      string
	AllContexts bool
}

func (a *app) newHaltCommand() *cobra.Command {
	o := &HaltOptions{}
	cmd := &cobra.Command{
		Use:   "halt",
		Short: "Stop all chaos now: abort every run and revert every fault on every agent",
		Long: `Stop all chaos now: chaosd aborts every run in progress and asks every agent
(of --cluster, or all) to revert everything it holds, whoever injected it.
It needs no confirmation: it only ever removes faults. Exit code 3 when an
agent could not be reached. Its faults still end within a lease: partitions and
latency in the kernel, memory stressors by their own deadline, and chaosd undoes
the Chaos Monkey assaults of the runs it aborts through the service's actuator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().StringVar(&o.Cluster, "cluster", "", "halt only this cluster's agents (runs are aborted in every cluster)")
	cmd.Flags().BoolVar(&o.AllContexts, "all-contexts", false, "halt the chaosd of every context of the config file, in parallel, and report each (exit 3 if any failed)")
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// printHalt writes the aborted runs and each agent's outcome.
func printHalt(a *app, res api.HaltResult) {
	for _, id := range res.AbortedSuiteRuns {
		fmt.Fprintf(a.streams.Out, "  %s (suite run: no further experiment starts)\n", id)
	}
	for _, id := range res.AbortedRuns {
		fmt.Fprintf(a.streams.Out, "  %s\n", id)
	}
	for _, n := range res.Agents {
		if n.Error != "" {
			fmt.Fprintf(a.streams.Out, "  %s/%s: NOT HALTED: %s\n", n.Cluster, n.Node, n.Error)
			continue
		}
		fmt.Fprintf(a.streams.Out, "  %s/%s: %d fault(s) reverted\n", n.Cluster, n.Node, n.Reverted)
	}
}

// errHaltIncomplete means some agent could not be halted.
var errHaltIncomplete = errors.New("some agents could not be halted")

// Run asks chaosd to halt.
func (o *HaltOptions) Run(ctx context.Context, a *app) error {
	if o.AllContexts {
		return o.haltAllContexts(ctx, a)
	}
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	res, err := call(ctx, a, conn, func(ctx context.Context) (api.HaltResult, error) { return c.Halt(ctx, o.Cluster) })
	if err != nil {
		return wrapf(err, "halt")
	}
	failed := 0
	for _, n := range res.Agents {
		if n.Error != "" {
			failed++
		}
	}
	if isData(o.Output) {
		if err := writeData(a.streams.Out, o.Output, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.streams.Out, "aborted %d run(s)\n", len(res.AbortedRuns))
		printHalt(a, res)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errHaltIncomplete, failed, len(res.Agents))
	}
	return nil
}
