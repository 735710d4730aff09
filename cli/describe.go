package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

func (a *app) newDescribeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe RESOURCE",
		Short: "Show the report of a run",
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("describe needs a resource: run ID")
			}
			return usageErrorf("unknown resource %q: use run ID", args[0])
		},
	}
	cmd.AddCommand(a.newDescribeRunCommand())
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
		Aliases: []string{"runs"},
		Args:    oneID("describe run"),
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
