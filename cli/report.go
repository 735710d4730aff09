package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
)

// Formats of "chaosctl report".
const (
	reportHTML     = "html"
	reportMarkdown = "md"
)

// ReportOptions are the options of "chaosctl report".
type ReportOptions struct {
	ID     string
	Output string
}

func (a *app) newReportCommand() *cobra.Command {
	o := &ReportOptions{}
	cmd := &cobra.Command{
		Use:   "report ID",
		Short: "Write a run's report as a self-contained HTML page or as Markdown",
		Long: `Writes the report of a run to stdout: with -o html a self-contained page (inline CSS and
SVG, nothing fetched, no script) with a timeline of the faults and of every probe's values
from Prometheus, the RTO against its target, alerts, silences and lost writes; with -o md the
same content as Markdown tables. Both list the verdict's criteria with what was measured.

The probe curves come from chaosd, which asks its Prometheus when the report is made; when it
cannot, the report is made from the run record alone and says why. The verdict does not change
the exit code: writing the report worked.`,
		Example: `  chaosctl report r-0001 -o html > r-0001.html
  chaosctl report r-0001 -o md >> "$GITHUB_STEP_SUMMARY"`,
		Args:              oneID("report"),
		ValidArgsFunction: a.completeRunIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", reportMarkdown, "output format: html or md (Markdown)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{reportHTML, reportMarkdown}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Validate checks the options (no chaosd needed).
func (o *ReportOptions) Validate() error {
	switch o.Output {
	case reportHTML, reportMarkdown:
		return nil
	}
	return usageErrorf("invalid output format %q: use html or md", o.Output)
}

// Run fetches the run and its timeline and writes the report. A timeline
// chaosd cannot give is a warning, not an error: the report is made from
// the record alone and says why.
func (o *ReportOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	run, err := call(ctx, a, conn, func(ctx context.Context) (api.Run, error) { return c.Run(ctx, o.ID) })
	if err != nil {
		return wrapf(err, "get run %s", o.ID)
	}
	tl, err := call(ctx, a, conn, func(ctx context.Context) (api.Timeline, error) { return c.Timeline(ctx, o.ID) })
	if err != nil {
		tl = api.Timeline{RunID: o.ID, Error: "probe curves unavailable: chaosd could not give the run's timeline: " + Message(err)}
	}
	if tl.Error != "" {
		fmt.Fprintf(a.streams.ErrOut, "chaosctl: warning: %s\n", tl.Error)
	}
	if o.Output == reportHTML {
		return report.HTML(a.streams.Out, run, &tl)
	}
	return report.Markdown(a.streams.Out, run, &tl)
}

// reportHint is the line describe adds under the text report.
func reportHint(id string) string {
	return fmt.Sprintf("\nReport      chaosctl report %s -o html > %s.html\n", id, id)
}
