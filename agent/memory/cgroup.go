package memory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/chaosd/chaosd/agent/kubepod"
)

// cgroupFS is the memory controller's hierarchy (kubepod.Hierarchy): the
// unified hierarchy (version 2) or the v1 memory controller's mount
// (version 1), with what the memory driver reads and writes in it.
type cgroupFS kubepod.Hierarchy

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// detectCgroup finds the hierarchy that holds the memory controller at or
// below root ("" is /sys/fs/cgroup), as kubepod.DetectHierarchy does: root
// itself as a v2 hierarchy or a v1 memory hierarchy, else root/memory
// (v1), else root/unified if it has the memory controller. root may be
// where the host's cgroup filesystem is mounted in the agent's container.
func detectCgroup(root string) (cgroupFS, error) {
	h, err := kubepod.DetectHierarchy(root)
	if err != nil {
		return cgroupFS{}, err
	}
	return cgroupFS(h), nil
}

func (c cgroupFS) hierarchy() kubepod.Hierarchy { return kubepod.Hierarchy(c) }

// Dir is the directory of the cgroup at rel ("" = root).
func (c cgroupFS) Dir(rel string) string { return c.hierarchy().Dir(rel) }

func (c cgroupFS) limitFile() string {
	if c.Version == 2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

func (c cgroupFS) usageFile() string {
	if c.Version == 2 {
		return "memory.current"
	}
	return "memory.usage_in_bytes"
}

// probe says what is missing for the memory fault in this hierarchy.
func (c cgroupFS) probe() error {
	if c.Version == 2 {
		if !kubepod.ControllerListed(filepath.Join(c.Root, "cgroup.controllers"), "memory") {
			return fmt.Errorf("cgroup v2 at %s has no memory controller (not in cgroup.controllers)", c.Root)
		}
		if !kubepod.ControllerListed(filepath.Join(c.Root, "cgroup.subtree_control"), "memory") {
			return fmt.Errorf("cgroup v2 at %s: memory controller not enabled for children (add +memory to cgroup.subtree_control)", c.Root)
		}
	} else if !exists(filepath.Join(c.Root, "memory.limit_in_bytes")) {
		return fmt.Errorf("cgroup v1 memory hierarchy at %s has no memory.limit_in_bytes", c.Root)
	}
	if err := writable(filepath.Join(c.Root, "cgroup.procs")); err != nil {
		return fmt.Errorf("cannot move processes between cgroups (need root / CAP_SYS_ADMIN and the host's cgroup fs): %w", err)
	}
	return nil
}

// checkTarget verifies rel exists, has the memory controller, and can hold
// processes.
func (c cgroupFS) checkTarget(rel string) error {
	dir := c.Dir(rel)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("memory.cgroup: %q does not exist under %s", rel, c.Root)
	}
	if rel == "" {
		return nil
	}
	if !exists(filepath.Join(dir, c.limitFile())) {
		if c.Version == 2 {
			return fmt.Errorf("memory.cgroup: %q has no memory controller (no memory.max: memory is not enabled in its parent's cgroup.subtree_control)", rel)
		}
		return fmt.Errorf("memory.cgroup: %q has no memory.limit_in_bytes", rel)
	}
	if c.Version == 2 {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if s := strings.TrimSpace(string(data)); s != "" {
			return fmt.Errorf("memory.cgroup: %q enables controllers for its children (%s), so by cgroup v2's no-internal-processes rule it cannot hold the stressor: target a leaf (container) cgroup", rel, s)
		}
	}
	return nil
}

// checkPod verifies a pod's cgroup still exists and has the memory
// controller, so a leaf inside it is charged to it.
func (c cgroupFS) checkPod(rel string) error {
	dir := c.Dir(rel)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("pod cgroup %s does not exist: %w", dir, kubepod.ErrGone)
	}
	if !exists(filepath.Join(dir, c.limitFile())) {
		return fmt.Errorf("pod cgroup %s has no memory controller (no %s)", dir, c.limitFile())
	}
	return nil
}

// ownLimit is the limit set on rel itself; ok is false for none.
func (c cgroupFS) ownLimit(rel string) (uint64, bool, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir(rel), c.limitFile()))
	if err != nil {
		return 0, false, err
	}
	return parseLimit(c.Version, string(data))
}

// effectiveLimit is the smallest limit on rel and its ancestors, capped by
// memTotal; source says which applied ("cgroup <path>" or "node").
func (c cgroupFS) effectiveLimit(rel string, memTotal uint64) (limit uint64, source string, err error) {
	limit, source = memTotal, "node"
	for p := rel; p != "" && p != "."; p = path.Dir(p) {
		l, ok, err := c.ownLimit(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no memory controller at this level
		}
		if err != nil {
			return 0, "", fmt.Errorf("read memory limit of %q: %w", p, err)
		}
		if ok && l < limit {
			limit, source = l, "cgroup "+p
		}
	}
	return limit, source, nil
}

// Usage is the cgroup's memory usage in bytes (memory.current or
// memory.usage_in_bytes).
func (c cgroupFS) Usage(rel string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir(rel), c.usageFile()))
	if err != nil {
		return 0, err
	}
	n, _, err := parseLimit(2, string(data))
	return n, err
}

// oomKills is the cgroup's OOM kill counter (memory.events oom_kill in v2,
// memory.oom_control oom_kill in v1); ok is false if unavailable.
func (c cgroupFS) oomKills(rel string) (uint64, bool) {
	file := "memory.events"
	if c.Version == 1 {
		file = "memory.oom_control"
	}
	data, err := os.ReadFile(filepath.Join(c.Dir(rel), file))
	if err != nil {
		return 0, false
	}
	return parseKeyed(data, "oom_kill")
}
