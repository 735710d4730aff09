package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultServiceMemoryLimit is each service's cgroup memory limit, the
// lab's version of a pod's resources.limits.memory.
const DefaultServiceMemoryLimit = 512 << 20

// cgroupFS says where memory cgroups live on this host.
type cgroupFS struct {
	// Root is the memory hierarchy's root: /sys/fs/cgroup (v2) or
	// /sys/fs/cgroup/memory (v1).
	Root string
	V2   bool
}

// detectCgroupFS prefers a v2 hierarchy with the memory controller and
// falls back to the v1 memory controller (this project's hosts have v1
// memory and a v2 hierarchy without it).
func detectCgroupFS() (cgroupFS, error) {
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(" "+string(b)+" ", " memory") {
		return cgroupFS{Root: "/sys/fs/cgroup", V2: true}, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return cgroupFS{Root: "/sys/fs/cgroup/memory"}, nil
	}
	return cgroupFS{}, errors.New("no memory cgroup controller found (neither cgroup v2 with memory nor v1 /sys/fs/cgroup/memory)")
}

// serviceCgroup is the cgroup of a lab service, relative to the memory
// hierarchy's root (what chaosd's config and the memory fault use).
func (l *Lab) serviceCgroup(svc string) string {
	if pod := l.podCgroup(svc); pod != "" {
		return filepath.Join(pod, svc)
	}
	return filepath.Join("chaosd-lab", l.Name, svc)
}

// kubeCgroupRoot stands for a node's cgroup root in Kubernetes mode: it
// holds kubelet's cgroupfs layout, kubepods/<qos>/pod<uid>/<container>.
func (l *Lab) kubeCgroupRoot() string { return filepath.Join("chaosd-lab", l.Name, "k8s") }

// podCgroup is the cgroup of a service's registered pod in Kubernetes
// mode (kubelet's cgroupfs layout under kubeCgroupRoot), "" otherwise.
func (l *Lab) podCgroup(svc string) string {
	p, ok := l.pods[svc]
	if !ok {
		return ""
	}
	parts := []string{l.kubeCgroupRoot(), "kubepods"}
	switch p.QOS {
	case "Burstable":
		parts = append(parts, "burstable")
	case "BestEffort":
		parts = append(parts, "besteffort")
	}
	return filepath.Join(append(parts, "pod"+p.UID)...)
}

// makeCgroup creates dir (recording it in the state first, so Down
// removes it even after a crash) and sets its memory limit.
func (l *Lab) makeCgroup(rel string, limit int64) (string, error) {
	dir := filepath.Join(l.cg.Root, rel)
	l.mu.Lock()
	l.state.Cgroups = append(l.state.Cgroups, dir)
	l.mu.Unlock()
	if err := l.saveState(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if l.cg.V2 {
		// Enable the memory controller for the children on the way down,
		// root first: a cgroup can only pass on a controller its parent
		// passed to it.
		for _, p := range subtreeFrom(l.cg.Root, filepath.Dir(dir)) {
			_ = os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+memory"), 0o644)
		}
	}
	file := "memory.limit_in_bytes"
	if l.cg.V2 {
		file = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		return "", fmt.Errorf("set memory limit of %s: %w", dir, err)
	}
	return dir, nil
}

// subtreeFrom lists root and every directory below it down to dir, root
// first (dir must be root or under it).
func subtreeFrom(root, dir string) []string {
	var out []string
	for p := dir; len(p) > len(root); p = filepath.Dir(p) {
		out = append(out, p)
	}
	out = append(out, root)
	slices.Reverse(out)
	return out
}

// joinCgroup moves a process into a cgroup.
func joinCgroup(dir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("move pid %d into %s: %w", pid, dir, err)
	}
	return nil
}

// removeCgroups removes the lab's cgroups, deepest first, with the
// chaosd-lab/<name> parents it made. A cgroup that still holds processes
// cannot be removed: those are killed first (they are the lab's: only lab
// processes and their children, such as a memory stressor, run there).
func removeCgroups(dirs []string) []error {
	var errs []error
	seen := map[string]bool{}
	var all []string
	for _, d := range dirs {
		for p := d; strings.Contains(p, "/chaosd-lab"); p = filepath.Dir(p) {
			if !seen[p] {
				seen[p] = true
				all = append(all, p)
			}
		}
	}
	// Deepest first.
	for i := 0; i < len(all); i++ {
		for j := i + 1; j < len(all); j++ {
			if strings.Count(all[j], "/") > strings.Count(all[i], "/") {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
	for _, d := range all {
		killCgroupProcs(d)
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			if strings.HasSuffix(d, "/chaosd-lab") {
				continue // another lab still uses the shared parent
			}
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errs
}

func killCgroupProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
	// Give the kernel a moment to empty the cgroup.
	for i := 0; i < 50; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || strings.TrimSpace(string(b)) == "" {
			return
		}
		sleep()
	}
}
