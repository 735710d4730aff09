package kubepod

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// NSID identifies a namespace while it exists: the device and inode of
// its nsfs file (what stat(2) of /proc/PID/ns/net gives). It is what the
// ledger records of a pod-scoped network fault, so a later revert can find
// the same namespace again through whatever process of the pod is alive
// then.
type NSID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// IsZero reports whether id is unset.
func (id NSID) IsZero() bool { return id == NSID{} }

func (id NSID) String() string { return fmt.Sprintf("net:[%d] (dev %d)", id.Ino, id.Dev) }

// Config configures a Finder.
type Config struct {
	// CgroupRoot is where to look for the hierarchy (see DetectHierarchy;
	// "": DefaultCgroupRoot).
	CgroupRoot string
	// Driver is kubelet's cgroup driver ("" or DriverAuto: both layouts).
	Driver CgroupDriver
	// ProcRoot is procfs of the PID namespace the pods' processes are
	// visible in (the host's: hostPID); default /proc.
	ProcRoot string
	// NodeNetNS is the path of the node's network namespace (the agent's
	// --netns); "": the agent's own. A pod in it (hostNetwork) is refused
	// for network faults.
	NodeNetNS string
}

// Finder finds pods' cgroups and network namespaces on this node. It holds
// no state beyond its configuration and is safe for concurrent use.
type Finder struct {
	cfg     Config
	h       Hierarchy
	hErr    error
	node    NSID
	nodeErr error
}

// NewFinder checks the configuration and detects the hierarchy. A missing
// hierarchy is not an error here: pod lookups report it (so an agent on a
// node without cgroups still serves node faults).
func NewFinder(cfg Config) (*Finder, error) {
	d, err := ParseDriver(string(cfg.Driver))
	if err != nil {
		return nil, err
	}
	cfg.Driver = d
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	f := &Finder{cfg: cfg}
	f.h, f.hErr = DetectHierarchy(cfg.CgroupRoot)
	node := cfg.NodeNetNS
	if node == "" {
		node = "/proc/self/ns/net"
	}
	f.node, f.nodeErr = StatNS(node)
	return f, nil
}

// Hierarchy returns the detected cgroup hierarchy.
func (f *Finder) Hierarchy() (Hierarchy, error) { return f.h, f.hErr }

// Driver returns the configured cgroup driver.
func (f *Finder) Driver() CgroupDriver { return f.cfg.Driver }

// PodCgroup returns the pod's cgroup, relative to the hierarchy's root.
func (f *Finder) PodCgroup(p agentapi.Pod) (string, error) {
	if err := ValidatePod(&p); err != nil {
		return "", err
	}
	if f.hErr != nil {
		return "", fmt.Errorf("find pod %s: %w", podName(p), f.hErr)
	}
	return FindPodCgroup(f.h, f.cfg.Driver, p)
}

func (f *Finder) procs(p agentapi.Pod) ([]Proc, error) {
	cg, err := f.PodCgroup(p)
	if err != nil {
		return nil, err
	}
	return PodProcesses(f.h, f.cfg.ProcRoot, cg, p)
}

// OpenNetNS opens the network namespace the pod's processes are in now,
// through the first process of PodProcesses that can be opened (each
// verified to still be that process and in the pod's cgroup once its
// namespace is open). A pod in the node's namespace is refused with
// ErrHostNetwork.
func (f *Finder) OpenNetNS(ctx context.Context, p agentapi.Pod) (*NetNS, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	procs, err := f.procs(p)
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, pr := range procs {
		ns, err := openProcNetNS(f.cfg.ProcRoot, f.h.Dir(pr.Cgroup), pr)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := f.notNode(ns, p); err != nil {
			ns.Close()
			return nil, err
		}
		return ns, nil
	}
	return nil, fmt.Errorf("open the network namespace of pod %s: no process could be opened: %s", podName(p), strings.Join(errs, "; "))
}

func (f *Finder) notNode(ns *NetNS, p agentapi.Pod) error {
	if f.nodeErr != nil {
		return fmt.Errorf("identify the node's network namespace: %w", f.nodeErr)
	}
	if ns.ID == f.node {
		return fmt.Errorf("pod %s: %w: a pod-scoped network fault would act on the whole node; target the node instead", podName(p), ErrHostNetwork)
	}
	return nil
}

// FindNetNS opens the network namespace id, through any process of the pod
// that is in it now (the process that was used at apply may be gone). If
// the pod is gone, or none of its processes is in that namespace any more
// (the sandbox was recreated, which destroys the old namespace with
// whatever was in it), the error wraps ErrGone.
func (f *Finder) FindNetNS(ctx context.Context, p agentapi.Pod, id NSID) (*NetNS, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	procs, err := f.procs(p)
	if err != nil {
		return nil, err
	}
	var other []string
	for _, pr := range procs {
		got, err := StatNS(fmt.Sprintf("%s/%d/ns/net", f.cfg.ProcRoot, pr.PID))
		if err != nil {
			continue // exited meanwhile
		}
		if got != id {
			other = append(other, got.String())
			continue
		}
		ns, err := openProcNetNS(f.cfg.ProcRoot, f.h.Dir(pr.Cgroup), pr)
		if err != nil || ns.ID != id {
			if ns != nil {
				ns.Close()
			}
			continue
		}
		return ns, nil
	}
	return nil, fmt.Errorf("%w: no process of pod %s is in network namespace %s any more (its processes are in %s)",
		ErrGone, podName(p), id, strings.Join(dedup(other), ", "))
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return []string{"none that could be read"}
	}
	return out
}

// IsGone reports whether err says the pod or its namespace is gone.
func IsGone(err error) bool { return errors.Is(err, ErrGone) }
