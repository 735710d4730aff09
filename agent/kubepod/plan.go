// Package kubepod finds a Kubernetes pod on the agent's node from what
// chaosd knows about it (agentapi.Pod: UID, QoS class, container IDs): the
// pod's cgroup, under kubelet's cgroupfs or systemd cgroup driver, on
// cgroup v1 (the memory controller's hierarchy) or v2 (unified); a live
// process of the pod from that cgroup's container sub-cgroups; and, through
// that process, the pod's network namespace.
//
// The package is split like the drivers: a pure planner (Layout,
// PodCgroups, ContainerCgroups: UID, QoS, driver → candidate paths,
// unit-tested without root) and a thin filesystem lookup (FindPodCgroup,
// PodProcesses, Finder) whose errors name every path tried. Nothing here
// changes the system: it reads cgroupfs and procfs and opens namespace
// files.
package kubepod

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// CgroupDriver is kubelet's cgroup driver (its --cgroup-driver).
type CgroupDriver string

// Cgroup drivers.
const (
	// DriverAuto tries both layouts; the one whose kubepods root exists
	// comes first.
	DriverAuto     CgroupDriver = "auto"
	DriverCgroupfs CgroupDriver = "cgroupfs"
	DriverSystemd  CgroupDriver = "systemd"
)

// ParseDriver accepts "", "auto", "cgroupfs" and "systemd" ("" is auto).
func ParseDriver(s string) (CgroupDriver, error) {
	switch CgroupDriver(s) {
	case "", DriverAuto:
		return DriverAuto, nil
	case DriverCgroupfs, DriverSystemd:
		return CgroupDriver(s), nil
	}
	return "", fmt.Errorf("cgroup driver %q: want auto, cgroupfs or systemd", s)
}

// QoS classes (a pod's status.qosClass).
const (
	Guaranteed = "Guaranteed"
	Burstable  = "Burstable"
	BestEffort = "BestEffort"
)

// Roots of kubelet's pod cgroups under the hierarchy root, per driver
// (kubelet's default --cgroup-root "/").
const (
	CgroupfsRoot = "kubepods"
	SystemdRoot  = "kubepods.slice"
)

// OwnPrefix starts the name of every cgroup the agent creates inside a
// pod's cgroup (the memory driver's stressor leaf). Processes in such a
// cgroup are the agent's, in the agent's network namespace: they never
// stand for the pod.
const OwnPrefix = "chaosd-"

// Layout says how kubelet lays out pod cgroups on this node.
type Layout struct {
	Driver CgroupDriver // DriverAuto: both, cgroupfs first
	// Version of the hierarchy (1: a v1 controller's hierarchy, e.g.
	// memory; 2: unified). Kubelet uses the same relative paths on both;
	// only what a process may join differs (on v2 only leaves hold
	// processes, so a pod's processes are always in container cgroups).
	Version int
}

// Validate checks the layout.
func (l Layout) Validate() error {
	if _, err := ParseDriver(string(l.Driver)); err != nil {
		return err
	}
	if l.Version != 1 && l.Version != 2 {
		return fmt.Errorf("cgroup version %d: want 1 or 2", l.Version)
	}
	return nil
}

func (l Layout) drivers() []CgroupDriver {
	switch l.Driver {
	case DriverCgroupfs, DriverSystemd:
		return []CgroupDriver{l.Driver}
	}
	return []CgroupDriver{DriverCgroupfs, DriverSystemd}
}

// Roots returns the kubepods roots of the layout's drivers, in order.
func (l Layout) Roots() []string {
	var out []string
	for _, d := range l.drivers() {
		out = append(out, root(d))
	}
	return out
}

func root(d CgroupDriver) string {
	if d == DriverSystemd {
		return SystemdRoot
	}
	return CgroupfsRoot
}

// ValidatePod checks the fields of a pod the lookup uses; errors name the
// field. The UID and container IDs become path elements, so they are held
// to the characters Kubernetes and container runtimes use.
func ValidatePod(p *agentapi.Pod) error {
	if p == nil {
		return errors.New("pod: missing")
	}
	if p.UID == "" {
		return errors.New("pod.uid: required")
	}
	if len(p.UID) > 64 || !alnumDash(p.UID) {
		return fmt.Errorf("pod.uid: %q is not a pod UID (letters, digits and '-', at most 64)", p.UID)
	}
	switch p.QOSClass {
	case "", Guaranteed, Burstable, BestEffort:
	default:
		return fmt.Errorf("pod.qosClass: %q is not Guaranteed, Burstable or BestEffort", p.QOSClass)
	}
	for i, id := range p.ContainerIDs {
		if id = ContainerID(id); id == "" || len(id) > 128 || !alnumDash(id) {
			return fmt.Errorf("pod.containerIds[%d]: %q is not a container ID", i, p.ContainerIDs[i])
		}
	}
	return nil
}

// ContainerID strips a "scheme://" prefix (containerd://, cri-o://,
// docker://) from a runtime container ID.
func ContainerID(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+3:]
	}
	return id
}

func alnumDash(s string) bool {
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// qosClasses lists the classes to try: the pod's own, or all three (the
// most common first) when it is unknown.
func qosClasses(q string) []string {
	if q != "" {
		return []string{q}
	}
	return []string{Burstable, BestEffort, Guaranteed}
}

// PodCgroups returns the cgroup paths (relative to the hierarchy root,
// slash-separated) where kubelet puts the pod's cgroup, in the order to
// try them:
//
//	cgroupfs: kubepods/pod<uid>                       (Guaranteed)
//	          kubepods/burstable/pod<uid>             (Burstable)
//	          kubepods/besteffort/pod<uid>            (BestEffort)
//	systemd:  kubepods.slice/kubepods-pod<uid_>.slice (Guaranteed)
//	          kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice
//	          kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice
//
// where uid_ is the UID with '-' replaced by '_' (systemd reserves '-' in
// slice names for nesting).
func (l Layout) PodCgroups(p agentapi.Pod) ([]string, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := ValidatePod(&p); err != nil {
		return nil, err
	}
	var out []string
	for _, d := range l.drivers() {
		for _, q := range qosClasses(p.QOSClass) {
			out = append(out, podCgroup(d, q, p.UID))
		}
	}
	return out, nil
}

func podCgroup(d CgroupDriver, qos, uid string) string {
	if d == DriverSystemd {
		u := strings.ReplaceAll(uid, "-", "_")
		if qos == Guaranteed {
			return path.Join(SystemdRoot, "kubepods-pod"+u+".slice")
		}
		q := strings.ToLower(qos)
		return path.Join(SystemdRoot, "kubepods-"+q+".slice", "kubepods-"+q+"-pod"+u+".slice")
	}
	if qos == Guaranteed {
		return path.Join(CgroupfsRoot, "pod"+uid)
	}
	return path.Join(CgroupfsRoot, strings.ToLower(qos), "pod"+uid)
}

// DriverOf says which driver's layout a pod cgroup path belongs to.
func DriverOf(podCgroup string) CgroupDriver {
	if strings.HasPrefix(podCgroup, SystemdRoot+"/") {
		return DriverSystemd
	}
	return DriverCgroupfs
}

// ContainerCgroups returns the cgroups (relative to the hierarchy root) a
// container of the pod may have under the pod's cgroup, for the container
// runtimes kubelet works with:
//
//	cgroupfs: <pod>/<id> (containerd, cri-dockerd), <pod>/crio-<id> (CRI-O)
//	systemd:  <pod>/cri-containerd-<id>.scope, <pod>/crio-<id>.scope,
//	          <pod>/docker-<id>.scope
func ContainerCgroups(podCgroup, containerID string) []string {
	id := ContainerID(containerID)
	if DriverOf(podCgroup) == DriverSystemd {
		return []string{
			path.Join(podCgroup, "cri-containerd-"+id+".scope"),
			path.Join(podCgroup, "crio-"+id+".scope"),
			path.Join(podCgroup, "docker-"+id+".scope"),
		}
	}
	return []string{path.Join(podCgroup, id), path.Join(podCgroup, "crio-"+id)}
}

// Foreign reports whether a sub-cgroup of a pod (by its base name) holds
// processes that are not in the pod's network namespace: the agent's own
// cgroups (OwnPrefix) and CRI-O's conmon monitors.
func Foreign(name string) bool {
	return strings.HasPrefix(name, OwnPrefix) || strings.Contains(name, "conmon")
}
