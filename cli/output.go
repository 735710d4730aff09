package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
)

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
	// outputYAML is the JSON document as YAML (same field names).
	outputYAML = "yaml"
	// outputJUnit is a JUnit XML report of a finished run (CI gates).
	outputJUnit = "junit"
)

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", outputText, "output format: text, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputText, outputJSON, outputYAML}, cobra.ShellCompDirectiveNoFileComp))
}

// addReportOutputFlag is addOutputFlag for verbs that print a run's report,
// which can also be JUnit XML.
func addReportOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", outputText, "output format: text, json, yaml or junit (JUnit XML, for CI)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputText, outputJSON, outputYAML, outputJUnit}, cobra.ShellCompDirectiveNoFileComp))
}

func validateReportOutput(o string) error {
	if o == outputJUnit {
		return nil
	}
	if err := validateOutput(o); err != nil {
		return usageErrorf("invalid output format %q: use text, json, yaml or junit", o)
	}
	return nil
}

// writeReport prints a run in the chosen format.
func writeReport(w io.Writer, format string, run api.Run) error {
	switch format {
	case outputJSON, outputYAML:
		return writeData(w, format, run)
	case outputJUnit:
		return report.JUnit(w, run)
	}
	return report.Text(w, run)
}

func validateOutput(o string) error {
	switch o {
	case outputText, outputJSON, outputYAML:
		return nil
	}
	return usageErrorf("invalid output format %q: use text, json or yaml", o)
}

// isData reports whether format prints the data itself (JSON or YAML)
// rather than a human table.
func isData(format string) bool { return format == outputJSON || format == outputYAML }

// writeData writes v as indented JSON, or as YAML with the same field
// names (sigs.k8s.io/yaml goes through the JSON encoding, as kubectl's
// -o yaml does).
func writeData(w io.Writer, format string, v any) error {
	if format != outputYAML {
		return writeJSON(w, v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a character device (and TERM is not
// "dumb"): live progress redraws there, and prints plain lines elsewhere.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if t := os.Getenv("TERM"); t == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// age is a kubectl-style age: 45s, 12m, 5h, 3d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
