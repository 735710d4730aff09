// Package library is the built-in experiment library: the experiment
// files shipped inside the chaosd and chaosctl binaries.
package library

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/chaosd/chaosd/experiments"
)

// files holds the embedded experiment files. It is read-only data fixed at
// build time (go:embed needs a package-level variable), not mutable state.
//
//go:embed *.yaml
var files embed.FS

// FS returns the embedded experiment files, one experiment per *.yaml file
// at the root of the file system.
func FS() fs.FS { return files }

// Load parses, defaults and validates every built-in experiment.
func Load() ([]*experiments.Experiment, error) {
	exps, err := experiments.LoadFS(files, ".")
	if err != nil {
		return nil, fmt.Errorf("load built-in experiment library: %w", err)
	}
	return exps, nil
}
