// Package runner drives one experiment run through its phases:
// preflight → steady state → inject → observe (abort conditions) → revert →
// recovery → verdict. It records everything in an api.Run and hands the
// record to a save function after every change, so a crash loses nothing
// but the last probe round.
package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/daemon/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
)

// Prober evaluates probes against a metrics backend.
type Prober interface {
	Ping(ctx context.Context) error
	Eval(ctx context.Context, p probes.Probe, at time.Time) probes.Result
	// EvalRange judges p at every step from start to end, to place a
	// change between two probe rounds.
	EvalRange(ctx context.Context, p probes.Probe, start, end time.Time, step time.Duration) ([]probes.Result, error)
	// ScrapeInterval is how fresh the backend's data is at best.
	ScrapeInterval(ctx context.Context) (time.Duration, error)
}

// Agent is the part of a node agent's API the runner uses.
type Agent interface {
	Status(ctx context.Context) (agentapi.Status, error)
	Inject(ctx context.Context, f agentapi.Fault) (agentapi.FaultStatus, error)
	Renew(ctx context.Context, id string, lease time.Duration) (agentapi.FaultStatus, error)
	Revert(ctx context.Context, id string) (agentapi.FaultStatus, error)
}

// Node is one resolved target node and the agent that serves it. For a
// target with a service, there is one Node per service instance on it.
type Node struct {
	Cluster string
	Name    string
	Agent   Agent
	// Instance is the service instance on this node (nil for node targets).
	Instance *Instance
}

// Instance is one instance (pod) of a service.
type Instance struct {
	Service string
	Name    string // unique within the service, e.g. the pod name
	// URL is the instance's base URL (its Spring Boot actuator lives
	// under URL/actuator).
	URL string
	// Cgroup is the instance's cgroup path relative to the cgroup root.
	Cgroup string
}

// Resolver turns a spec target into the nodes it selects (blast radius
// applied).
type Resolver interface {
	Resolve(t experiments.Target) ([]Node, error)
}

// Options tune a runner; zero values take the defaults.
type Options struct {
	// Lease is the agent lease; chaosd renews it every Lease/3. Default 5s.
	Lease time.Duration
	// DeadlineGrace is added to the fault duration to form the absolute
	// deadline the agent enforces on its own. Default 30s.
	DeadlineGrace time.Duration
	// AgentTimeout bounds each agent call. Default 10s.
	AgentTimeout time.Duration
}

// Runner executes one run. Create with New, then call Run once.
type Runner struct {
	exp      *experiments.Experiment
	prober   Prober
	resolver Resolver
	save     func(api.Run)
	lg       *zap.Logger
	opts     Options

	mu     sync.Mutex
	rec    api.Run
	faults []liveFault

	abortOnce sync.Once
	abortCh   chan string
	aborted   atomic.Bool

	// recovery tracks the recovery streak from the first impact on; only
	// the run goroutine touches it.
	recovery *probes.RecoveryTracker
	// refineStep, when set, is the step at which a change between two
	// probe rounds is placed (the backend's scrape interval); 0 measures
	// at the probe interval.
	refineStep time.Duration
	// lastSLO is the time of the last SLO round; lastRecovery and
	// lastRecoveryOK the last round fed to the recovery tracker.
	lastSLO        time.Time
	lastRecovery   time.Time
	lastRecoveryOK bool
}

type liveFault struct {
	node  Node
	fault agentapi.Fault
	name  string // the spec's fault name
	idx   int    // index in rec.Faults
}

// New prepares a run of exp recorded in rec (ID, experiment, trigger and
// creation time already set). save is called with a copy of the record
// after every change; it must not block for long.
func New(exp *experiments.Experiment, rec api.Run, prober Prober, resolver Resolver, save func(api.Run), lg *zap.Logger, opts Options) *Runner {
	if lg == nil {
		lg = zap.NewNop()
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Second
	}
	if opts.DeadlineGrace <= 0 {
		opts.DeadlineGrace = 30 * time.Second
	}
	if opts.AgentTimeout <= 0 {
		opts.AgentTimeout = 10 * time.Second
	}
	if save == nil {
		save = func(api.Run) {}
	}
	rec.Phase = api.PhasePending
	rec.RTO.TargetSeconds = exp.Spec.Recovery.RTO.D().Seconds()
	rec.RTO.ResolutionSeconds = exp.Spec.ProbeInterval.D().Seconds()
	if rec.Faults == nil {
		rec.Faults = []api.FaultRecord{}
	}
	if rec.Phases == nil {
		rec.Phases = []api.PhaseResult{}
	}
	if rec.Events == nil {
		rec.Events = []api.Event{}
	}
	return &Runner{
		exp: exp, prober: prober, resolver: resolver, save: save,
		lg:      lg.With(zap.String("run", rec.ID), zap.String("experiment", rec.Experiment)),
		opts:    opts,
		rec:     rec,
		abortCh: make(chan string, 1),
	}
}

// Abort asks the run to revert at once and end as aborted. Safe to call
// from any goroutine, any number of times.
func (r *Runner) Abort(reason string) {
	r.abortOnce.Do(func() {
		r.aborted.Store(true)
		r.abortCh <- reason
	})
}

// Record returns a copy of the current record.
func (r *Runner) Record() api.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneRun(r.rec)
}

// Run executes the experiment and returns the final record. It never
// leaves a fault behind: whatever ends the run (verdict, abort, error, ctx
// cancelled), every injected fault is reverted before Run returns.
func (r *Runner) Run(ctx context.Context) api.Run {
	now := time.Now()
	r.update(func(rec *api.Run) { rec.Times.Started = &now })
	verdict, reason := r.run(ctx)
	r.finish(verdict, reason)
	return r.Record()
}

func (r *Runner) run(ctx context.Context) (string, string) {
	spec := &r.exp.Spec

	// Preflight: backend reachable, targets resolved, agents answering.
	r.setPhase(api.PhasePreflight, "checking Prometheus, targets and agents")
	if err := r.prober.Ping(ctx); err != nil {
		return api.VerdictError, fmt.Sprintf("preflight: Prometheus: %v", err)
	}
	r.chooseResolution(ctx)
	plan, err := r.plan()
	if err != nil {
		return api.VerdictError, fmt.Sprintf("preflight: %v", err)
	}
	for _, lf := range plan {
		cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
		st, err := lf.node.Agent.Status(cctx)
		cancel()
		if err != nil {
			return api.VerdictError, fmt.Sprintf("preflight: agent on node %s: %v", lf.node.Name, err)
		}
		// Refuse before anything is injected when a node cannot run a kind.
		if why, missing := st.Unavailable[string(lf.fault.Kind)]; missing {
			return api.VerdictError, fmt.Sprintf("preflight: node %s cannot run %s faults: %s", lf.node.Name, lf.fault.Kind, why)
		}
	}
	if ctx.Err() != nil {
		return api.VerdictError, "cancelled before inject"
	}

	// Steady state must hold before anything is injected.
	r.setPhase(api.PhaseSteadyState, "judging steady state")
	results := r.evalAll(ctx, spec.SteadyState.Probes)
	r.recordRound(api.PhaseSteadyState, spec.SteadyState.Probes, results, false)
	if failed := failing(results); len(failed) > 0 {
		return api.VerdictFail, "steady state not met before inject: " + describeFailures(failed)
	}
	if r.rec.DryRun {
		return api.VerdictPass, fmt.Sprintf("dry run: steady state holds; would inject %d fault(s)", len(plan))
	}

	if r.aborted.Load() {
		return api.VerdictAborted, "aborted by user before inject"
	}

	// Inject. From here on every path goes through revertAll.
	r.setPhase(api.PhaseInjecting, fmt.Sprintf("injecting %d fault(s)", len(plan)))
	injectErr := r.injectAll(ctx, plan)
	var verdict, reason string
	if injectErr != nil {
		verdict, reason = api.VerdictError, "inject: "+injectErr.Error()
	} else {
		verdict, reason = r.observe(ctx)
	}

	revertErr := r.revertAll(api.PhaseReverting)
	if revertErr != nil {
		return api.VerdictError, joinReasons(reason, "revert: "+revertErr.Error())
	}
	if verdict != "" {
		return verdict, reason
	}
	return r.recover(ctx)
}

// agentFault translates one spec fault on one node (or service instance)
// into what the agent is asked to apply.
func agentFault(rec api.Run, f experiments.Fault, n Node) (agentapi.Fault, error) {
	af := agentapi.Fault{ID: rec.ID + "." + f.Name, RunID: rec.ID, Experiment: rec.Experiment, Kind: f.Kind}
	if n.Instance != nil {
		af.ID += "." + n.Instance.Name
	}
	needInstance := func() error {
		if n.Instance == nil || n.Instance.URL == "" {
			return fmt.Errorf("fault %s: kind %s needs a service instance with a URL on node %s", f.Name, f.Kind, n.Name)
		}
		return nil
	}
	switch f.Kind {
	case agentapi.KindPartition:
		p := &agentapi.Partition{Direction: string(f.Partition.Direction), Ports: f.Partition.Ports}
		for _, c := range f.Partition.CIDRs {
			p.CIDRs = append(p.CIDRs, c.String())
		}
		af.Partition = p
	case agentapi.KindLatency:
		l := f.Latency
		al := &agentapi.Latency{Interface: l.Interface, Ports: l.Ports,
			DelayMs: ms(l.Delay), JitterMs: ms(l.Jitter), CorrelationPercent: l.Correlation,
			LossPercent: l.Loss, RateBytesPerSecond: uint64(l.Rate)}
		for _, c := range l.CIDRs {
			al.CIDRs = append(al.CIDRs, c.String())
		}
		af.Latency = al
	case agentapi.KindMemory:
		m := &agentapi.Memory{SizeBytes: uint64(f.Memory.Size), Fraction: f.Memory.Fraction, RampSeconds: f.Memory.Ramp.D().Seconds()}
		if n.Instance != nil {
			m.Cgroup = n.Instance.Cgroup
		}
		af.Memory = m
	case agentapi.KindException:
		if err := needInstance(); err != nil {
			return af, err
		}
		e := f.Exception
		sb := &agentapi.SpringBoot{URL: n.Instance.URL, Level: e.Level, Deterministic: e.Deterministic, Watchers: e.Watchers}
		if e.Exception != nil {
			se := &agentapi.SpringException{Type: e.Exception.Type, Method: e.Exception.Method}
			for _, a := range e.Exception.Arguments {
				se.Arguments = append(se.Arguments, agentapi.SpringExceptionArg{Type: a.Type, Value: a.Value})
			}
			sb.Exception = se
		}
		af.SpringBoot = sb
	case agentapi.KindAppLatency:
		if err := needInstance(); err != nil {
			return af, err
		}
		a := f.AppLatency
		af.SpringBoot = &agentapi.SpringBoot{URL: n.Instance.URL, Level: a.Level, Deterministic: a.Deterministic, Watchers: a.Watchers,
			LatencyRangeStartMs: int(a.Range.Start.D().Milliseconds()), LatencyRangeEndMs: int(a.Range.End.D().Milliseconds())}
	default:
		return af, fmt.Errorf("fault %s: kind %q is not supported by this chaosd", f.Name, f.Kind)
	}
	return af, nil
}

func ms(d experiments.Duration) float64 { return float64(d.D()) / float64(time.Millisecond) }

// plan resolves targets and builds the agent faults, one per fault × node
// (or service instance).
func (r *Runner) plan() ([]liveFault, error) {
	spec := &r.exp.Spec
	targets := map[string]experiments.Target{}
	for _, t := range spec.Targets {
		targets[t.Name] = t
	}
	var plan []liveFault
	for _, f := range spec.Faults {
		t, ok := targets[f.Target]
		if !ok {
			return nil, fmt.Errorf("fault %s: unknown target %q", f.Name, f.Target)
		}
		nodes, err := r.resolver.Resolve(t)
		if err != nil {
			return nil, fmt.Errorf("resolve target %s: %w", t.Name, err)
		}
		if len(nodes) == 0 {
			return nil, fmt.Errorf("target %s selects no node", t.Name)
		}
		for _, n := range nodes {
			af, err := agentFault(r.rec, f, n)
			if err != nil {
				return nil, err
			}
			plan = append(plan, liveFault{node: n, fault: af, name: f.Name})
		}
	}
	return plan, nil
}

func (r *Runner) injectAll(ctx context.Context, plan []liveFault) error {
	spec := &r.exp.Spec
	deadline := time.Now().Add(spec.Duration.D() + r.opts.DeadlineGrace)
	for _, lf := range plan {
		lf.fault.Deadline = deadline
		lf.fault.LeaseSeconds = r.opts.Lease.Seconds()
		r.update(func(rec *api.Run) {
			lf.idx = len(rec.Faults)
			rec.Faults = append(rec.Faults, api.FaultRecord{
				Name: lf.name, Kind: string(lf.fault.Kind), Cluster: lf.node.Cluster,
				Node: lf.node.Name, Instance: instanceName(lf.node), AgentFaultID: lf.fault.ID,
			})
			r.faults = append(r.faults, lf)
		})
		// The record names the fault before the agent is asked, so a crash
		// between the two still lets a restarted chaosd revert it.
		if ctx.Err() != nil {
			return errors.New("cancelled")
		}
		cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
		st, err := lf.node.Agent.Inject(cctx, lf.fault)
		cancel()
		if err != nil {
			r.update(func(rec *api.Run) { rec.Faults[lf.idx].Error = err.Error() })
			return fmt.Errorf("fault %s on node %s: %w", lf.name, lf.node.Name, err)
		}
		at := st.AppliedAt
		if at.IsZero() {
			at = time.Now()
		}
		r.lg.Info("fault injected", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name))
		r.update(func(rec *api.Run) { rec.Faults[lf.idx].InjectedAt = &at })
	}
	now := time.Now()
	r.update(func(rec *api.Run) { rec.Times.Injected = &now })
	r.lastSLO = now
	r.event(fmt.Sprintf("%d fault(s) in place", len(plan)))
	return nil
}

// observe holds the faults for the spec's duration, renewing leases,
// watching the SLO probes for the first impact and the abort conditions.
// It returns a verdict only when the run must end without recovery.
func (r *Runner) observe(ctx context.Context) (string, string) {
	spec := &r.exp.Spec
	end := r.rec.Times.Injected.Add(spec.Duration.D())
	ob := &observation{proven: spec.Effects == nil}
	if ob.proven {
		r.setPhase(api.PhaseObserving, fmt.Sprintf("holding faults for %s", spec.Duration.D()))
	} else {
		ob.effectsDeadline = r.rec.Times.Injected.Add(spec.Effects.Within.D())
		r.setPhase(api.PhaseEffects, fmt.Sprintf("proving the faults took hold (within %s)", spec.Effects.Within.D()))
	}

	leaseCtx, stopLeases := context.WithCancel(ctx)
	leaseLost := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.renewLeases(leaseCtx, leaseLost) }()
	defer func() { stopLeases(); wg.Wait() }()

	ob.aborts = make([]*probes.AbortTracker, len(spec.AbortWhen))
	for i, a := range spec.AbortWhen {
		ob.aborts[i] = &probes.AbortTracker{For: a.For.D()}
	}
	tick := time.NewTicker(spec.ProbeInterval.D())
	defer tick.Stop()
	for {
		if vd, rs := r.observeRound(ctx, ob); vd != "" {
			return vd, rs
		}
		if !time.Now().Before(end) {
			if !ob.proven {
				return api.VerdictError, "the faults were held to the end but their effects were never proven"
			}
			return "", ""
		}
		wait := time.Until(end)
		select {
		case <-ctx.Done():
			return api.VerdictError, "interrupted: chaosd is shutting down"
		case why := <-r.abortCh:
			return api.VerdictAborted, "aborted by user: " + why
		case why := <-leaseLost:
			return api.VerdictError, "fault ended early: " + why
		case <-tick.C:
		case <-time.After(wait):
		}
	}
}

// observation is the state of the observe phase.
type observation struct {
	aborts []*probes.AbortTracker
	// proven is set once the effect probes held (at once without effects).
	proven          bool
	effectsDeadline time.Time
}

func (r *Runner) observeRound(ctx context.Context, ob *observation) (string, string) {
	spec := &r.exp.Spec
	slo := r.evalAll(ctx, spec.SteadyState.Probes)
	r.recordRound(api.PhaseObserving, spec.SteadyState.Probes, slo, false)
	r.noteImpact(ctx, slo)
	r.feedRecovery(ctx, slo)

	if !ob.proven {
		eff := spec.Effects.Probes
		res := r.evalAll(ctx, eff)
		r.recordRound(api.PhaseEffects, eff, res, true)
		switch failed := failing(res); {
		case len(failed) == 0:
			ob.proven = true
			r.setPhase(api.PhaseObserving, fmt.Sprintf("effects proven after %s; holding faults for %s",
				time.Since(*r.rec.Times.Injected).Round(time.Millisecond), spec.Duration.D()))
		case !time.Now().Before(ob.effectsDeadline):
			return api.VerdictError, fmt.Sprintf("the faults had no provable effect within %s (%s): the run proves nothing",
				spec.Effects.Within.D(), describeFailures(failed))
		}
	} else if spec.SteadyState.MustHoldDuringFault {
		if failed := failing(slo); len(failed) > 0 {
			return api.VerdictFail, "steady state violated while the faults were in place: " + describeFailures(failed)
		}
	}

	if len(spec.AbortWhen) == 0 {
		return "", ""
	}
	aps := make([]probes.Probe, len(spec.AbortWhen))
	for i, a := range spec.AbortWhen {
		aps[i] = a.Probe
	}
	res := r.evalAll(ctx, aps)
	r.recordAbortRound(aps, res)
	for i, a := range spec.AbortWhen {
		firing := abortFiring(a.Probe, res[i])
		if ob.aborts[i].Observe(res[i].Time, firing) {
			return api.VerdictAborted, fmt.Sprintf("abort condition %s fired for %s (value %s, condition %s)",
				a.Name, a.For.D(), fmtValue(res[i]), a.Probe.Condition())
		}
	}
	return "", ""
}

func (r *Runner) renewLeases(ctx context.Context, lost chan<- string) {
	every := r.opts.Lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
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
			_, err := lf.node.Agent.Renew(cctx, lf.fault.ID, r.opts.Lease)
			cancel()
			if err == nil || ctx.Err() != nil {
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
			// lease runs out; if not, the agent reverts on its own and the
			// next renewal reports it gone.
			r.lg.Warn("lease renewal failed", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name), zap.Error(err))
		}
	}
}

// revertAll reverts every injected fault, with its own deadline so that a
// cancelled run context cannot stop it. It returns an error if any fault
// could not be confirmed gone.
func (r *Runner) revertAll(phase string) error {
	r.mu.Lock()
	faults := append([]liveFault(nil), r.faults...)
	r.mu.Unlock()
	if len(faults) == 0 {
		return nil
	}
	r.setPhase(phase, fmt.Sprintf("reverting %d fault(s)", len(faults)))
	var errs []error
	for _, lf := range faults {
		var st agentapi.FaultStatus
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			cctx, cancel := context.WithTimeout(context.Background(), r.opts.AgentTimeout)
			st, err = lf.node.Agent.Revert(cctx, lf.fault.ID)
			cancel()
			var ae *agentapi.APIError
			if errors.As(err, &ae) && ae.Status == 404 {
				// The agent never heard of it: nothing to revert.
				st, err = agentapi.FaultStatus{State: agentapi.StateReverted, Verified: true, RevertReason: "unknown to agent"}, nil
			}
			if err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		at := st.RevertedAt
		if at.IsZero() {
			at = time.Now()
		}
		r.update(func(rec *api.Run) {
			fr := &rec.Faults[lf.idx]
			if err != nil {
				fr.Error = joinReasons(fr.Error, "revert: "+err.Error())
				return
			}
			fr.RevertedAt = &at
			fr.RevertReason = st.RevertReason
			fr.Verified = st.Verified
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("fault %s on node %s: %w (the agent reverts it by itself at its lease or deadline)", lf.fault.ID, lf.node.Name, err))
			continue
		}
		r.lg.Info("fault reverted", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name),
			zap.String("reason", st.RevertReason), zap.Bool("verified", st.Verified))
		if !st.Verified {
			errs = append(errs, fmt.Errorf("fault %s on node %s: agent could not verify removal", lf.fault.ID, lf.node.Name))
		}
	}
	now := time.Now()
	r.update(func(rec *api.Run) {
		rec.Times.Reverted = &now
		r.faults = nil
	})
	r.event("faults reverted")
	return errors.Join(errs...)
}

// recover polls the recovery probes after the revert until they have held
// continuously for holdFor (counted from the revert) or the timeout ends.
func (r *Runner) recover(ctx context.Context) (string, string) {
	spec := &r.exp.Spec
	rc := spec.Recovery
	r.setPhase(api.PhaseRecovering, fmt.Sprintf("waiting for recovery (hold %s, timeout %s)", rc.HoldFor.D(), rc.Timeout.D()))
	reverted := *r.rec.Times.Reverted
	deadline := reverted.Add(rc.Timeout.D())
	tick := time.NewTicker(spec.ProbeInterval.D())
	defer tick.Stop()
	for {
		res := r.evalAll(ctx, rc.Probes)
		r.recordRound(api.PhaseRecovering, rc.Probes, res, false)
		r.noteImpact(ctx, res)
		r.feedRecovery(ctx, res)
		now := time.Now()
		if start, ok := r.recovery.Recovered(); ok && !now.Before(reverted.Add(rc.HoldFor.D())) {
			return r.verdict(start)
		}
		if now.After(deadline) {
			return api.VerdictFail, fmt.Sprintf("not recovered: recovery probes did not hold for %s within %s of the revert (%s)",
				rc.HoldFor.D(), rc.Timeout.D(), describeFailures(failing(res)))
		}
		select {
		case <-ctx.Done():
			return api.VerdictError, "interrupted: chaosd is shutting down"
		case why := <-r.abortCh:
			return api.VerdictAborted, "aborted by user during recovery: " + why
		case <-tick.C:
		}
	}
}

func (r *Runner) verdict(recovered time.Time) (string, string) {
	rto := probes.MeasuredRTO(r.rec.Times.FirstImpact, recovered)
	secs := rto.Seconds()
	r.update(func(rec *api.Run) {
		rec.Times.Recovered = &recovered
		rec.RTO.MeasuredSeconds = &secs
	})
	target := r.exp.Spec.Recovery.RTO.D()
	res := r.exp.Spec.ProbeInterval.D()
	if rto > target {
		return api.VerdictFail, fmt.Sprintf("recovered, but measured RTO %s exceeds the target %s (resolution ±%s)", rto.Round(time.Millisecond), target, res)
	}
	if r.rec.Times.FirstImpact == nil {
		return api.VerdictPass, "no impact seen; steady state held throughout"
	}
	return api.VerdictPass, fmt.Sprintf("recovered in %s (target %s, resolution ±%s)", rto.Round(time.Millisecond), target, res)
}

// chooseResolution decides how precisely the run times changes: to the
// backend's scrape interval when that is shorter than the probe interval
// (a change between two rounds is then placed with a range query), else
// to the probe interval.
func (r *Runner) chooseResolution(ctx context.Context) {
	interval := r.exp.Spec.ProbeInterval.D()
	si, err := r.prober.ScrapeInterval(ctx)
	switch {
	case err != nil:
		r.event(fmt.Sprintf("times measured to ±%s, the probe interval (scrape interval unknown: %v)", interval, err))
		return
	case si <= 0 || si >= interval:
		r.event(fmt.Sprintf("times measured to ±%s, the probe interval (Prometheus scrapes every %s)", interval, si))
		return
	}
	r.refineStep = si
	r.update(func(rec *api.Run) { rec.RTO.ResolutionSeconds = si.Seconds() })
	r.event(fmt.Sprintf("times measured to ±%s, Prometheus' scrape interval (probes every %s; changes between rounds placed by range queries)", si, interval))
}

// refine evaluates ps at every refine step in (from, to) and returns the
// results per step time, or nil when refinement is off or fails (the
// round times stand then).
func (r *Runner) refine(ctx context.Context, ps []probes.Probe, from, to time.Time) [][]probes.Result {
	step := r.refineStep
	if step <= 0 || from.IsZero() || to.Sub(from) <= step {
		return nil
	}
	start := from.Add(step)
	var grid [][]probes.Result
	for _, p := range ps {
		rs, err := r.prober.EvalRange(ctx, p, start, to.Add(-step/2), step)
		if err != nil {
			r.lg.Warn("refine: range query failed; keeping the probe round's time", zap.String("probe", p.Name), zap.Error(err))
			return nil
		}
		if grid == nil {
			grid = make([][]probes.Result, len(rs))
		}
		if len(rs) != len(grid) {
			return nil
		}
		for i := range rs {
			grid[i] = append(grid[i], rs[i])
		}
	}
	return grid
}

// noteImpact marks the first failing SLO round, placed between the
// previous round and this one when the resolution allows.
func (r *Runner) noteImpact(ctx context.Context, res []probes.Result) {
	prev := r.lastSLO
	if len(res) > 0 {
		r.lastSLO = res[0].Time
	}
	if r.rec.Times.FirstImpact != nil {
		return
	}
	f := failing(res)
	if len(f) == 0 {
		return
	}
	t := f[0].Time
	for _, step := range r.refine(ctx, r.exp.Spec.SteadyState.Probes, prev, t) {
		if len(failing(step)) > 0 {
			t = step[0].Time
			break
		}
	}
	r.update(func(rec *api.Run) { rec.Times.FirstImpact = &t })
	r.event("first impact: " + describeFailures(f))
}

// feedRecovery feeds the recovery tracker from the first impact on. The
// recovery probes are evaluated here too when they differ from the SLO
// probes, so a system that heals while the fault is still active gets
// credit for it.
func (r *Runner) feedRecovery(ctx context.Context, slo []probes.Result) {
	if r.rec.Times.FirstImpact == nil && r.rec.Phase != api.PhaseRecovering {
		return
	}
	hold := r.exp.Spec.Recovery.HoldFor.D()
	if r.recovery == nil {
		r.recovery = &probes.RecoveryTracker{HoldFor: hold}
	}
	res := slo
	if r.rec.Phase != api.PhaseRecovering && !sameProbes(r.exp.Spec.Recovery.Probes, r.exp.Spec.SteadyState.Probes) {
		res = r.evalAll(ctx, r.exp.Spec.Recovery.Probes)
	}
	t := time.Now()
	if len(res) > 0 {
		t = res[0].Time
	}
	ok := len(failing(res)) == 0
	if _, done := r.recovery.Recovered(); done && !ok {
		// Healed during the fault, then failed again: start over.
		r.recovery = &probes.RecoveryTracker{HoldFor: hold}
	}
	at := t
	if ok && !r.lastRecoveryOK && !r.lastRecovery.IsZero() {
		// A streak starts: place its start at the first step from which
		// every recovery probe held through this round.
		grid := r.refine(ctx, r.exp.Spec.Recovery.Probes, r.lastRecovery, t)
		for i := len(grid) - 1; i >= 0 && len(failing(grid[i])) == 0; i-- {
			at = grid[i][0].Time
		}
	}
	r.lastRecovery, r.lastRecoveryOK = t, ok
	r.recovery.Observe(at, ok)
}

// evalAll evaluates probes concurrently at one instant.
func (r *Runner) evalAll(ctx context.Context, ps []probes.Probe) []probes.Result {
	at := time.Now()
	out := make([]probes.Result, len(ps))
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i] = r.prober.Eval(ctx, ps[i], at)
			if out[i].Time.IsZero() {
				out[i].Time = at
			}
			if out[i].Probe == "" {
				out[i].Probe = ps[i].Name
			}
		}(i)
	}
	wg.Wait()
	return out
}

func (r *Runner) finish(verdict, reason string) {
	now := time.Now()
	r.update(func(rec *api.Run) {
		rec.Phase = api.PhaseDone
		rec.Verdict = verdict
		rec.Reason = reason
		rec.FinishedAt = &now
		rec.Current = nil
	})
	r.event(fmt.Sprintf("verdict %s: %s", verdict, reason))
	r.lg.Info("run finished", zap.String("verdict", verdict), zap.String("reason", reason))
}

func (r *Runner) setPhase(phase, msg string) {
	r.update(func(rec *api.Run) {
		rec.Phase = phase
		rec.Current = nil
	})
	r.event(msg)
	r.lg.Info("phase", zap.String("phase", phase), zap.String("detail", msg))
}

func (r *Runner) event(msg string) {
	r.update(func(rec *api.Run) {
		rec.Events = append(rec.Events, api.Event{Time: time.Now(), Phase: rec.Phase, Message: msg})
	})
}

// update mutates the record under the lock and saves a copy.
func (r *Runner) update(fn func(rec *api.Run)) {
	r.mu.Lock()
	fn(&r.rec)
	cp := cloneRun(r.rec)
	r.mu.Unlock()
	r.save(cp)
}

// recordRound adds one round's results to the phase's summaries and shows
// them as the current values (after those already shown this round when
// appendCurrent).
func (r *Runner) recordRound(phase string, ps []probes.Probe, res []probes.Result, appendCurrent bool) {
	r.update(func(rec *api.Run) {
		if !appendCurrent {
			rec.Current = nil
		}
		rec.Current = append(rec.Current, res...)
		pr := phaseResult(rec, phase)
		for i, p := range ps {
			addSummary(pr, p, res[i], !res[i].OK)
		}
	})
}

func (r *Runner) recordAbortRound(ps []probes.Probe, res []probes.Result) {
	r.update(func(rec *api.Run) {
		rec.Current = append(rec.Current, res...)
		pr := phaseResult(rec, "abort")
		for i, p := range ps {
			// For abort probes a "failure" is a firing round.
			addSummary(pr, p, res[i], abortFiring(p, res[i]))
		}
	})
}

func phaseResult(rec *api.Run, phase string) *api.PhaseResult {
	for i := range rec.Phases {
		if rec.Phases[i].Phase == phase {
			return &rec.Phases[i]
		}
	}
	rec.Phases = append(rec.Phases, api.PhaseResult{Phase: phase, Probes: []api.ProbeSummary{}})
	return &rec.Phases[len(rec.Phases)-1]
}

func addSummary(pr *api.PhaseResult, p probes.Probe, res probes.Result, failed bool) {
	var s *api.ProbeSummary
	for i := range pr.Probes {
		if pr.Probes[i].Name == p.Name {
			s = &pr.Probes[i]
		}
	}
	if s == nil {
		pr.Probes = append(pr.Probes, api.ProbeSummary{Name: p.Name, Query: p.Query, Condition: p.Condition()})
		s = &pr.Probes[len(pr.Probes)-1]
	}
	s.Evaluations++
	if failed {
		s.Failures++
		if s.FirstFailure == nil {
			t := res.Time
			s.FirstFailure = &t
		}
	}
	s.Last = res
}

// abortFiring says whether an abort probe fires in one round. Its
// condition describes the bad state, so it fires when the condition holds,
// and also when it cannot be judged: losing sight of the system during a
// fault is itself a reason to stop. An empty result with onEmpty: pass
// means "nothing bad to see" and does not fire.
func abortFiring(p probes.Probe, r probes.Result) bool {
	if r.Error != "" {
		return true
	}
	if len(r.Series) == 0 {
		return p.OnEmpty != probes.OnEmptyPass
	}
	return r.OK
}

func failing(res []probes.Result) []probes.Result {
	var out []probes.Result
	for _, r := range res {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

func describeFailures(res []probes.Result) string {
	s := ""
	for i, r := range res {
		if i > 0 {
			s += "; "
		}
		if r.Error != "" {
			s += fmt.Sprintf("%s: %s", r.Probe, r.Error)
		} else {
			s += fmt.Sprintf("%s = %s", r.Probe, fmtValue(r))
		}
	}
	return s
}

func fmtValue(r probes.Result) string {
	if r.Error != "" {
		return r.Error
	}
	if math.IsNaN(r.Value) {
		return "NaN"
	}
	return fmt.Sprintf("%.4g", r.Value)
}

func sameProbes(a, b []probes.Probe) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Query != b[i].Query || a[i].Condition() != b[i].Condition() {
			return false
		}
	}
	return true
}

func instanceName(n Node) string {
	if n.Instance == nil {
		return ""
	}
	return n.Instance.Service + "/" + n.Instance.Name
}

func joinReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func cloneRun(r api.Run) api.Run {
	cp := r
	cp.Faults = append([]api.FaultRecord(nil), r.Faults...)
	cp.Phases = make([]api.PhaseResult, len(r.Phases))
	for i, p := range r.Phases {
		cp.Phases[i] = api.PhaseResult{Phase: p.Phase, Probes: append([]api.ProbeSummary(nil), p.Probes...)}
	}
	cp.Current = append([]probes.Result(nil), r.Current...)
	cp.Events = append([]api.Event(nil), r.Events...)
	return cp
}
