package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/targets"
)

// previewAgentTimeout bounds each agent's status call of a preview.
const previewAgentTimeout = 3 * time.Second

// preview is what a run of exp started now would touch: its targets
// resolved by the inventory the runner uses, and for every fault each
// eligible node's agent asked whether it can run the fault's kind (the
// preflight of a run, without Prometheus). Nothing is injected.
func preview(ctx context.Context, exp *experiments.Experiment, info api.ExperimentInfo, inv runner.Inventory, agents runner.Agents, now time.Time) api.ExperimentPreview {
	spec := &exp.Spec
	p := api.ExperimentPreview{
		Experiment: info, ResolvedAt: now,
		DurationSeconds:      spec.Duration.D().Seconds(),
		ProbeIntervalSeconds: spec.ProbeInterval.D().Seconds(),
		RTOSeconds:           spec.Recovery.RTO.D().Seconds(),
	}
	addProbes := func(phase api.Phase, list []probes.Probe) {
		for _, pr := range list {
			p.Probes = append(p.Probes, api.PreviewProbe{Phase: phase, Name: pr.Name, Query: pr.Query, Condition: pr.Condition()})
		}
	}
	addProbes(api.PhaseSteadyState, spec.SteadyState.Probes)
	if spec.Effects != nil {
		addProbes(api.PhaseEffects, spec.Effects.Probes)
	}
	for _, a := range spec.AbortWhen {
		p.Probes = append(p.Probes, api.PreviewProbe{Phase: api.PhaseAbort, Name: a.Name, Query: a.Query,
			Condition: fmt.Sprintf("%s for %s", a.Condition(), a.For.D())})
	}
	addProbes(api.PhaseRecovering, spec.Recovery.Probes)

	// Every target resolved once, blast radius left out: the run picks
	// among these at random when it starts.
	eligible := map[string][]targets.Node{}
	for _, t := range spec.Targets {
		pt := api.PreviewTarget{Name: t.Name, Cluster: t.Cluster, Nodes: t.Nodes, Service: t.Service,
			Selector: selectorString(t.Selector), Mode: t.Mode.String(), Eligible: []string{}}
		all := t
		all.Mode = experiments.BlastRadius{Kind: experiments.BlastAll}
		nodes, err := inv.Resolve(ctx, all)
		switch {
		case err != nil:
			pt.Error = err.Error()
			p.Problems = append(p.Problems, fmt.Sprintf("target %s: %v", t.Name, err))
		case len(nodes) == 0:
			pt.Error = "selects no node"
			p.Problems = append(p.Problems, fmt.Sprintf("target %s selects no node: a run would stop at preflight", t.Name))
		}
		for _, n := range nodes {
			pt.Eligible = append(pt.Eligible, n.Key())
		}
		pt.Picked = len(targets.Pick(nodes, t.Mode, nil))
		eligible[t.Name] = nodes
		p.Targets = append(p.Targets, pt)
	}

	// Each node's agent is asked once, whatever number of faults land
	// there, all of them at once (an agent down costs its timeout once).
	type answer struct {
		unavailable map[string]string
		err         error
	}
	asked := map[string]*answer{}
	var wg sync.WaitGroup
	for _, t := range spec.Targets {
		for _, n := range eligible[t.Name] {
			key := n.Cluster + "/" + n.Name
			if asked[key] != nil {
				continue
			}
			a := &answer{}
			asked[key] = a
			wg.Add(1)
			go func() {
				defer wg.Done()
				ag, err := agents.Agent(n.Cluster, n.Name)
				if err != nil {
					a.err = err
					return
				}
				cctx, cancel := context.WithTimeout(ctx, previewAgentTimeout)
				defer cancel()
				st, err := ag.Status(cctx)
				a.unavailable, a.err = st.Unavailable, err
			}()
		}
	}
	wg.Wait()
	ask := func(n targets.Node) answer { return *asked[n.Cluster+"/"+n.Name] }
	for i := range spec.Faults {
		f := &spec.Faults[i]
		pf := api.PreviewFault{Name: f.Name, Kind: string(f.Kind), Target: f.Target, Params: faultParams(f), On: []api.PreviewPlacement{}}
		for _, n := range eligible[f.Target] {
			pl := api.PreviewPlacement{Cluster: n.Cluster, Node: n.Name, Instance: n.InstanceName()}
			if _, err := f.ToAgent(n.Placement()); err != nil {
				pl.Problem = err.Error()
			} else if a := ask(n); a.err != nil {
				pl.Problem = "agent: " + a.err.Error()
			} else if why, ok := a.unavailable[string(f.Kind)]; ok {
				pl.Problem = fmt.Sprintf("cannot run %s faults: %s", f.Kind, why)
			} else {
				pl.Ready = true
			}
			if pl.Problem != "" {
				p.Problems = append(p.Problems, fmt.Sprintf("fault %s on %s: %s", f.Name, n.Key(), pl.Problem))
			}
			pf.On = append(pf.On, pl)
		}
		p.Faults = append(p.Faults, pf)
	}
	return p
}

// faultParams is the parameter block of f's kind as JSON (defaults
// applied), or nil.
func faultParams(f *experiments.Fault) json.RawMessage {
	b, err := json.Marshal(f)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for k, v := range m {
		if k != "name" && k != "kind" && k != "target" {
			return v
		}
	}
	return nil
}

// selectorString writes a node selector as k=v,... in key order.
func selectorString(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sel[k]
	}
	return strings.Join(parts, ",")
}
