package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments/runner"
)

// Timeouts of calls to every agent at once.
const (
	statusTimeout = 5 * time.Second
	haltTimeout   = 30 * time.Second
)

// fleet is the node agents chaosd knows: a static list (standalone) or
// the agent DaemonSet's pods (Kubernetes).
type fleet interface {
	runner.Agents
	// agents lists every agent known now (of cluster, or all), by
	// cluster and node.
	agents(cluster string) []fleetAgent
	// hasCluster reports whether chaosd knows the cluster.
	hasCluster(name string) bool
}

// fleetAgent is one agent; err says why it cannot be asked (client nil).
type fleetAgent struct {
	cluster, node string
	client        *agentclient.Client
	err           error
}

// staticFleet is the agents of the configuration's clusters.
type staticFleet struct {
	clusters map[string][]fleetAgent
}

func newStaticFleet(clusters []Cluster, token string, tc *tls.Config) (*staticFleet, error) {
	f := &staticFleet{clusters: map[string][]fleetAgent{}}
	for _, cl := range clusters {
		f.clusters[cl.Name] = []fleetAgent{}
		for _, a := range cl.Agents {
			c, err := agentclient.NewClient(a.Endpoint, token, agentclient.WithTLS(tc))
			if err != nil {
				return nil, fmt.Errorf("agent %s/%s: %w", cl.Name, a.Node, err)
			}
			f.clusters[cl.Name] = append(f.clusters[cl.Name], fleetAgent{cluster: cl.Name, node: a.Node, client: c})
		}
	}
	return f, nil
}

// Agent returns the agent of a node (runner.Agents).
func (f *staticFleet) Agent(cluster, node string) (runner.Agent, error) {
	for _, a := range f.clusters[cluster] {
		if a.node == node {
			return a.client, nil
		}
	}
	return nil, fmt.Errorf("no agent configured for node %s in cluster %s", node, cluster)
}

func (f *staticFleet) agents(cluster string) []fleetAgent {
	var out []fleetAgent
	for cl, as := range f.clusters {
		if cluster == "" || cl == cluster {
			out = append(out, as...)
		}
	}
	sortAgents(out)
	return out
}

func (f *staticFleet) hasCluster(name string) bool { _, ok := f.clusters[name]; return ok }

func sortAgents(as []fleetAgent) {
	sort.Slice(as, func(i, j int) bool {
		if as[i].cluster != as[j].cluster {
			return as[i].cluster < as[j].cluster
		}
		return as[i].node < as[j].node
	})
}

// each calls fn for every agent of f (of cluster, or all), in parallel,
// and waits for all.
func each(f fleet, cluster string, fn func(a fleetAgent)) {
	var wg sync.WaitGroup
	for _, a := range f.agents(cluster) {
		wg.Go(func() { fn(a) })
	}
	wg.Wait()
}

// agentInfos asks every agent for its status.
func agentInfos(ctx context.Context, f fleet) []api.AgentInfo {
	out := []api.AgentInfo{}
	var mu sync.Mutex
	each(f, "", func(a fleetAgent) {
		info := api.AgentInfo{Cluster: a.cluster, Node: a.node}
		if a.err != nil {
			info.Error = a.err.Error()
			mu.Lock()
			out = append(out, info)
			mu.Unlock()
			return
		}
		actx, cancel := context.WithTimeout(ctx, statusTimeout)
		defer cancel()
		st, err := a.client.Status(actx)
		if err != nil {
			info.Error = err.Error()
		} else {
			info.Reachable, info.Version = true, st.Version
			info.Capabilities, info.Unavailable, info.ActiveFaults = st.Capabilities, st.Unavailable, len(st.Faults)
		}
		mu.Lock()
		out = append(out, info)
		mu.Unlock()
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Node < out[j].Node
	})
	return out
}

// halt aborts every run in progress and asks every agent (of cluster, or
// all) to revert everything it holds, in parallel. A halt is not bound to
// its caller: it goes on if the client hangs up.
func (d *Daemon) halt(ctx context.Context, cluster string) (api.HaltResult, error) {
	if cluster != "" && !d.fleet.hasCluster(cluster) {
		return api.HaltResult{}, httpapi.Errorf(http.StatusNotFound, "cluster %q has no agents configured", cluster)
	}
	res := api.HaltResult{AbortedRuns: []string{}, Agents: []api.HaltedNode{}}
	// Suites first: none of them starts its next experiment.
	for id, sr := range d.suites.allLive() {
		sr.Abort("halt")
		res.AbortedSuiteRuns = append(res.AbortedSuiteRuns, id)
	}
	sort.Strings(res.AbortedSuiteRuns)
	for id, rn := range d.runs.all() {
		rn.Abort("halt")
		res.AbortedRuns = append(res.AbortedRuns, id)
	}
	sort.Strings(res.AbortedRuns)
	var mu sync.Mutex
	each(d.fleet, cluster, func(a fleetAgent) {
		n := api.HaltedNode{Cluster: a.cluster, Node: a.node}
		if a.err != nil {
			n.Error = a.err.Error()
		} else {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), haltTimeout)
			defer cancel()
			sts, err := a.client.Halt(hctx)
			n.Reverted = len(sts)
			if err != nil {
				n.Error = err.Error()
			}
		}
		mu.Lock()
		res.Agents = append(res.Agents, n)
		mu.Unlock()
	})
	sort.Slice(res.Agents, func(i, j int) bool {
		if res.Agents[i].Cluster != res.Agents[j].Cluster {
			return res.Agents[i].Cluster < res.Agents[j].Cluster
		}
		return res.Agents[i].Node < res.Agents[j].Node
	})
	d.lg.Warn("halt", zap.String("cluster", cluster), zap.Strings("abortedRuns", res.AbortedRuns), zap.Int("agents", len(res.Agents)))
	return res, nil
}
