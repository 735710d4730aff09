package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/experiments"
)

// ValidateOptions are the options of "chaosctl validate".
type ValidateOptions struct {
	// Paths are files and directories as given (-f and arguments).
	Paths []string
	// files are the experiment files Paths expand to.
	files []string
}

func (a *app) newValidateCommand() *cobra.Command {
	o := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate -f FILE... [FILE|DIR...]",
		Short: "Validate experiment and suite files without contacting chaosd",
		Long: `Validate experiment and suite files (kind Experiment or Suite): strict decoding and every
check chaosd makes at load. For a directory, every *.yaml and *.yml file directly in it is
validated (as chaosd loads it: subdirectories are not searched). Experiment names must be unique
across all files, and suite names too.

A suite's experiments must exist and its pause must be at least the steady-state baseline of
each experiment that follows another: they are checked against the experiments among the files
(validate the whole directory chaosd loads), or, when no experiment is among them, against the
built-in library.

Prints "FILE: valid" on stdout for every valid file and the errors on stderr, one per
line as FILE:LINE:COL: field.path: message. Exit code 0 when every file is valid, 2 otherwise.`,
		Example: `  chaosctl validate -f experiments/library
  chaosctl validate -f partition.yaml -f latency.yaml
  chaosctl validate -f examples/game-day.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().StringArrayVarP(&o.Paths, "filename", "f", nil, "experiment or suite file, or directory (repeatable)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	return cmd
}

// Complete adds the arguments to the paths and expands directories.
func (o *ValidateOptions) Complete(args []string) error {
	o.Paths = append(o.Paths, args...)
	o.files = nil
	for _, p := range o.Paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			// Not a directory: the validator reports unreadable files.
			o.files = append(o.files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return usageErrorf("read directory %s: %w", p, err)
		}
		var found []string
		for _, e := range entries { // sorted by name
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				found = append(found, filepath.Join(p, e.Name()))
			}
		}
		if len(found) == 0 {
			return usageErrorf("directory %s holds no *.yaml or *.yml file", p)
		}
		o.files = append(o.files, found...)
	}
	return nil
}

// Validate checks o without side effects.
func (o *ValidateOptions) Validate() error {
	if len(o.Paths) == 0 {
		return usageErrorf("validate needs at least one file or directory (-f FILE)")
	}
	return nil
}

// Run validates the files together (so experiment names are checked for
// uniqueness across them) and names each valid one.
func (o *ValidateOptions) Run(_ context.Context, a *app) error {
	err := a.validateFiles(o.files)
	bad := map[string]bool{}
	if err != nil {
		var list experiments.ErrorList
		if errors.As(err, &list) {
			for _, fe := range list {
				bad[fe.File] = true
			}
		} else {
			for _, f := range o.files { // cannot tell which: none is known valid
				bad[f] = true
			}
		}
		printSpecErrors(a.streams.ErrOut, err)
	}
	invalid := 0
	for _, f := range o.files {
		if bad[f] {
			invalid++
			continue
		}
		fmt.Fprintf(a.streams.Out, "%s: valid\n", f)
	}
	if err != nil {
		return &invalidSpecError{invalid: max(invalid, 1), total: len(o.files)}
	}
	return nil
}

// printSpecErrors writes the problems of experiment files, one per line
// (FILE:LINE:COL: field.path: message).
func printSpecErrors(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintln(w, line)
	}
}
