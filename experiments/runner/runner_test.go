package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/internal/agentsim"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/promql"
	"github.com/chaosd/chaosd/targets"
)

func TestMain(m *testing.M) {
	if agentsim.ServeChild() { // the fleet of BenchmarkFanOut
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// system is a stateful fake of the system under test and its agents: it
// is healthy unless a fault is active, and needs recoverAfter to heal
// once the last fault is reverted (never, if recoverAfter < 0).
type system struct {
	mu           sync.Mutex
	active       map[string]string // fault id → node
	injected     int
	reverted     []string
	lastRevert   time.Time
	recoverAfter time.Duration
	healthyAlso  bool // ignore faults: the system hides them completely

	failInjectOn string // node whose inject fails
	goneOnRenew  bool   // renewals answer 410, as after a lease expiry
	silentRenew  bool   // renewals get no answer (the agent is unreachable)
	goneWhy      string // the 410's message (default: reverted: lease-expired)
	pingErr      error
	unhealthy    bool // unhealthy from the start
	abortValue   float64
	noEffect     bool          // the faults never show their effect
	scrape       time.Duration // the backend's scrape interval (0: unknown)
	// impairedFrom is when the first fault went in; impairedUntil when
	// the system healed (recoverAfter after the last revert).
	impairedFrom, impairedUntil time.Time
	unavailable                 map[string]string // kind → why the agents cannot run it
	// blind, when set, says whether Prometheus answers at t (false: the
	// query fails with ErrUnreachable).
	blind     func(s *system, t time.Time) bool
	injectedF []agentapi.Fault // what the agents were asked to apply
	// failsAt, when set, makes requests fail at the instants it says
	// (a flaky system), faults or not.
	failsAt func(t time.Time) bool

	// Each inject, renewal and revert takes this long (outside the lock).
	injectDelay, renewDelay, revertDelay time.Duration
	// onInject, when set, is called with the number of faults injected
	// so far after each inject.
	onInject func(injected int)
	// calls and maxCalls count agent calls in flight (now, at most);
	// renewing holds the faults with a renewal in flight, and
	// renewOverlap is set if a fault ever had two at once.
	calls, maxCalls int
	renewing        map[string]bool
	renewOverlap    bool
	renewals        int
	// leaseEnds is when each active fault's lease runs out: a renewal
	// after that finds it reverted (410), as a real agent's would.
	leaseEnds map[string]time.Time
}

// call accounts for one agent call taking d; done ends it.
func (s *system) call(d time.Duration) (done func()) {
	s.mu.Lock()
	s.calls++
	s.maxCalls = max(s.maxCalls, s.calls)
	s.mu.Unlock()
	time.Sleep(d)
	return func() { s.mu.Lock(); s.calls--; s.mu.Unlock() }
}

func newSystem() *system { return &system{active: map[string]string{}} }

// healthyAt says whether the system was healthy at t.
func (s *system) healthyAt(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.unhealthy, s.failsAt != nil && s.failsAt(t):
		return false
	case s.healthyAlso, s.impairedFrom.IsZero(), t.Before(s.impairedFrom):
		return true
	case len(s.active) > 0 || s.recoverAfter < 0:
		return false
	}
	return !t.Before(s.impairedUntil)
}

// healthyOver judges a probe at t the way Prometheus would: a query over
// a range window (rate(x[1s])) sees every scrape in the window, a query
// without one only the latest scrape.
func (s *system) healthyOver(p probes.Probe, t time.Time) bool {
	info, err := promql.Analyze(p.Query)
	if err != nil {
		panic(err)
	}
	w, scrape := info.Lookback(0), s.scrape
	if scrape <= 0 {
		scrape = time.Millisecond
	}
	for back := time.Duration(0); back == 0 || back <= w-scrape; back += scrape {
		if !s.healthyAt(t.Add(-back)) {
			return false
		}
	}
	return true
}

func (s *system) ScrapeInterval(context.Context) (time.Duration, error) {
	if s.scrape <= 0 {
		return 0, errors.New("no scrape interval")
	}
	return s.scrape, nil
}

func (s *system) EvalRange(ctx context.Context, p probes.Probe, start, end time.Time, step time.Duration) ([]probes.Result, error) {
	var out []probes.Result
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, s.Eval(ctx, p, t))
	}
	return out, nil
}

func (s *system) Ping(context.Context) error { return s.pingErr }

func (s *system) Eval(_ context.Context, p probes.Probe, at time.Time) probes.Result {
	r := probes.Result{Probe: p.Name, Time: at}
	if s.blind != nil && s.blind(s, at) {
		r.Value = math.NaN()
		r.Err = fmt.Errorf("%w: no answer within 5s", probes.ErrUnreachable)
		r.Error = r.Err.Error()
		return r
	}
	switch p.Name {
	case "abort":
		r.Value = s.abortValue
	case "effect":
		s.mu.Lock()
		if len(s.active) > 0 && !s.noEffect {
			r.Value = 1
		}
		s.mu.Unlock()
	default:
		if s.healthyOver(p, at) {
			r.Value = 1
		}
	}
	if math.IsNaN(r.Value) { // an empty vector
		r.OK = p.OnEmpty == probes.OnEmptyPass
		return r
	}
	r.OK = p.Holds(r.Value)
	r.Series = []probes.SeriesValue{{Labels: "{}", Value: r.Value, OK: r.OK}}
	return r
}

type fakeAgent struct {
	s    *system
	node string
}

func (a fakeAgent) Status(context.Context) (agentapi.Status, error) {
	return agentapi.Status{Node: a.node, Unavailable: a.s.unavailable}, nil
}

func (a fakeAgent) Inject(_ context.Context, f agentapi.Fault) (agentapi.FaultStatus, error) {
	defer a.s.call(a.s.injectDelay)()
	if on := a.s.onInject; on != nil {
		defer func() { a.s.mu.Lock(); n := a.s.injected; a.s.mu.Unlock(); on(n) }()
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.node == a.s.failInjectOn {
		return agentapi.FaultStatus{}, &agentapi.APIError{Status: 500, Message: "nftables: operation not permitted"}
	}
	if f.Deadline.IsZero() || f.LeaseSeconds <= 0 {
		return agentapi.FaultStatus{}, &agentapi.APIError{Status: 400, Message: "deadline and lease required"}
	}
	a.s.active[f.ID+"@"+a.node] = a.node
	if a.s.leaseEnds == nil {
		a.s.leaseEnds = map[string]time.Time{}
	}
	a.s.leaseEnds[f.ID+"@"+a.node] = time.Now().Add(time.Duration(f.LeaseSeconds * float64(time.Second)))
	if a.s.impairedFrom.IsZero() {
		a.s.impairedFrom = time.Now()
	}
	a.s.injected++
	a.s.injectedF = append(a.s.injectedF, f)
	return agentapi.FaultStatus{Fault: f, State: agentapi.StateActive, AppliedAt: time.Now()}, nil
}

func (a fakeAgent) Renew(_ context.Context, id string, lease time.Duration) (agentapi.FaultStatus, error) {
	key := id + "@" + a.node
	a.s.mu.Lock()
	if a.s.renewing == nil {
		a.s.renewing = map[string]bool{}
	}
	a.s.renewOverlap = a.s.renewOverlap || a.s.renewing[key]
	a.s.renewing[key] = true
	a.s.renewals++
	a.s.mu.Unlock()
	defer a.s.call(a.s.renewDelay)()
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	delete(a.s.renewing, key)
	if a.s.silentRenew {
		return agentapi.FaultStatus{}, errors.New("dial unix agent.sock: connect: connection refused")
	}
	if end, ok := a.s.leaseEnds[key]; ok && time.Now().After(end) {
		delete(a.s.active, key)
		delete(a.s.leaseEnds, key)
		return agentapi.FaultStatus{}, &agentapi.APIError{Status: 410, Message: "reverted: lease-expired"}
	}
	if a.s.goneOnRenew {
		delete(a.s.active, id+"@"+a.node)
		why := a.s.goneWhy
		if why == "" {
			why = "reverted: lease-expired"
		}
		return agentapi.FaultStatus{}, &agentapi.APIError{Status: 410, Message: why}
	}
	if _, ok := a.s.leaseEnds[key]; ok {
		a.s.leaseEnds[key] = time.Now().Add(lease)
	}
	return agentapi.FaultStatus{State: agentapi.StateActive}, nil
}

func (a fakeAgent) Revert(_ context.Context, id string) (agentapi.FaultStatus, error) {
	defer a.s.call(a.s.revertDelay)()
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	key := id + "@" + a.node
	if _, ok := a.s.active[key]; ok {
		delete(a.s.active, key)
		a.s.reverted = append(a.s.reverted, key)
		a.s.lastRevert = time.Now()
		a.s.impairedUntil = a.s.lastRevert.Add(a.s.recoverAfter)
	}
	return agentapi.FaultStatus{State: agentapi.StateReverted, RevertedAt: time.Now(), RevertReason: agentapi.ReasonRequested, Verified: true}, nil
}

// nodeInventory resolves every target to the nodes n1 and n2.
type nodeInventory struct{}

func (nodeInventory) Resolve(_ context.Context, t experiments.Target) ([]targets.Node, error) {
	return []targets.Node{{Cluster: t.Cluster, Name: "n1"}, {Cluster: t.Cluster, Name: "n2"}}, nil
}

// fleet hands out the system's fake agents.
type fleet struct{ s *system }

func (f fleet) Agent(_, node string) (Agent, error) { return fakeAgent{f.s, node}, nil }

func deps(s *system, inv Inventory, save func(api.Run) error) Deps {
	return Deps{Prober: s, Inventory: inv, Agents: fleet{s}, Save: save}
}

func f64(v float64) *float64 { return &v }

func experiment(mod func(*experiments.Spec)) *experiments.Experiment {
	slo := []probes.Probe{{Name: "slo", Query: "up", Op: probes.OpGE, Threshold: f64(1)}}
	e := &experiments.Experiment{
		APIVersion: experiments.APIVersion, Kind: "Experiment",
		Metadata: experiments.Metadata{Name: "t"},
		Spec: experiments.Spec{
			Targets: []experiments.Target{{Name: "c1-nodes", Cluster: "c1", Mode: experiments.BlastRadius{Kind: experiments.BlastAll}}},
			Faults: []experiments.Fault{{Name: "cut", Kind: agentapi.KindPartition, Target: "c1-nodes",
				Partition: &experiments.PartitionParams{CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Direction: experiments.DirectionBoth}}},
			Duration:      experiments.Duration(400 * time.Millisecond),
			ProbeInterval: experiments.Duration(50 * time.Millisecond),
			SteadyState:   experiments.SteadyState{Probes: slo},
			Recovery: experiments.Recovery{
				RTO:     experiments.Duration(10 * time.Second),
				HoldFor: experiments.Duration(200 * time.Millisecond),
				Timeout: experiments.Duration(2 * time.Second),
				Probes:  slo,
			},
		},
	}
	if mod != nil {
		mod(&e.Spec)
	}
	return e
}

func run(t *testing.T, ctx context.Context, e *experiments.Experiment, s *system, during func(*Runner)) (api.Run, []api.Run) {
	t.Helper()
	var mu sync.Mutex
	var saved []api.Run
	save := func(r api.Run) error { mu.Lock(); saved = append(saved, r); mu.Unlock(); return nil }
	rec := api.Run{ID: "r-1", Experiment: e.Metadata.Name, Trigger: api.TriggerManual, CreatedAt: time.Now()}
	rn := New(e, rec, deps(s, nodeInventory{}, save), zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, AgentTimeout: time.Second})
	if during != nil {
		go during(rn)
	}
	final := rn.Run(ctx)
	s.mu.Lock()
	left := len(s.active)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d fault(s) left active after the run ended with %s: %s", left, final.Verdict, final.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	return final, saved
}

func TestRunVerdicts(t *testing.T) {
	cases := []struct {
		name        string
		setup       func(*system)
		mod         func(*experiments.Spec)
		during      func(*Runner)
		cancelAfter time.Duration
		verdict     api.Verdict
		reason      string
		injected    bool
	}{
		{name: "recovers in time passes", setup: func(s *system) { s.recoverAfter = 300 * time.Millisecond },
			verdict: api.VerdictPass, reason: "recovered in", injected: true},
		{name: "never recovers fails", setup: func(s *system) { s.recoverAfter = -1 },
			verdict: api.VerdictFail, reason: "not recovered", injected: true},
		{name: "RTO over target fails", setup: func(s *system) { s.recoverAfter = 300 * time.Millisecond },
			mod:     func(sp *experiments.Spec) { sp.Recovery.RTO = experiments.Duration(200 * time.Millisecond) },
			verdict: api.VerdictFail, reason: "exceeds the target", injected: true},
		{name: "steady state not met does not inject", setup: func(s *system) { s.unhealthy = true },
			verdict: api.VerdictFail, reason: "steady state not met"},
		{name: "prometheus unreachable is a tool error", setup: func(s *system) { s.pingErr = errors.New("connection refused") },
			verdict: api.VerdictError, reason: "Prometheus"},
		{name: "inject failure reverts what was applied", setup: func(s *system) { s.failInjectOn = "n2" },
			verdict: api.VerdictError, reason: "inject", injected: false},
		{name: "abort condition fires", setup: func(s *system) { s.abortValue = 0.9; s.recoverAfter = 0 },
			mod: func(sp *experiments.Spec) {
				sp.AbortWhen = []experiments.AbortProbe{{Probe: probes.Probe{Name: "abort", Query: "x", Op: probes.OpGT, Threshold: f64(0.5)},
					For: experiments.Duration(100 * time.Millisecond)}}
			},
			verdict: api.VerdictAborted, reason: "abort condition abort fired", injected: true},
		{name: "abort probe with empty result and onEmpty pass does not fire", setup: func(s *system) { s.abortValue = math.NaN(); s.recoverAfter = 0 },
			mod: func(sp *experiments.Spec) {
				sp.AbortWhen = []experiments.AbortProbe{{Probe: probes.Probe{Name: "abort", Query: "x", Op: probes.OpGT, Threshold: f64(0.5), OnEmpty: probes.OnEmptyPass},
					For: experiments.Duration(100 * time.Millisecond)}}
			},
			verdict: api.VerdictPass, reason: "recovered", injected: true},
		{name: "abort probe that cannot be judged fires", setup: func(s *system) { s.abortValue = math.NaN(); s.recoverAfter = 0 },
			mod: func(sp *experiments.Spec) {
				sp.AbortWhen = []experiments.AbortProbe{{Probe: probes.Probe{Name: "abort", Query: "x", Op: probes.OpGT, Threshold: f64(0.5)},
					For: experiments.Duration(100 * time.Millisecond)}}
			},
			verdict: api.VerdictAborted, reason: "abort condition abort fired", injected: true},
		{name: "user abort", setup: func(s *system) { s.recoverAfter = 0 },
			during:  func(r *Runner) { time.Sleep(150 * time.Millisecond); r.Abort("test") },
			verdict: api.VerdictAborted, reason: "aborted by user", injected: true},
		{name: "lost lease is a tool error", setup: func(s *system) { s.goneOnRenew = true },
			verdict: api.VerdictError, reason: "fault ended early", injected: true},
		{name: "an agent silent for a whole lease ends the run", setup: func(s *system) { s.silentRenew, s.healthyAlso = true, true },
			verdict: api.VerdictError, reason: "has not answered for", injected: true},
		{name: "a fault that vanished is never a pass", setup: func(s *system) {
			s.goneOnRenew, s.goneWhy, s.healthyAlso = true, `fault "r-1.cut" is reverted (vanished): it was no longer in place`, true
		},
			verdict: api.VerdictError, reason: "vanished", injected: true},
		{name: "Prometheus blind in steady state is a tool error", setup: func(s *system) {
			s.blind = func(*system, time.Time) bool { return true }
		},
			verdict: api.VerdictError, reason: "steady state could not be judged: slo: prometheus unreachable"},
		{name: "Prometheus blind through recovery is a tool error, not a fail", setup: func(s *system) {
			s.recoverAfter = 0
			s.blind = func(s *system, _ time.Time) bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.lastRevert.IsZero() }
		},
			verdict: api.VerdictError, reason: "recovery could not be judged: the probes were blind", injected: true},
		{name: "Prometheus blind during the fault is no impact", setup: func(s *system) {
			s.recoverAfter = 0
			s.blind = func(s *system, _ time.Time) bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.active) > 0 }
		},
			verdict: api.VerdictPass, reason: "no impact", injected: true},
		{name: "shutdown mid-run reverts", setup: func(s *system) { s.recoverAfter = 0 }, cancelAfter: 150 * time.Millisecond,
			verdict: api.VerdictError, reason: "interrupted", injected: true},
		{name: "no impact gives RTO 0", setup: func(s *system) { s.healthyAlso = true },
			verdict: api.VerdictPass, reason: "no impact", injected: true},
		{name: "effects proven then recovery judged", setup: func(s *system) { s.recoverAfter = 0 },
			mod:     withEffects,
			verdict: api.VerdictPass, reason: "recovered", injected: true},
		{name: "faults without effect prove nothing", setup: func(s *system) { s.noEffect = true; s.recoverAfter = 0 },
			mod:     withEffects,
			verdict: api.VerdictError, reason: "no provable effect", injected: true},
		{name: "steady state must hold during the fault and does not", setup: func(s *system) { s.recoverAfter = 0 },
			mod:     func(sp *experiments.Spec) { withEffects(sp); sp.SteadyState.MustHoldDuringFault = true },
			verdict: api.VerdictFail, reason: "steady state violated while the faults were in place", injected: true},
		{name: "steady state must hold during the fault and does", setup: func(s *system) { s.healthyAlso = true },
			mod:     func(sp *experiments.Spec) { withEffects(sp); sp.SteadyState.MustHoldDuringFault = true },
			verdict: api.VerdictPass, reason: "no impact", injected: true},
		{name: "a kind the node cannot run is refused before inject",
			setup:   func(s *system) { s.unavailable = map[string]string{"partition": "no nf_tables in this kernel"} },
			verdict: api.VerdictError, reason: "cannot run partition faults: no nf_tables"},
	}
	for _, tc := range cases {
		// Each case runs in a synctest bubble: time is virtual, so the
		// phases' timing is exact and no case waits on the wall clock.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				tc.setup(s)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tc.cancelAfter > 0 {
					time.AfterFunc(tc.cancelAfter, cancel)
				}
				final, saved := run(t, ctx, experiment(tc.mod), s, tc.during)
				if final.Verdict != tc.verdict || !strings.Contains(final.Reason, tc.reason) {
					t.Fatalf("verdict %s (%s), want %s containing %q", final.Verdict, final.Reason, tc.verdict, tc.reason)
				}
				if final.Phase != api.PhaseDone || final.FinishedAt == nil {
					t.Errorf("phase %s finished %v, want done", final.Phase, final.FinishedAt)
				}
				if got := final.Times.Injected != nil; got != tc.injected {
					t.Errorf("injected recorded = %v, want %v", got, tc.injected)
				}
				if len(saved) == 0 || saved[len(saved)-1].Verdict != final.Verdict {
					t.Errorf("final record not saved")
				}
				for _, f := range final.Faults {
					if f.InjectedAt != nil && (f.RevertedAt == nil || !f.Verified) {
						t.Errorf("fault %s on %s injected but not recorded as verified reverted", f.Name, f.Node)
					}
				}
			})
		})
	}
}

func withEffects(sp *experiments.Spec) {
	sp.Effects = &experiments.Effects{
		Probes: []probes.Probe{{Name: "effect", Query: "x", Op: probes.OpEQ, Threshold: f64(1)}},
		Within: experiments.Duration(200 * time.Millisecond),
	}
}

func TestRunMeasuresRTO(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scrape time.Duration // 0: the backend cannot say
		// resolution the run must report, and the error it may have
		resolution, tolerance time.Duration
	}{
		{name: "to the probe interval", resolution: 50 * time.Millisecond, tolerance: 50 * time.Millisecond},
		{name: "to the scrape interval", scrape: 10 * time.Millisecond, resolution: 10 * time.Millisecond, tolerance: 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				s.recoverAfter = 500 * time.Millisecond
				s.scrape = tc.scrape
				e := experiment(nil)
				final, _ := run(t, context.Background(), e, s, nil)
				if final.Verdict != api.VerdictPass {
					t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
				}
				tm := final.Times
				if tm.Injected == nil || tm.FirstImpact == nil || tm.Reverted == nil || tm.Recovered == nil {
					t.Fatalf("missing times: %+v", tm)
				}
				if !(tm.Injected.Before(*tm.Reverted) && !tm.FirstImpact.Before(*tm.Injected) && tm.Recovered.After(*tm.Reverted)) {
					t.Fatalf("times out of order: %+v", tm)
				}
				// The fake system is impaired from the first inject until 500ms
				// after the last revert.
				truth := s.impairedUntil.Sub(s.impairedFrom)
				got := time.Duration(*final.RTO.MeasuredSeconds * float64(time.Second))
				if d := got - truth; d > tc.tolerance || d < -tc.tolerance {
					t.Errorf("measured RTO %s, truth %s: off by %s (> %s)", got, truth, d, tc.tolerance)
				}
				if final.RTO.ResolutionSeconds != tc.resolution.Seconds() || final.RTO.TargetSeconds != 10 {
					t.Errorf("rto block %+v, want resolution %s", final.RTO, tc.resolution)
				}
				// Every probe's result per phase is recorded.
				phases := map[api.Phase]bool{}
				for _, p := range final.Phases {
					phases[p.Phase] = len(p.Probes) > 0 && p.Probes[0].Evaluations > 0
				}
				for _, want := range []api.Phase{api.PhaseSteadyState, api.PhaseObserving, api.PhaseRecovering} {
					if !phases[want] {
						t.Errorf("no probe results for phase %s: %+v", want, final.Phases)
					}
				}
				if s.injected != 2 || len(s.reverted) != 2 {
					t.Errorf("injected %d reverted %d, want 2 and 2 (one per node)", s.injected, len(s.reverted))
				}
			})
		})
	}
}

func TestDryRunInjectsNothing(t *testing.T) { synctest.Test(t, testDryRunInjectsNothing) }

func testDryRunInjectsNothing(t *testing.T) {
	s := newSystem()
	e := experiment(nil)
	rec := api.Run{ID: "r-dry", Experiment: "t", DryRun: true}
	final := New(e, rec, deps(s, nodeInventory{}, nil), nil, Options{}).Run(context.Background())
	if final.Verdict != api.VerdictPass || s.injected != 0 {
		t.Fatalf("dry run: verdict %s injected %d", final.Verdict, s.injected)
	}
}

// serviceInventory resolves a service target to two instances on one node.
type serviceInventory struct{}

func (serviceInventory) Resolve(_ context.Context, t experiments.Target) ([]targets.Node, error) {
	var out []targets.Node
	for _, name := range []string{"visits-1", "visits-2"} {
		out = append(out, targets.Node{Cluster: t.Cluster, Name: "n1",
			Instance: &targets.Instance{Service: t.Service, Name: name, URL: "http://" + name + ":8082", Cgroup: "lab/" + name}})
	}
	return out, nil
}

func TestServiceFaultsReachEveryInstance(t *testing.T) {
	synctest.Test(t, testServiceFaultsReachEveryInstance)
}

func testServiceFaultsReachEveryInstance(t *testing.T) {
	s := newSystem()
	s.recoverAfter = 0
	e := experiment(func(sp *experiments.Spec) {
		sp.Targets[0].Service = "visits-service"
		sp.Faults = []experiments.Fault{
			{Name: "boom", Kind: agentapi.KindException, Target: "c1-nodes", Exception: &experiments.ExceptionParams{Level: 3,
				Exception: &experiments.SpringException{Type: "java.lang.IllegalStateException"}}},
			{Name: "slow", Kind: agentapi.KindAppLatency, Target: "c1-nodes", AppLatency: &experiments.AppLatencyParams{Level: 1,
				Range: experiments.LatencyRange{Start: experiments.Duration(time.Second), End: experiments.Duration(2 * time.Second)}}},
			{Name: "fill", Kind: agentapi.KindMemory, Target: "c1-nodes", Memory: &experiments.MemoryParams{Fraction: 0.5,
				Ramp: experiments.Duration(100 * time.Millisecond)}},
		}
	})
	rec := api.Run{ID: "r-svc", Experiment: "t"}
	final := New(e, rec, deps(s, serviceInventory{}, nil), zaptest.NewLogger(t), Options{}).Run(context.Background())
	if final.Verdict != api.VerdictPass {
		t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
	}
	if len(s.injectedF) != 6 {
		t.Fatalf("injected %d faults, want 3 faults x 2 instances", len(s.injectedF))
	}
	ids := map[string]bool{}
	for _, f := range s.injectedF {
		ids[f.ID] = true
		switch f.Kind {
		case agentapi.KindException:
			if f.SpringBoot == nil || f.SpringBoot.Level != 3 || f.SpringBoot.Exception.Type != "java.lang.IllegalStateException" ||
				!strings.HasPrefix(f.SpringBoot.URL, "http://visits-") {
				t.Errorf("exception fault %+v", f.SpringBoot)
			}
		case agentapi.KindAppLatency:
			if f.SpringBoot == nil || f.SpringBoot.LatencyRangeStartMs != 1000 || f.SpringBoot.LatencyRangeEndMs != 2000 {
				t.Errorf("app-latency fault %+v", f.SpringBoot)
			}
		case agentapi.KindMemory:
			if f.Memory == nil || f.Memory.Fraction != 0.5 || !strings.HasPrefix(f.Memory.Cgroup, "lab/visits-") || f.Memory.RampSeconds != 0.1 {
				t.Errorf("memory fault %+v", f.Memory)
			}
		}
	}
	if len(ids) != 6 {
		t.Errorf("agent fault IDs must be unique per instance: %v", ids)
	}
	// IDs are run.fault.instance, so a restarted chaosd and the agents'
	// logs can tell every fault apart.
	for _, want := range []string{"r-svc.boom.visits-1", "r-svc.slow.visits-2", "r-svc.fill.visits-1"} {
		if !ids[want] {
			t.Errorf("no agent fault %s among %v", want, ids)
		}
	}
	for _, fr := range final.Faults {
		if fr.Instance == "" {
			t.Errorf("fault record without instance: %+v", fr)
		}
	}
}

// watchingInventory is serviceInventory that reports visits-2's pod gone
// 100ms after the watch starts.
type watchingInventory struct{ serviceInventory }

func (watchingInventory) Watch(ctx context.Context, nodes []targets.Node) <-chan targets.Change {
	ch := make(chan targets.Change, 1)
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
			ch <- targets.Change{Key: "n1/visits-2", Message: "target pod petclinic/visits-2 on node n1 was deleted"}
		}
	}()
	return ch
}

func TestTargetChangesAreRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.recoverAfter = 0
		e := experiment(func(sp *experiments.Spec) {
			sp.Targets[0].Service = "visits-service"
			sp.Faults = []experiments.Fault{{Name: "fill", Kind: agentapi.KindMemory, Target: "c1-nodes", Memory: &experiments.MemoryParams{Fraction: 0.5}}}
		})
		final := New(e, api.Run{ID: "r-w", Experiment: "t"}, deps(s, watchingInventory{}, nil), zaptest.NewLogger(t), Options{}).Run(context.Background())
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		var changed []string
		for _, f := range final.Faults {
			if f.TargetChanged != "" {
				changed = append(changed, f.Instance+": "+f.TargetChanged)
			}
		}
		if len(changed) != 1 || !strings.Contains(changed[0], "visits-service/visits-2: target pod petclinic/visits-2 on node n1 was deleted") {
			t.Errorf("fault records with a changed target: %v", changed)
		}
		found := false
		for _, ev := range final.Events {
			found = found || strings.Contains(ev.Message, "visits-2 on node n1 was deleted")
		}
		if !found {
			t.Errorf("no event for the vanished target")
		}
	})
}

func TestBlindSpellInRecoveryIsRecordedNotBlamed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.recoverAfter = 0
		// Prometheus does not answer for the first 700ms after the revert.
		s.blind = func(s *system, at time.Time) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return !s.lastRevert.IsZero() && at.Before(s.lastRevert.Add(700*time.Millisecond))
		}
		final, _ := run(t, context.Background(), experiment(nil), s, nil)
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		if final.BlindSeconds < 0.6 || final.BlindSeconds > 0.8 {
			t.Errorf("blindSeconds %v, want about 0.7", final.BlindSeconds)
		}
		var paused, resumed bool
		for _, ev := range final.Events {
			paused = paused || strings.Contains(ev.Message, "probes blind, judging paused")
			resumed = resumed || strings.Contains(ev.Message, "judging resumed")
		}
		if !paused || !resumed {
			t.Errorf("events do not say when judging paused and resumed: %+v", final.Events)
		}
		// The recovery is placed after the blind spell, never inside it.
		if final.Times.Recovered == nil || final.Times.Recovered.Before(final.Times.Reverted.Add(700*time.Millisecond)) {
			t.Errorf("recovered at %v, reverted at %v: a blind spell was counted as recovered", final.Times.Recovered, final.Times.Reverted)
		}
	})
}
