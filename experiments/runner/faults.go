package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/targets"
)

// liveFault is one fault on one node (or service instance).
type liveFault struct {
	node  targets.Node
	agent Agent
	fault agentapi.Fault
	name  string // the spec's fault name
	idx   int    // index in rec.Faults
}

// plan resolves targets and builds the agent faults, one per fault × node
// (or service instance), each converted by its kind (experiments.Fault.ToAgent).
func (r *Runner) plan(ctx context.Context) ([]liveFault, error) {
	spec := &r.exp.Spec
	var plan []liveFault
	for i := range spec.Faults {
		f := &spec.Faults[i]
		t, ok := spec.Target(f.Target)
		if !ok {
			return nil, fmt.Errorf("fault %s: unknown target %q", f.Name, f.Target)
		}
		nodes, err := r.deps.Inventory.Resolve(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("resolve target %s: %w", t.Name, err)
		}
		if len(nodes) == 0 {
			return nil, fmt.Errorf("target %s selects no node", t.Name)
		}
		for _, n := range nodes {
			af, err := f.ToAgent(n.Placement())
			if err != nil {
				return nil, err
			}
			af.ID = r.rec.ID + "." + f.Name
			if n.Instance != nil {
				af.ID += "." + n.Instance.Name
			}
			af.RunID, af.Experiment = r.rec.ID, r.rec.Experiment
			ag, err := r.deps.Agents.Agent(n.Cluster, n.Name)
			if err != nil {
				return nil, fmt.Errorf("fault %s on node %s: %w", f.Name, n.Name, err)
			}
			plan = append(plan, liveFault{node: n, agent: ag, fault: af, name: f.Name})
		}
	}
	return plan, nil
}

// injectAll asks each agent to apply its fault, one after the other, and
// stops at the first failure (revertAll then removes what went in).
func (r *Runner) injectAll(ctx context.Context, plan []liveFault) error {
	deadline := time.Now().Add(r.exp.Spec.Duration.D() + r.opts.DeadlineGrace)
	// The record names every planned fault, on disk, before any agent is
	// asked: a crash at any point after lets a restarted chaosd revert
	// each one (an agent that never got its fault answers 404: nothing
	// to do). One durable save, however many faults.
	err := r.updateDurable(func(rec *api.Run) {
		for i := range plan {
			lf := &plan[i]
			lf.fault.Deadline = deadline
			lf.fault.LeaseSeconds = r.opts.Lease.Seconds()
			lf.idx = len(rec.Faults)
			rec.Faults = append(rec.Faults, api.FaultRecord{
				Name: lf.name, Kind: string(lf.fault.Kind), Cluster: lf.node.Cluster,
				Node: lf.node.Name, Instance: lf.node.InstanceName(), AgentFaultID: lf.fault.ID,
			})
		}
	})
	if err != nil {
		return fmt.Errorf("record the planned faults (nothing injected): %w", err)
	}
	for _, lf := range plan {
		if ctx.Err() != nil {
			return errors.New("cancelled")
		}
		r.mu.Lock()
		r.faults = append(r.faults, lf) // revertAll reverts what was asked for
		r.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
		st, err := lf.agent.Inject(cctx, lf.fault)
		cancel()
		if err != nil {
			r.update(func(rec *api.Run) { rec.Faults[lf.idx].Error = err.Error() })
			r.record(&lf.node, true, ReasonInjectFailed, fmt.Sprintf("run %s: fault %s (%s): %v", r.rec.ID, lf.name, lf.fault.Kind, err))
			return fmt.Errorf("fault %s on node %s: %w", lf.name, lf.node.Name, err)
		}
		at := st.AppliedAt
		if at.IsZero() {
			at = time.Now()
		}
		r.lg.Info("fault injected", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name),
			zap.String("kind", string(lf.fault.Kind)), zap.String("instance", lf.node.InstanceName()))
		undo := adminUndo(st.Undo, lf.node)
		injected := func(rec *api.Run) {
			fr := &rec.Faults[lf.idx]
			fr.InjectedAt, fr.Undo, fr.SelfExpiry = &at, undo, st.SelfExpiry
			if !st.SelfExpiresAt.IsZero() {
				t := st.SelfExpiresAt
				fr.SelfExpiresAt = &t
			}
		}
		if undo == nil {
			// A restart reverts this fault by its agent fault ID, on disk
			// already; the rest rides on the next save.
			r.update(injected)
		} else if err := r.updateDurable(injected); err != nil {
			// The undo document is how a restarted chaosd undoes the fault
			// if its agent is gone too: on disk before the run goes on.
			return fmt.Errorf("record the undo document of fault %s on node %s: %w", lf.name, lf.node.Name, err)
		}
		r.record(&lf.node, false, ReasonInjected, fmt.Sprintf("run %s: fault %s (%s) injected, deadline %s",
			r.rec.ID, lf.name, lf.fault.Kind, lf.fault.Deadline.UTC().Format(time.RFC3339)))
	}
	now := time.Now()
	r.update(func(rec *api.Run) { rec.Times.Injected = &now })
	r.timing.lastSLO = now
	r.event(fmt.Sprintf("%d fault(s) in place", len(plan)))
	return nil
}

// renewLeases renews every fault's lease every Lease/3 until ctx ends. A
// fault its agent no longer holds (404, 410: reverted at its lease or
// deadline, or by a restart) is reported on lost once, and renewal stops.
func (r *Runner) renewLeases(ctx context.Context, lost chan<- string) {
	every := r.opts.Lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	lastOK := map[string]time.Time{} // fault@node → last renewal the agent answered
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		faults := append([]liveFault(nil), r.faults...)
		r.mu.Unlock()
		for _, lf := range faults {
			cctx, cancel := context.WithTimeout(ctx, every)
			st, err := lf.agent.Renew(cctx, lf.fault.ID, r.opts.Lease)
			cancel()
			key := lf.fault.ID + "@" + lf.node.Key()
			if err == nil || ctx.Err() != nil {
				lastOK[key] = time.Now()
				if err == nil && !st.SelfExpiresAt.IsZero() {
					r.mu.Lock()
					r.selfExpiresAt[lf.idx] = st.SelfExpiresAt
					r.mu.Unlock()
				}
				continue
			}
			var ae *agentapi.APIError
			if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 410) {
				select {
				case lost <- fmt.Sprintf("agent on node %s no longer holds fault %s: %s", lf.node.Name, lf.fault.ID, ae.Message):
				default:
				}
				return
			}
			// A transient failure: the next renewal may pass before the
			// lease runs out. An agent silent for a whole lease may be
			// dead: what its fault does is no longer known, so the run
			// ends (and the revert falls back to what chaosd can undo
			// itself).
			since, ok := lastOK[key]
			if !ok {
				since = time.Now().Add(-every) // its inject, about a renewal ago
				lastOK[key] = since
			}
			if time.Since(since) >= r.opts.Lease {
				select {
				case lost <- fmt.Sprintf("agent on node %s has not answered for %s (a whole lease): fault %s no longer watched: %v",
					lf.node.Name, time.Since(since).Round(time.Millisecond), lf.fault.ID, err):
				default:
				}
				return
			}
			r.lg.Warn("lease renewal failed", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name), zap.Error(err))
		}
	}
}

// revertAll reverts every injected fault, in parallel, on a context that
// the run's cancellation cannot stop. It returns an error if any fault
// could not be confirmed gone.
func (r *Runner) revertAll(ctx context.Context) error {
	r.mu.Lock()
	faults := append([]liveFault(nil), r.faults...)
	r.mu.Unlock()
	if len(faults) == 0 {
		return nil
	}
	r.setPhase(api.PhaseReverting, fmt.Sprintf("reverting %d fault(s)", len(faults)))
	rctx := context.WithoutCancel(ctx)
	errs := make([]error, len(faults))
	var wg sync.WaitGroup
	for i, lf := range faults {
		wg.Go(func() {
			r.mu.Lock()
			fr := r.rec.Faults[lf.idx].DeepCopy()
			if t, ok := r.selfExpiresAt[lf.idx]; ok {
				fr.SelfExpiresAt = &t // as of the last renewal
			}
			r.mu.Unlock()
			errs[i] = RevertFault(rctx, lf.agent, &fr, r.opts.AgentTimeout)
			r.update(func(rec *api.Run) { rec.Faults[lf.idx] = fr })
			if errs[i] != nil {
				errs[i] = fmt.Errorf("fault %s on node %s: %w", lf.fault.ID, lf.node.Name, errs[i])
				r.record(&lf.node, true, ReasonRevertFailed, fmt.Sprintf("run %s: fault %s: %v", r.rec.ID, lf.name, errs[i]))
				return
			}
			r.record(&lf.node, false, ReasonReverted, fmt.Sprintf("run %s: fault %s (%s) reverted (%s), verified: nothing left",
				r.rec.ID, lf.name, lf.fault.Kind, fr.RevertReason))
			r.lg.Info("fault reverted", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name),
				zap.String("reason", fr.RevertReason), zap.Bool("verified", fr.Verified))
		})
	}
	wg.Wait()
	now := time.Now()
	r.update(func(rec *api.Run) {
		rec.Times.Reverted = &now
		r.faults = nil
	})
	r.event("faults reverted")
	return errors.Join(errs...)
}

// watchTargets records every change the inventory reports about the
// plan's targets (when it can report them) until the returned stop is
// called: an event, and the fault records of that target say what
// happened.
func (r *Runner) watchTargets(ctx context.Context, plan []liveFault) (stop func()) {
	w, ok := r.deps.Inventory.(TargetWatcher)
	if !ok {
		return func() {}
	}
	nodes := make([]targets.Node, len(plan))
	faultsOf := map[string][]string{} // target key → agent fault IDs
	for i, lf := range plan {
		nodes[i] = lf.node
		faultsOf[lf.node.Key()] = append(faultsOf[lf.node.Key()], lf.fault.ID)
	}
	wctx, cancel := context.WithCancel(ctx)
	changes := w.Watch(wctx, nodes)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-wctx.Done():
				return
			case c := <-changes:
				r.lg.Warn("target changed during the run", zap.String("target", c.Key), zap.String("change", c.Message))
				r.update(func(rec *api.Run) {
					for i := range rec.Faults {
						if fr := &rec.Faults[i]; slices.Contains(faultsOf[c.Key], fr.AgentFaultID) {
							fr.TargetChanged = joinReasons(fr.TargetChanged, c.Message)
						}
					}
				})
				r.event(c.Message)
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// adminUndo points an agent's undo document at the address chaosd itself
// reaches the instance at (targets.Instance.AdminURL), when it has one:
// the agent's URL is the one the node sees.
func adminUndo(doc json.RawMessage, n targets.Node) json.RawMessage {
	if doc == nil || n.Instance == nil || n.Instance.AdminURL == "" {
		return doc
	}
	var u agentapi.SpringBootUndo
	if err := json.Unmarshal(doc, &u); err != nil {
		return doc
	}
	u.URL = strings.TrimRight(n.Instance.AdminURL, "/")
	out, err := json.Marshal(u)
	if err != nil {
		return doc
	}
	return out
}
