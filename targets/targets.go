// Package targets turns an experiment's targets into the nodes and
// service instances its faults land on: an inventory answers Resolve, and
// Pick applies the blast radius. Static is the inventory of chaosd's
// standalone mode (nodes and services from its configuration); a
// Kubernetes inventory plugs in behind the same Resolve.
package targets

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/experiments"
)

// Node is one resolved target: a node, and for a service target one
// instance of the service on it.
type Node struct {
	Cluster string
	Name    string
	// UID is the Node object's UID (Kubernetes mode), for Events on it.
	UID string
	// Instance is the service instance on this node (nil for node targets).
	Instance *Instance
}

// Instance is one instance (pod) of a service.
type Instance struct {
	Service string
	Name    string // unique within the service, e.g. the pod name
	// URL is the instance's base URL (its Spring Boot actuator lives under
	// URL/actuator), as the agent on its node reaches it.
	URL string
	// AdminURL is the base URL at which chaosd itself reaches the
	// instance, when that differs from URL (chaosd undoes a Chaos Monkey
	// assault through it when the agent stops answering); empty: URL.
	AdminURL string
	// Cgroup is the instance's cgroup path relative to the cgroup root
	// (standalone mode; in Kubernetes the agent finds it from Pod).
	Cgroup string
	// Pod is set when the instance is a Kubernetes pod: faults on it act
	// inside the pod (its network namespace, its cgroup).
	Pod *agentapi.Pod
	// IP is the instance's address (the pod IP).
	IP string
}

// Key identifies n within its cluster: "node" or "node/instance".
func (n Node) Key() string {
	if n.Instance != nil {
		return n.Name + "/" + n.Instance.Name
	}
	return n.Name
}

// InstanceName is "service/instance", or "" for a node target.
func (n Node) InstanceName() string {
	if n.Instance == nil {
		return ""
	}
	return n.Instance.Service + "/" + n.Instance.Name
}

// Placement is what a fault kind's conversion needs to know about n.
func (n Node) Placement() experiments.Placement {
	p := experiments.Placement{Node: n.Name}
	if in := n.Instance; in != nil {
		p.Instance, p.URL, p.Cgroup = in.Name, in.URL, in.Cgroup
		if in.Pod != nil {
			pod := *in.Pod
			pod.ContainerIDs = slices.Clone(in.Pod.ContainerIDs)
			p.Pod = &pod
		}
	}
	return p
}

// Change is something that happened to a target during a run (a pod
// deleted or no longer Ready).
type Change struct {
	Key     string // the target's Node.Key()
	Message string
}

// Pick applies the blast radius m to the eligible nodes, choosing at
// random with r (nil: the global source), and returns them in Key order.
// It does not change nodes.
func Pick(nodes []Node, m experiments.BlastRadius, r *rand.Rand) []Node {
	nodes = slices.Clone(nodes)
	n := len(nodes)
	switch m.Kind {
	case experiments.BlastOne:
		n = min(1, n)
	case experiments.BlastFixed:
		n = min(m.N, n)
	case experiments.BlastPercent:
		n = min(int(math.Ceil(float64(n)*m.Percent/100)), n)
	}
	if n < len(nodes) {
		shuffle := rand.Shuffle
		if r != nil {
			shuffle = r.Shuffle
		}
		shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	}
	out := nodes[:n]
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Key(), b.Key()) })
	return out
}

// Cluster is what a static inventory knows of one cluster.
type Cluster struct {
	Name     string
	Nodes    []NodeInfo
	Services []Service
}

// NodeInfo is one node and its labels.
type NodeInfo struct {
	Name   string
	Labels map[string]string
}

// Service is a service and its instances.
type Service struct {
	Name      string
	Instances []ServiceInstance
}

// ServiceInstance is one instance of a service and the node it runs on.
type ServiceInstance struct {
	Name     string
	Node     string
	URL      string
	AdminURL string
	Cgroup   string
}

// Static resolves targets against a fixed list of clusters (chaosd's
// configuration). It is safe for concurrent use: it never changes after
// NewStatic.
type Static struct {
	clusters map[string]Cluster
	rand     *rand.Rand
}

// NewStatic returns an inventory of clusters. r picks nodes for partial
// blast radii; nil uses the global source.
func NewStatic(clusters []Cluster, r *rand.Rand) *Static {
	s := &Static{clusters: map[string]Cluster{}, rand: r}
	for _, c := range clusters {
		s.clusters[c.Name] = c
	}
	return s
}

// Resolve returns the nodes (or, for a service target, the service's
// instances on them) that t selects, blast radius applied.
func (s *Static) Resolve(_ context.Context, t experiments.Target) ([]Node, error) {
	cl, ok := s.clusters[t.Cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q has no agents configured", t.Cluster)
	}
	known := map[string]bool{}
	for _, n := range cl.Nodes {
		known[n.Name] = true
	}
	for _, n := range t.Nodes {
		if !known[n] {
			return nil, fmt.Errorf("node %q is not in cluster %s", n, t.Cluster)
		}
	}
	eligible := map[string]bool{}
	var sel []Node
	for _, n := range cl.Nodes {
		if len(t.Nodes) > 0 && !slices.Contains(t.Nodes, n.Name) {
			continue
		}
		if !LabelsMatch(n.Labels, t.Selector) {
			continue
		}
		eligible[n.Name] = true
		sel = append(sel, Node{Cluster: t.Cluster, Name: n.Name})
	}
	if t.Service == "" {
		return Pick(sel, t.Mode, s.rand), nil
	}
	i := slices.IndexFunc(cl.Services, func(sv Service) bool { return sv.Name == t.Service })
	if i < 0 {
		return nil, fmt.Errorf("service %q is not known in cluster %s", t.Service, t.Cluster)
	}
	svc := cl.Services[i]
	var insts []Node
	for _, in := range svc.Instances {
		if !eligible[in.Node] {
			continue
		}
		insts = append(insts, Node{Cluster: t.Cluster, Name: in.Node,
			Instance: &Instance{Service: svc.Name, Name: in.Name, URL: in.URL, AdminURL: in.AdminURL, Cgroup: in.Cgroup}})
	}
	return Pick(insts, t.Mode, s.rand), nil
}

// LabelsMatch reports whether have holds every label of want.
func LabelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
