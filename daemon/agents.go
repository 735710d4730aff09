package daemon

import (
	"context"
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

// fleet is the node agents chaosd knows, by cluster.
type fleet struct {
	clusters map[string][]agentHandle
}

type agentHandle struct {
	node   string
	client *agentclient.Client
}

func newFleet(clusters []Cluster, token string) (*fleet, error) {
	f := &fleet{clusters: map[string][]agentHandle{}}
	for _, cl := range clusters {
		f.clusters[cl.Name] = []agentHandle{}
		for _, a := range cl.Agents {
			c, err := agentclient.NewClient(a.Endpoint, token)
			if err != nil {
				return nil, fmt.Errorf("agent %s/%s: %w", cl.Name, a.Node, err)
			}
			f.clusters[cl.Name] = append(f.clusters[cl.Name], agentHandle{node: a.Node, client: c})
		}
	}
	return f, nil
}

// Agent returns the agent of a node (runner.Agents).
func (f *fleet) Agent(cluster, node string) (runner.Agent, error) {
	for _, a := range f.clusters[cluster] {
		if a.node == node {
			return a.client, nil
		}
	}
	return nil, fmt.Errorf("no agent configured for node %s in cluster %s", node, cluster)
}

// each calls fn for every agent (of cluster, or all), in parallel, and
// waits for all.
func (f *fleet) each(cluster string, fn func(cluster string, a agentHandle)) {
	var wg sync.WaitGroup
	for cl, hs := range f.clusters {
		if cluster != "" && cl != cluster {
			continue
		}
		for _, h := range hs {
			wg.Go(func() { fn(cl, h) })
		}
	}
	wg.Wait()
}

// infos asks every agent for its status.
func (f *fleet) infos(ctx context.Context) []api.AgentInfo {
	out := []api.AgentInfo{}
	var mu sync.Mutex
	f.each("", func(cl string, h agentHandle) {
		actx, cancel := context.WithTimeout(ctx, statusTimeout)
		defer cancel()
		info := api.AgentInfo{Cluster: cl, Node: h.node}
		st, err := h.client.Status(actx)
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
	if _, ok := d.fleet.clusters[cluster]; cluster != "" && !ok {
		return api.HaltResult{}, httpapi.Errorf(http.StatusNotFound, "cluster %q has no agents configured", cluster)
	}
	res := api.HaltResult{AbortedRuns: []string{}, Agents: []api.HaltedNode{}}
	for id, rn := range d.runs.all() {
		rn.Abort("halt")
		res.AbortedRuns = append(res.AbortedRuns, id)
	}
	sort.Strings(res.AbortedRuns)
	var mu sync.Mutex
	d.fleet.each(cluster, func(cl string, h agentHandle) {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), haltTimeout)
		defer cancel()
		sts, err := h.client.Halt(hctx)
		n := api.HaltedNode{Cluster: cl, Node: h.node, Reverted: len(sts)}
		if err != nil {
			n.Error = err.Error()
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
