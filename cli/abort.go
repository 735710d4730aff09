package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

// AbortOptions are the options of "chaosctl abort".
type AbortOptions struct {
	ID     string
	Output string
}

func (a *app) newAbortCommand() *cobra.Command {
	o := &AbortOptions{}
	cmd := &cobra.Command{
		Use:   "abort ID",
		Short: "Abort a run or a suite run: chaosd reverts its faults at once",
		Long: `Abort a run: chaosd reverts its faults at once and marks the run aborted.
The command returns once chaosd has accepted the abort; follow the revert with
'chaosctl describe run ID'.

A suite run ID (s-...) aborts the whole suite: its current experiment is aborted
and the rest never start ('chaosctl describe suite-run ID').`,
		Args:              oneID("abort"),
		ValidArgsFunction: a.completeRunIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			if err := validateOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// Run asks chaosd to abort the run.
func (o *AbortOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	if strings.HasPrefix(o.ID, api.SuiteRunPrefix) {
		return o.abortSuiteRun(ctx, a, c, conn)
	}
	run, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) { return c.Abort(ctx, o.ID) })
	if err != nil {
		return wrapf(err, "abort run %s", o.ID)
	}
	if isData(o.Output) {
		return writeData(a.streams.Out, o.Output, run)
	}
	_, err = fmt.Fprintf(a.streams.Out, "run %s: abort requested (phase %s)\n", run.ID, run.Phase)
	return err
}
