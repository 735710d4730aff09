package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// stateFile is the lab's record of what it made, written ahead of making
// it, so that Down works from the state directory alone after a crash.
const stateFile = "state.json"

// State is what state.json holds.
type State struct {
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	CreatedAt  time.Time `json:"createdAt"`
	Namespaces []string  `json:"namespaces"`
	Procs      []Proc    `json:"procs"`
	// Cgroups the lab made (absolute paths), removed by Down.
	Cgroups []string `json:"cgroups,omitempty"`
	// Kube is set in Kubernetes mode; KubeAPIURL is the API server's
	// address on the mgmt namespace's loopback once it is up.
	Kube       bool   `json:"kube,omitempty"`
	KubeAPIURL string `json:"kubeAPIURL,omitempty"`
}

// Proc is one process the lab started.
type Proc struct {
	Name  string   `json:"name"`
	Netns string   `json:"netns"`
	Argv  []string `json:"argv"` // exactly what /proc/PID/cmdline must show
	PID   int      `json:"pid"`
	Log   string   `json:"log"`
}

func readState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Prefix == "" {
		return nil, errors.New("state has no namespace prefix")
	}
	return &st, nil
}

func writeState(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}
