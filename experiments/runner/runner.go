// Package runner drives one experiment run through its phases:
// preflight → steady state → inject → observe (abort conditions) → revert →
// recovery → verdict. It records everything in an api.Run and saves it
// through Deps.Save: the latest record at most every Options.SaveInterval,
// and at once (waiting until it is on disk) where a restart needs the
// change before the run goes on: the faults about to be injected, an
// undo document, a phase change, the verdict. So a run of N faults costs
// a number of saves that does not grow with N, and a crash loses at most
// the probe rounds and events of the last interval, never what chaosd
// needs to revert (see record.go, recordWriter).
//
// The files split the work the way Prometheus splits rules/manager.go from
// rules/group.go: this file holds the seams (declared here, by their
// consumer) and the phase sequence; loops.go holds the observe and recovery
// loops, which only schedule; round.go evaluates one probe round;
// timing.go places the first impact and the recovery and decides the
// verdict; faults.go injects and reverts, Options.FanOut agent calls at
// once, and leases.go renews each fault's lease from its own inject on
// (revert.go is shared with chaosd's restart recovery); record.go keeps
// the record.
package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/targets"
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
	Reverter
	Status(ctx context.Context) (agentapi.Status, error)
	Inject(ctx context.Context, f agentapi.Fault) (agentapi.FaultStatus, error)
	Renew(ctx context.Context, id string, lease time.Duration) (agentapi.FaultStatus, error)
}

// Inventory resolves a spec target into the nodes (or service instances)
// it selects, blast radius applied.
type Inventory interface {
	Resolve(ctx context.Context, t experiments.Target) ([]targets.Node, error)
}

// TargetWatcher is implemented by inventories that can tell when a target
// changes under a run (targets/kube: a pod deleted or no longer Ready).
// The channel is read until ctx ends.
type TargetWatcher interface {
	Watch(ctx context.Context, nodes []targets.Node) <-chan targets.Change
}

// Agents finds the agent that serves a node.
type Agents interface {
	Agent(cluster, node string) (Agent, error)
}

// Recorder records what a run does where operators look (in Kubernetes:
// Events on the run's object and on every target pod or node, so
// `kubectl describe pod` shows what chaos touched it and when). runID
// names the run; target is nil for events of the run itself. It is
// called from several goroutines at once while faults fan out.
type Recorder interface {
	Event(runID string, target *targets.Node, warning bool, reason, message string)
}

// Event reasons a run records.
const (
	ReasonInjected     = "FaultInjected"
	ReasonInjectFailed = "FaultInjectFailed"
	ReasonReverted     = "FaultReverted"
	ReasonRevertFailed = "FaultRevertFailed"
	ReasonAborted      = "RunAborted"
	ReasonVerdict      = "Verdict"
)

// Deps are what a run talks to.
type Deps struct {
	Prober    Prober
	Inventory Inventory
	Agents    Agents
	// Recorder, when set, records injects, reverts, aborts and the verdict.
	Recorder Recorder
	// Alerts reads alert states for expectAlerts/forbidAlerts; Silencer
	// silences expected alerts (nil: no Alertmanager configured).
	Alerts   AlertHistory
	Silencer Silencer
	// Save writes a record durably (it returns once the record is on
	// disk). It is called from one goroutine at a time, in order, with a
	// copy the callee may keep; an error is reported to the step waiting
	// for that save, if any (the caller is expected to Fail the run).
	// Nil: records are not saved.
	Save func(api.Run) error
	// Data makes the data-loss check's requests (dataloss.go).
	Data DataClient
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
	// SaveInterval is how often at most the record is saved while no
	// step waits for a save, per started 100 faults (a record of 1,000
	// faults: ten times less often). Default 500ms.
	SaveInterval time.Duration
	// FanOut bounds the agent calls one run has in flight at once
	// (preflight status, injects, lease renewals, reverts). Default
	// DefaultFanOut.
	FanOut int
}

// DefaultFanOut is the default Options.FanOut: at the agents' ~15 ms per
// inject, 1,000 faults are in place in about a quarter of a second.
const DefaultFanOut = 64

// DefaultSaveInterval is Options.SaveInterval's default.
const DefaultSaveInterval = 500 * time.Millisecond

// Runner executes one run. Create with New, then call Run once.
type Runner struct {
	exp  *experiments.Experiment
	deps Deps
	lg   *zap.Logger
	opts Options

	mu  sync.Mutex
	rec api.Run
	// version counts the record's changes; w saves it (record.go).
	version uint64
	w       *recordWriter
	faults  []liveFault // injected (or being injected) and not yet reverted
	// selfExpiresAt is, per fault record index, when the fault ends by
	// itself as of its agent's last renewal (kept out of the record until
	// a revert needs it: renewals would rewrite it every few seconds).
	selfExpiresAt map[int]time.Time

	// calls holds one token per agent call in flight (Options.FanOut).
	calls chan struct{}

	abortOnce sync.Once
	abortCh   chan string
	aborted   atomic.Bool
	// stopped is closed by Abort: the fan-out stops starting injects.
	stopped chan struct{}
	// failure, when set, is why the tool failed the run (Fail): it ends
	// in error with that reason, whatever the abort it caused says.
	failure atomic.Pointer[string]

	// timing is the impact and recovery bookkeeping; only the run
	// goroutine touches it.
	timing timing
}

// New prepares a run of exp recorded in rec (ID, experiment, trigger and
// creation time already set).
func New(exp *experiments.Experiment, rec api.Run, deps Deps, lg *zap.Logger, opts Options) *Runner {
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
	if opts.SaveInterval <= 0 {
		opts.SaveInterval = DefaultSaveInterval
	}
	if opts.FanOut <= 0 {
		opts.FanOut = DefaultFanOut
	}
	if deps.Save == nil {
		deps.Save = func(api.Run) error { return nil }
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
		exp: exp, deps: deps,
		lg:      lg.With(zap.String("run", rec.ID), zap.String("experiment", rec.Experiment)),
		opts:    opts,
		rec:     rec,
		abortCh: make(chan string, 1),
		w:       newRecordWriter(deps.Save, opts.SaveInterval),
		stopped: make(chan struct{}),
		calls:   make(chan struct{}, opts.FanOut),

		selfExpiresAt: map[int]time.Time{},
	}
}

// Abort asks the run to revert at once and end as aborted. Safe to call
// from any goroutine, any number of times.
func (r *Runner) Abort(reason string) {
	r.abortOnce.Do(func() {
		r.aborted.Store(true)
		close(r.stopped)
		r.abortCh <- reason
	})
}

// Fail ends the run in error because the tool itself cannot go on (its
// record cannot be saved): like Abort it reverts every fault at once, but
// the verdict is error with reason. Safe from any goroutine; the first
// reason stands.
func (r *Runner) Fail(reason string) {
	r.failure.CompareAndSwap(nil, &reason)
	r.Abort(reason)
}

// Record returns a copy of the current record.
func (r *Runner) Record() api.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.DeepCopy()
}

// ActiveFaults counts the faults injected and not yet reverted.
func (r *Runner) ActiveFaults() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.rec.Faults {
		if f.InjectedAt != nil && f.RevertedAt == nil {
			n++
		}
	}
	return n
}

// Run executes the experiment and returns the final record. It never
// leaves a fault behind: whatever ends the run (verdict, abort, error, ctx
// cancelled), every injected fault is reverted before Run returns. The
// record it returns is the one last saved (unless that save failed).
func (r *Runner) Run(ctx context.Context) api.Run {
	r.w.start(r)
	now := time.Now()
	r.update(func(rec *api.Run) { rec.Times.Started = &now })
	verdict, reason := r.run(ctx)
	verdict, reason = r.judgeAlerts(ctx, verdict, reason)
	if why := r.failure.Load(); why != nil {
		// The abort Fail caused is not the user's: keep only a reason of
		// the tool's own (a revert that failed, say).
		if verdict != api.VerdictError {
			reason = ""
		}
		verdict, reason = api.VerdictError, joinReasons(*why, reason)
	}
	if r.deps.Silencer != nil {
		r.expireSilences(ctx)
	}
	r.finish(verdict, reason)
	_ = r.w.stopAndFlush(r)
	return r.Record()
}

// run is the phase sequence.
func (r *Runner) run(ctx context.Context) (api.Verdict, string) {
	plan, verdict, reason := r.preflight(ctx)
	if verdict != "" {
		return verdict, reason
	}
	// The data-loss check writes from here to the revert (dataloss.go).
	writes, verdict, reason := r.startWrites(ctx)
	defer writes.close()
	if verdict != "" {
		return verdict, reason
	}
	if verdict, reason := r.steadyState(ctx); verdict != "" {
		return verdict, reason
	}
	if r.rec.DryRun {
		return api.VerdictPass, fmt.Sprintf("dry run: steady state holds; would inject %d fault(s)", len(plan))
	}
	if r.aborted.Load() {
		return api.VerdictAborted, "aborted by user before inject"
	}

	// Targets that change from now on are recorded, never silently dropped.
	stopWatch := r.watchTargets(ctx, plan)
	defer stopWatch()

	if err := r.silenceAlerts(ctx); err != nil {
		return api.VerdictError, "preflight: " + err.Error()
	}
	// Inject. From here on every path goes through revertAll. Each
	// fault's lease is renewed from its own inject on.
	r.setPhase(api.PhaseInjecting, fmt.Sprintf("injecting %d fault(s)", len(plan)))
	leases := r.startLeases(ctx)
	verdict, reason = r.injectAll(ctx, plan, leases)
	if verdict == "" {
		verdict, reason = r.observe(ctx, leases.lost)
	}
	leases.stop()
	err := r.revertAll(ctx)
	writes.stop()
	if err != nil {
		return api.VerdictError, joinReasons(reason, "revert: "+err.Error())
	}
	if verdict != "" {
		return verdict, reason
	}
	verdict, reason = r.recover(ctx)
	return writes.judge(ctx, verdict, reason)
}

// judgeAlerts adds the alert checks to a run that injected: a failed
// check turns a pass into a fail; alerts that cannot be read turn a pass
// into an error. Other verdicts stand, with the checks recorded.
func (r *Runner) judgeAlerts(ctx context.Context, verdict api.Verdict, reason string) (api.Verdict, string) {
	// A pass or a fail waits for expected alerts still due; an aborted
	// or broken run only records what fired.
	wait := verdict == api.VerdictPass || verdict == api.VerdictFail
	failed, toolErr := r.checkAlerts(ctx, wait)
	switch {
	case toolErr != "" && verdict == api.VerdictPass:
		return api.VerdictError, toolErr
	case toolErr != "":
		return verdict, joinReasons(reason, toolErr)
	case failed != "" && verdict == api.VerdictPass:
		return api.VerdictFail, failed
	case failed != "":
		return verdict, joinReasons(reason, failed)
	}
	return verdict, reason
}

// preflight checks that the backend answers, resolves the targets into a
// plan and asks every agent whether it can run its faults. Nothing is
// injected yet.
func (r *Runner) preflight(ctx context.Context) ([]liveFault, api.Verdict, string) {
	r.setPhase(api.PhasePreflight, "checking Prometheus, targets and agents")
	if err := r.deps.Prober.Ping(ctx); err != nil {
		return nil, api.VerdictError, fmt.Sprintf("preflight: Prometheus: %v", err)
	}
	r.chooseResolution(ctx)
	if why := r.prepareProbes(); why != "" {
		return nil, api.VerdictError, "preflight: " + why
	}
	plan, err := r.plan(ctx)
	if err != nil {
		return nil, api.VerdictError, fmt.Sprintf("preflight: %v", err)
	}
	if why := r.checkAgents(ctx, plan); why != "" {
		return nil, api.VerdictError, "preflight: " + why
	}
	if ctx.Err() != nil {
		return nil, api.VerdictError, "cancelled before inject"
	}
	return plan, "", ""
}
