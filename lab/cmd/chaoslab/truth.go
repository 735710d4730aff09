package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/truth"
)

// newTruthCommand compares a run's measured impact, recovery and RTO with
// the load generator's ground truth: what users actually saw.
func newTruthCommand(o *options, stdout io.Writer) *cobra.Command {
	var hold time.Duration
	cmd := &cobra.Command{
		Use:   "truth RUN_ID",
		Short: "Compare a run's measured RTO with the load generator's ground truth",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stateDir := o.stateDir
			if stateDir == "" {
				stateDir = filepath.Join(lab.DefaultStateRoot, o.name)
			}
			tok, err := os.ReadFile(filepath.Join(stateDir, "token"))
			if err != nil {
				return fmt.Errorf("lab %s: %w", o.name, err)
			}
			c, err := client.NewClient("unix://"+filepath.Join(stateDir, "chaosd.sock"), strings.TrimSpace(string(tok)))
			if err != nil {
				return err
			}
			run, err := c.Run(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if run.Times.Injected == nil {
				return errors.New("nothing was injected in that run")
			}
			// The load generator writes each second shortly after it ends.
			time.Sleep(1200 * time.Millisecond)
			secs, err := truth.Read(filepath.Join(stateDir, "truth.csv"))
			if err != nil {
				return err
			}
			impact, recovered, ok := truth.AnalyzeHold(secs, *run.Times.Injected, hold)
			fmt.Fprintf(stdout, "ground truth (%s, what the load generator's users saw):\n", filepath.Join(stateDir, "truth.csv"))
			if impact.IsZero() {
				fmt.Fprintln(stdout, "  no failed user request after the inject")
				return nil
			}
			if !ok {
				fmt.Fprintf(stdout, "  first failed request sent %s; not recovered: no clean %s at the end of the data\n", impact.Format(time.RFC3339Nano), hold)
				return nil
			}
			gt := recovered.Sub(impact).Seconds()
			fmt.Fprintf(stdout, "  impact    %s\n  recovered %s\n  RTO       %.2fs\n", impact.Format(time.RFC3339Nano), recovered.Format(time.RFC3339Nano), gt)
			if run.RTO.MeasuredSeconds != nil {
				m := *run.RTO.MeasuredSeconds
				fmt.Fprintf(stdout, "measured by chaosd: RTO %.2fs (resolution ±%gs): %.2fs from the ground truth\n", m, run.RTO.ResolutionSeconds, math.Abs(m-gt))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&hold, "hold", 3*time.Second, "how long users must see no failure at the end of the data for it to count as recovered")
	return cmd
}
