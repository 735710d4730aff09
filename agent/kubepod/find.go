package kubepod

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// ErrGone says the pod, or the network namespace a fault was applied in,
// no longer exists on this node: the kubepods hierarchy is there but the
// pod's cgroup is not, or it holds no process (in that namespace). A
// fault applied inside a pod's namespace went away with it.
var ErrGone = errors.New("pod gone")

// ErrHostNetwork says the pod shares the node's network namespace
// (hostNetwork: true): a pod-scoped network fault would act on the node.
var ErrHostNetwork = errors.New("pod uses the node's network namespace (hostNetwork)")

// Hierarchy is a cgroup hierarchy on this node: the directory of its root
// cgroup and its version. On cgroup v1 it is the memory controller's
// hierarchy (kubelet creates every pod's memory cgroup).
type Hierarchy struct {
	Root    string
	Version int
}

// Dir is the directory of the cgroup rel (slash-separated, relative to the
// root; "" is the root).
func (h Hierarchy) Dir(rel string) string { return filepath.Join(h.Root, filepath.FromSlash(rel)) }

// DefaultCgroupRoot is where the host's cgroup filesystem is mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

// ControllerListed reports whether a cgroup v2 controller list file
// (cgroup.controllers, cgroup.subtree_control) names ctrl.
func ControllerListed(file, ctrl string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, c := range strings.Fields(string(data)) {
		if c == ctrl {
			return true
		}
	}
	return false
}

// DetectHierarchy finds the hierarchy holding the memory controller at or
// below dir ("" is DefaultCgroupRoot), in this order: dir itself as a
// cgroup v2 hierarchy (cgroup.controllers) or a v1 memory hierarchy
// (memory.limit_in_bytes); dir/memory (v1, hybrid hosts); dir/unified (v2
// in hybrid mode, only if it has the memory controller). dir may be the
// root of a hierarchy, a cgroup inside one (tests), or where the host's
// cgroup filesystem is mounted (e.g. /host/sys/fs/cgroup in a container).
func DetectHierarchy(dir string) (Hierarchy, error) {
	if dir == "" {
		dir = DefaultCgroupRoot
	}
	switch {
	case exists(filepath.Join(dir, "cgroup.controllers")):
		return Hierarchy{dir, 2}, nil
	case exists(filepath.Join(dir, "memory.limit_in_bytes")):
		return Hierarchy{dir, 1}, nil
	}
	if v1 := filepath.Join(dir, "memory"); exists(filepath.Join(v1, "memory.limit_in_bytes")) {
		return Hierarchy{v1, 1}, nil
	}
	if u := filepath.Join(dir, "unified"); ControllerListed(filepath.Join(u, "cgroup.controllers"), "memory") {
		return Hierarchy{u, 2}, nil
	}
	return Hierarchy{}, fmt.Errorf("%s is neither a cgroup v2 root (no cgroup.controllers) nor a cgroup v1 memory hierarchy (no memory.limit_in_bytes), and holds none (no memory/ hierarchy, no unified/ with the memory controller)", dir)
}

// FindPodCgroup returns the pod's cgroup (relative to h's root): the first
// of layout.PodCgroups that exists. When none does but a kubepods root of
// the layout exists, the error wraps ErrGone; when no kubepods root exists
// at all, the hierarchy or the driver is wrong and the error says so.
// Either way it names every path tried.
func FindPodCgroup(h Hierarchy, driver CgroupDriver, p agentapi.Pod) (string, error) {
	l := Layout{Driver: driver, Version: h.Version}
	cands, err := l.PodCgroups(p)
	if err != nil {
		return "", err
	}
	for _, c := range cands {
		if isDir(h.Dir(c)) {
			return c, nil
		}
	}
	var roots []string
	for _, r := range l.Roots() {
		if isDir(h.Dir(r)) {
			roots = append(roots, r)
		}
	}
	if len(roots) == 0 {
		return "", fmt.Errorf("pod %s: no kubepods cgroup under %s (cgroup v%d, tried %s): is that the host's cgroup hierarchy (--cgroup-root) and is kubelet's cgroup driver %s?",
			podName(p), h.Root, h.Version, strings.Join(l.Roots(), ", "), driverWord(driver))
	}
	return "", fmt.Errorf("%w: pod %s has no cgroup under %s (cgroup v%d, driver %s); tried %s",
		ErrGone, podName(p), h.Root, h.Version, driverWord(driver), strings.Join(cands, ", "))
}

func driverWord(d CgroupDriver) string {
	if d == "" {
		return string(DriverAuto)
	}
	return string(d)
}

func podName(p agentapi.Pod) string {
	if p.Name != "" {
		return fmt.Sprintf("%s/%s (uid %s)", p.Namespace, p.Name, p.UID)
	}
	return "uid " + p.UID
}

// Proc is a process of a pod found in its cgroup.
type Proc struct {
	PID int
	// Cgroup is the cgroup (relative to the hierarchy root) whose
	// cgroup.procs listed it.
	Cgroup string
	// Container: the cgroup is one of the pod's listed containers.
	Container bool
	// Pause: its command is "pause" (the sandbox), tried last.
	Pause bool
}

// maxDepth bounds the walk below a pod's cgroup (container scopes may
// nest one or two levels more, e.g. CRI-O's .../container).
const maxDepth = 4

// PodProcesses lists the processes of the pod whose cgroup is podCgroup,
// best first: those of the containers named in p.ContainerIDs (in that
// order), then those of any other sub-cgroup (the sandbox's among them),
// with "pause" processes last. Sub-cgroups that hold no process of the
// pod's network namespace (the agent's own, CRI-O's conmon) are skipped.
// procRoot is procfs (for each process's command). No process at all is
// an error wrapping ErrGone that says where it looked.
func PodProcesses(h Hierarchy, procRoot string, podCgroup string, p agentapi.Pod) ([]Proc, error) {
	seen := map[string]bool{}
	var procs []Proc
	add := func(rel string, container bool) {
		if seen[rel] {
			return
		}
		seen[rel] = true
		for _, pid := range readProcs(h.Dir(rel)) {
			procs = append(procs, Proc{PID: pid, Cgroup: rel, Container: container})
		}
	}
	var tried []string
	for _, id := range p.ContainerIDs {
		for _, c := range ContainerCgroups(podCgroup, id) {
			if !isDir(h.Dir(c)) {
				continue
			}
			tried = append(tried, c)
			walk(h, c, maxDepth, func(rel string) { add(rel, true) })
		}
	}
	walk(h, podCgroup, maxDepth, func(rel string) { add(rel, false) })
	tried = append(tried, podCgroup+"/**")
	for i := range procs {
		comm, _ := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(procs[i].PID), "comm"))
		procs[i].Pause = strings.TrimSpace(string(comm)) == "pause"
	}
	// Stable: containers first, then non-pause, keeping discovery order.
	sort.SliceStable(procs, func(i, j int) bool {
		a, b := procs[i], procs[j]
		if a.Container != b.Container {
			return a.Container
		}
		return !a.Pause && b.Pause
	})
	if len(procs) == 0 {
		return nil, fmt.Errorf("%w: the cgroup of pod %s (%s) holds no process; looked in %s",
			ErrGone, podName(p), h.Dir(podCgroup), strings.Join(tried, ", "))
	}
	return procs, nil
}

// walk calls fn for rel and every sub-cgroup down to depth levels,
// skipping Foreign ones.
func walk(h Hierarchy, rel string, depth int, fn func(string)) {
	fn(rel)
	if depth == 0 {
		return
	}
	ents, err := os.ReadDir(h.Dir(rel))
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && !Foreign(e.Name()) {
			walk(h, path.Join(rel, e.Name()), depth-1, fn)
		}
	}
}

// readProcs reads a cgroup's cgroup.procs (missing or unreadable: none).
func readProcs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// InCgroup reports whether pid is listed in the cgroup.procs of dir (a
// cgroup directory). It is the membership test that works whatever cgroup
// namespace the reader is in (/proc/PID/cgroup paths are relative to the
// reader's cgroup namespace root).
func InCgroup(dir string, pid int) bool {
	for _, p := range readProcs(dir) {
		if p == pid {
			return true
		}
	}
	return false
}
