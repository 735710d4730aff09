package lab

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ProcStatus is one recorded process and whether it still runs.
type ProcStatus struct {
	Proc
	Running bool
}

// Status is what `chaoslab status` reports.
type Status struct {
	Name, Prefix, StateDir string
	CreatedAt              time.Time
	Namespaces             map[string]bool // name → exists
	Procs                  []ProcStatus
	Targets                map[string]bool // Prometheus job → up (nil when unreachable)
	Env                    []string
	// KubeAPIURL is the API server's address in the mgmt namespace
	// (Kubernetes mode), Kubeconfig its admin kubeconfig.
	KubeAPIURL, Kubeconfig string
}

// GetStatus reads the lab's state directory and checks what still runs.
func GetStatus(ctx context.Context, cfg Config) (*Status, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	st, err := readState(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("lab %q: %w", cfg.Name, err)
	}
	cfg.Prefix = st.Prefix
	l := newLab(cfg)
	l.state = st
	existing, err := listNetns()
	if err != nil {
		return nil, err
	}
	s := &Status{Name: st.Name, Prefix: st.Prefix, StateDir: cfg.StateDir, CreatedAt: st.CreatedAt, Namespaces: map[string]bool{}, Env: l.Env()}
	for _, ns := range st.Namespaces {
		s.Namespaces[ns] = slices.Contains(existing, ns)
	}
	if st.KubeAPIURL != "" {
		s.KubeAPIURL, s.Kubeconfig = st.KubeAPIURL, l.Kubeconfig
	}
	for _, p := range st.Procs {
		s.Procs = append(s.Procs, ProcStatus{Proc: p, Running: procMatches(p.PID, p.Argv)})
	}
	if s.Namespaces[l.Namespaces[RoleMgmt]] {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if up, err := l.targetsUp(ctx, l.HTTPClient(2*time.Second)); err == nil {
			s.Targets = up
		}
	}
	return s, nil
}
