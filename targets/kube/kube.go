// Package kube is the Kubernetes inventory of chaosd: it watches Nodes and
// Pods through client-go's shared informers (no polling) and answers what
// a run needs: Resolve (a target's nodes or a service's Ready pods, blast
// radius applied), Agent (the agent DaemonSet's pod on a node) and Watch
// (a targeted pod that disappears or turns unready mid-run).
package kube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/targets"
)

// Config says where the agents and the services' pods are.
type Config struct {
	// Cluster is the name experiments' targets use for this cluster.
	Cluster string
	// AgentNamespace and AgentSelector find the agent DaemonSet's pods;
	// AgentPort is the API's container port (a number or a port name) and
	// AgentScheme http or https.
	AgentNamespace, AgentSelector, AgentPort, AgentScheme string
	// ServiceNamespace holds the services' pods (empty: every namespace);
	// a target's service S is the pods whose label ServiceLabel is S.
	ServiceNamespace, ServiceLabel string
	// ActuatorPort is the Spring Boot actuator's container port (a number
	// or a port name); ActuatorScheme http or https.
	ActuatorPort, ActuatorScheme string
	// AgentToken is the bearer token for the agents' API.
	AgentToken string
	// AgentTLS is the TLS of https agents (chaosd's client certificate
	// and the agents' CA).
	AgentTLS *tls.Config
	// Resync of the informers (0: none; the watch keeps them current).
	Resync time.Duration
}

// Inventory is a live view of the cluster's nodes, agents and service
// pods. Start it, then use it from any goroutine.
type Inventory struct {
	cfg      Config
	lg       *zap.Logger
	agentSel labels.Selector

	factories []informers.SharedInformerFactory
	nodes     listersv1.NodeLister
	agents    listersv1.PodLister
	services  listersv1.PodLister
	svcInf    cache.SharedIndexInformer

	mu      sync.Mutex
	clients map[string]*agentclient.Client // by endpoint
	watches map[*watch]struct{}
}

// New builds an inventory on client. Nothing is watched before Start.
func New(client kubernetes.Interface, cfg Config, lg *zap.Logger) (*Inventory, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	sel, err := labels.Parse(cfg.AgentSelector)
	if err != nil {
		return nil, fmt.Errorf("agent selector %q: %w", cfg.AgentSelector, err)
	}
	if cfg.ServiceLabel == "" {
		return nil, errors.New("service label key: required")
	}
	inv := &Inventory{cfg: cfg, lg: lg, agentSel: sel, clients: map[string]*agentclient.Client{}, watches: map[*watch]struct{}{}}
	// One factory per scope: nodes (cluster), agents (their namespace and
	// selector), services (their namespace, pods carrying the label key).
	cluster := informers.NewSharedInformerFactory(client, cfg.Resync)
	agentF := informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync,
		informers.WithNamespace(cfg.AgentNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.AgentSelector }))
	svcOpts := []informers.SharedInformerOption{
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.ServiceLabel })}
	if cfg.ServiceNamespace != "" {
		svcOpts = append(svcOpts, informers.WithNamespace(cfg.ServiceNamespace))
	}
	svcF := informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync, svcOpts...)
	inv.factories = []informers.SharedInformerFactory{cluster, agentF, svcF}
	inv.nodes = cluster.Core().V1().Nodes().Lister()
	inv.agents = agentF.Core().V1().Pods().Lister()
	inv.services = svcF.Core().V1().Pods().Lister()
	inv.svcInf = svcF.Core().V1().Pods().Informer()
	if _, err := inv.svcInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { inv.podChanged(obj, false) },
		DeleteFunc: func(obj any) { inv.podChanged(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("watch service pods: %w", err)
	}
	return inv, nil
}

// Start starts the informers and waits until their caches hold the
// cluster's current state (or ctx ends). The informers stop with ctx.
func (inv *Inventory) Start(ctx context.Context) error {
	for _, f := range inv.factories {
		f.Start(ctx.Done())
	}
	for _, f := range inv.factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("sync the %v cache: %w", typ, context.Cause(ctx))
			}
		}
	}
	return nil
}

// Shutdown waits for the informers' goroutines once ctx of Start ended.
func (inv *Inventory) Shutdown() {
	for _, f := range inv.factories {
		f.Shutdown()
	}
}

// Resolve returns the nodes (or, for a service target, the service's Ready
// pods on them) that t selects, blast radius applied.
func (inv *Inventory) Resolve(_ context.Context, t experiments.Target) ([]targets.Node, error) {
	if t.Cluster != inv.cfg.Cluster {
		return nil, fmt.Errorf("cluster %q is not this cluster (%s): run the experiment from that cluster's chaosd", t.Cluster, inv.cfg.Cluster)
	}
	all, err := inv.nodes.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	known := map[string]bool{}
	for _, n := range all {
		known[n.Name] = true
	}
	for _, n := range t.Nodes {
		if !known[n] {
			return nil, fmt.Errorf("node %q is not in cluster %s", n, t.Cluster)
		}
	}
	eligible := map[string]string{} // name → UID
	var sel []targets.Node
	for _, n := range all {
		if len(t.Nodes) > 0 && !slices.Contains(t.Nodes, n.Name) || !targets.LabelsMatch(n.Labels, t.Selector) {
			continue
		}
		eligible[n.Name] = string(n.UID)
		sel = append(sel, targets.Node{Cluster: t.Cluster, Name: n.Name, UID: string(n.UID)})
	}
	if t.Service == "" {
		return targets.Pick(sel, t.Mode, nil), nil
	}
	pods, err := inv.services.List(labels.SelectorFromSet(labels.Set{inv.cfg.ServiceLabel: t.Service}))
	if err != nil {
		return nil, fmt.Errorf("list pods of service %s: %w", t.Service, err)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("service %q has no pods labelled %s=%s%s", t.Service, inv.cfg.ServiceLabel, t.Service, inv.inNamespace())
	}
	var insts []targets.Node
	for _, p := range pods {
		nodeUID, ok := eligible[p.Spec.NodeName]
		if !podReady(p) || !ok {
			continue
		}
		in, err := inv.instance(t.Service, p)
		if err != nil {
			return nil, err
		}
		insts = append(insts, targets.Node{Cluster: t.Cluster, Name: p.Spec.NodeName, UID: nodeUID, Instance: in})
	}
	return targets.Pick(insts, t.Mode, nil), nil
}

func (inv *Inventory) inNamespace() string {
	if inv.cfg.ServiceNamespace == "" {
		return ""
	}
	return " in namespace " + inv.cfg.ServiceNamespace
}

// instance describes one Ready pod of a service.
func (inv *Inventory) instance(service string, p *corev1.Pod) (*targets.Instance, error) {
	port, err := containerPort(p, inv.cfg.ActuatorPort)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s of service %s: actuator port: %w", p.Namespace, p.Name, service, err)
	}
	pod := &agentapi.Pod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), QOSClass: string(p.Status.QOSClass)}
	for _, cs := range p.Status.ContainerStatuses {
		if _, id, ok := strings.Cut(cs.ContainerID, "://"); ok && id != "" {
			pod.ContainerIDs = append(pod.ContainerIDs, id)
		}
	}
	return &targets.Instance{
		Service: service, Name: p.Name, IP: p.Status.PodIP, Pod: pod,
		URL: inv.cfg.ActuatorScheme + "://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)),
	}, nil
}

// Agent returns the client of the Ready agent pod on node (runner.Agents).
func (inv *Inventory) Agent(cluster, node string) (runner.Agent, error) {
	if cluster != inv.cfg.Cluster {
		return nil, fmt.Errorf("cluster %q is not this cluster (%s)", cluster, inv.cfg.Cluster)
	}
	for _, a := range inv.AgentPods() {
		if a.Node != node {
			continue
		}
		if a.Err != nil {
			return nil, fmt.Errorf("agent on node %s: %w", node, a.Err)
		}
		return a.Client, nil
	}
	return nil, fmt.Errorf("no agent pod on node %s (selector %s in namespace %s)", node, inv.cfg.AgentSelector, inv.cfg.AgentNamespace)
}

// AgentPod is one agent DaemonSet pod as the inventory sees it.
type AgentPod struct {
	Node   string
	Pod    string
	Client *agentclient.Client // nil when Err is set
	// Err says why the agent cannot be used (not Ready, no host IP, ...).
	Err error
}

// AgentPods lists the agent pods, one per node (the newest Ready one when
// a node has several, e.g. during a rollout), by node name.
func (inv *Inventory) AgentPods() []AgentPod {
	pods, err := inv.agents.List(inv.agentSel)
	if err != nil {
		return nil
	}
	sort.Slice(pods, func(i, j int) bool {
		if ri, rj := podReady(pods[i]), podReady(pods[j]); ri != rj {
			return ri
		}
		return pods[i].CreationTimestamp.After(pods[j].CreationTimestamp.Time)
	})
	seen := map[string]bool{}
	var out []AgentPod
	for _, p := range pods {
		node := p.Spec.NodeName
		if node == "" || seen[node] {
			continue
		}
		seen[node] = true
		ap := AgentPod{Node: node, Pod: p.Name}
		ap.Client, ap.Err = inv.agentClient(p)
		out = append(out, ap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func (inv *Inventory) agentClient(p *corev1.Pod) (*agentclient.Client, error) {
	switch {
	case p.DeletionTimestamp != nil:
		return nil, fmt.Errorf("agent pod %s is terminating", p.Name)
	case !podReady(p):
		return nil, fmt.Errorf("agent pod %s is not Ready (phase %s)", p.Name, p.Status.Phase)
	case p.Status.HostIP == "":
		return nil, fmt.Errorf("agent pod %s has no host IP", p.Name)
	}
	port, err := containerPort(p, inv.cfg.AgentPort)
	if err != nil {
		return nil, fmt.Errorf("agent pod %s: %w", p.Name, err)
	}
	ep := inv.cfg.AgentScheme + "://" + net.JoinHostPort(p.Status.HostIP, strconv.Itoa(port))
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if c, ok := inv.clients[ep]; ok {
		return c, nil
	}
	c, err := agentclient.NewClient(ep, inv.cfg.AgentToken, agentclient.WithTLS(inv.cfg.AgentTLS))
	if err != nil {
		return nil, err
	}
	inv.clients[ep] = c
	return c, nil
}

// podReady: Running with the Ready condition true, not being deleted.
func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPort resolves a port given by number or by a container port's
// name.
func containerPort(p *corev1.Pod, port string) (int, error) {
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return 0, fmt.Errorf("%d is not a port number", n)
		}
		return n, nil
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == port {
				return int(cp.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("no container port named %q", port)
}
