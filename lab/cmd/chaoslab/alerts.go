package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/alertsink"
)

// newAlertsCommand prints what the lab's Alertmanager notified: every
// alert of every notification its webhook receiver recorded.
func newAlertsCommand(o *options, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Print the notifications the lab's Alertmanager sent (one line per alert per notification)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stateDir := o.stateDir
			if stateDir == "" {
				stateDir = filepath.Join(lab.DefaultStateRoot, o.name)
			}
			ns, err := alertsink.Read(filepath.Join(stateDir, "alerts.jsonl"))
			if err != nil {
				return fmt.Errorf("lab %s: %w", o.name, err)
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				for _, n := range ns {
					if err := enc.Encode(n); err != nil {
						return err
					}
				}
				return nil
			}
			return printAlerts(stdout, ns)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the recorded JSON lines")
	return cmd
}

// printAlerts writes notifications as a table, times in UTC.
func printAlerts(w io.Writer, ns []alertsink.Notification) error {
	if len(ns) == 0 {
		_, err := fmt.Fprintln(w, "no notifications yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tNOTIFICATION\tSTATUS\tALERT\tSTARTS\tENDS\tLABELS")
	for _, n := range ns {
		ends := "-"
		if !n.Firing() && !n.EndsAt.IsZero() {
			ends = clock(n.EndsAt)
		}
		fmt.Fprintf(tw, "%s\t#%d\t%s\t%s\t%s\t%s\t%s\n", clock(n.Received), n.Seq, n.Status, n.Alertname, clock(n.StartsAt), ends, labels(n.Labels))
	}
	return tw.Flush()
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// labels renders every label but alertname, sorted.
func labels(m map[string]string) string {
	var out []string
	for k, v := range m {
		if k != "alertname" {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
