package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// acquire takes one of the run's agent-call slots (Options.FanOut),
// waiting until one is free; false when done ends first.
func (r *Runner) acquire(done <-chan struct{}) bool {
	select {
	case r.calls <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

func (r *Runner) release() { <-r.calls }

// checkAgents asks every agent of the plan, in parallel (Options.FanOut at
// once), whether it answers and can run its faults; it returns why not,
// naming the first node of the plan that cannot, or "".
func (r *Runner) checkAgents(ctx context.Context, plan []liveFault) string {
	type answer struct {
		st  agentapi.Status
		err error
	}
	first := map[string]int{} // node key → first index in plan
	var asked []int
	for i, lf := range plan {
		key := lf.node.Cluster + "/" + lf.node.Name
		if _, ok := first[key]; !ok {
			first[key] = i
			asked = append(asked, i)
		}
	}
	answers := make([]answer, len(plan))
	var wg sync.WaitGroup
	for _, i := range asked {
		if !r.acquire(ctx.Done()) {
			break
		}
		wg.Go(func() {
			defer r.release()
			cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
			defer cancel()
			answers[i].st, answers[i].err = plan[i].agent.Status(cctx)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return "cancelled"
	}
	for _, lf := range plan {
		a := answers[first[lf.node.Cluster+"/"+lf.node.Name]]
		if a.err != nil {
			return fmt.Sprintf("agent on node %s: %v", lf.node.Name, a.err)
		}
		// Refuse before anything is injected when a node cannot run a kind.
		if why, missing := a.st.Unavailable[string(lf.fault.Kind)]; missing {
			return fmt.Sprintf("node %s cannot run %s faults: %s", lf.node.Name, lf.fault.Kind, why)
		}
	}
	return ""
}

// injectAll asks every agent to apply its fault, Options.FanOut at once.
// One durable update names every planned fault before the first agent is
// asked, so a restarted chaosd reverts whatever may have gone in. Each
// fault's lease is renewed from its own inject on (leases). The first
// failed inject, an abort or the end of ctx stops new injects from
// starting; the injects in flight are waited for (each within
// AgentTimeout), so the revert that follows finds them in place and
// removes them. Every fault's record says what happened to it. A non-empty
// verdict means the run must end now.
func (r *Runner) injectAll(ctx context.Context, plan []liveFault, leases *leases) (api.Verdict, string) {
	deadline := time.Now().Add(r.exp.Spec.Duration.D() + r.opts.DeadlineGrace)
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
		return api.VerdictError, "record the planned faults (nothing injected): " + err.Error()
	}

	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failed   = make(chan struct{}) // closed at the first failed inject
		firstErr error
		nFailed  atomic.Int32
	)
	// stop is closed once no further inject may start.
	stop, dispatched := make(chan struct{}), make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-ctx.Done():
		case <-r.stopped:
		case <-failed:
		case <-dispatched:
		}
		close(stop)
	})
	started := 0
	for _, lf := range plan {
		if !r.acquire(stop) {
			break
		}
		if isClosed(stop) || isClosed(failed) || isClosed(r.stopped) || ctx.Err() != nil { // a slot came free, but the fan-out is over
			r.release()
			break
		}
		// From here on the revert covers it, whatever its agent answers.
		r.mu.Lock()
		r.faults = append(r.faults, lf)
		r.mu.Unlock()
		started++
		wg.Go(func() {
			defer r.release()
			if err := r.injectOne(ctx, lf, leases); err != nil {
				nFailed.Add(1)
				failOnce.Do(func() { firstErr = err; close(failed) })
			}
		})
	}
	close(dispatched)
	wg.Wait()
	watch.Wait()

	var why string
	var verdict api.Verdict
	// A shutdown or an abort explains the injects it cut short (a halt
	// reverts what agents are applying): they come first.
	switch {
	case ctx.Err() != nil:
		verdict, why = api.VerdictError, "interrupted: chaosd is shutting down"
	case r.aborted.Load():
		verdict, why = api.VerdictAborted, "aborted by user during inject"
		select {
		case reason := <-r.abortCh:
			why += ": " + reason
		default:
		}
	case firstErr != nil:
		verdict, why = api.VerdictError, "inject: "+firstErr.Error()
		if n := nFailed.Load(); n > 1 {
			why += fmt.Sprintf(" (and %d more; each fault's record names its error)", n-1)
		}
	}
	now := time.Now()
	r.update(func(rec *api.Run) {
		for _, lf := range plan[started:] {
			rec.Faults[lf.idx].Error = "not injected: " + why
		}
		if verdict == "" {
			rec.Times.Injected = &now
		}
	})
	if verdict != "" {
		return verdict, why
	}
	r.timing.lastSLO = now
	r.event(fmt.Sprintf("%d fault(s) in place", len(plan)))
	return "", ""
}

// injectOne asks one agent to apply its fault and records the answer in
// memory (injectAll saves the fan-out's results together).
func (r *Runner) injectOne(ctx context.Context, lf liveFault, leases *leases) error {
	cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
	st, err := lf.agent.Inject(cctx, lf.fault)
	cancel()
	if err != nil {
		r.update(func(rec *api.Run) { rec.Faults[lf.idx].Error = err.Error() })
		r.record(&lf.node, true, ReasonInjectFailed, fmt.Sprintf("run %s: fault %s (%s): %v", r.rec.ID, lf.name, lf.fault.Kind, err))
		r.lg.Warn("fault inject failed", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name),
			zap.String("kind", string(lf.fault.Kind)), zap.String("instance", lf.node.InstanceName()), zap.Error(err))
		return fmt.Errorf("fault %s on node %s: %w", lf.name, lf.node.Name, err)
	}
	at := st.AppliedAt
	if at.IsZero() {
		at = time.Now()
	}
	leases.add(lf, time.Now())
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
		// The undo document is how a restarted chaosd undoes the fault if
		// its agent is gone too: on disk before the run goes on (parallel
		// injects share the save).
		return fmt.Errorf("record the undo document of fault %s on node %s: %w", lf.name, lf.node.Name, err)
	}
	r.record(&lf.node, false, ReasonInjected, fmt.Sprintf("run %s: fault %s (%s) injected, deadline %s",
		r.rec.ID, lf.name, lf.fault.Kind, lf.fault.Deadline.UTC().Format(time.RFC3339)))
	return nil
}

// revertAll reverts every fault that was injected or asked for,
// Options.FanOut at once, on a context that the run's cancellation cannot
// stop. It returns an error if any fault could not be confirmed gone. The
// outcomes are saved together at the end.
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
		r.acquire(nil)
		wg.Go(func() {
			defer r.release()
			errs[i] = r.revertOne(rctx, lf)
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

// revertOne reverts one fault and records the outcome in memory.
func (r *Runner) revertOne(ctx context.Context, lf liveFault) error {
	r.mu.Lock()
	fr := r.rec.Faults[lf.idx].DeepCopy()
	if t, ok := r.selfExpiresAt[lf.idx]; ok {
		fr.SelfExpiresAt = &t // as of the last renewal
	}
	r.mu.Unlock()
	err := RevertFault(ctx, lf.agent, &fr, r.opts.AgentTimeout)
	r.update(func(rec *api.Run) { rec.Faults[lf.idx] = fr })
	if err != nil {
		err = fmt.Errorf("fault %s on node %s: %w", lf.fault.ID, lf.node.Name, err)
		r.record(&lf.node, true, ReasonRevertFailed, fmt.Sprintf("run %s: fault %s: %v", r.rec.ID, lf.name, err))
		r.lg.Error("fault revert failed", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name), zap.Error(err))
		return err
	}
	r.record(&lf.node, false, ReasonReverted, fmt.Sprintf("run %s: fault %s (%s) reverted (%s), verified: nothing left",
		r.rec.ID, lf.name, lf.fault.Kind, fr.RevertReason))
	r.lg.Info("fault reverted", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name),
		zap.String("reason", fr.RevertReason), zap.Bool("verified", fr.Verified))
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
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
