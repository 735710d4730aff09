package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments"
)

// fakeChaosd is a small stateful fake of chaosd behind chaosd's real HTTP
// handler (daemon/httpapi): experiments, runs that advance one scripted
// state per GET, abort, halt. Routes, bearer-token auth and status codes
// are the daemon's own. The real daemon is tested end to end elsewhere.
type fakeChaosd struct {
	t     *testing.T
	token string
	// auth, when set, knows more tokens than the admin one (scopes).
	auth httpapi.Authorizer

	mu          sync.Mutex
	experiments map[string]api.Verdict // name -> verdict its runs end with ("" never ends)
	runs        map[string]*fakeRun
	order       []string // run IDs, oldest first
	// status, when set, is the answer to every /v1 call.
	status int
	// failGets makes the next N GET /v1/runs/{id} answer 503.
	failGets int
	aborts   []string
	// adHoc are the ad hoc start requests chaosd accepted.
	adHoc []api.StartRequest
	// listQueries are the query strings of GET /v1/runs.
	listQueries []string
	// timelines are the probe curves GET /v1/runs/{id}/timeline serves.
	timelines      map[string]api.Timeline
	timelineStatus int
	// scheds is the schedule state (fakeschedules_test.go).
	scheds fakeSchedules
	// suiteRuns by ID (fakesuites_test.go).
	suiteRuns map[string]*fakeSuiteRun
}

type fakeRun struct {
	states  []api.Run // what successive GETs return; the last one repeats
	next    int
	aborted bool
}

func newFakeChaosd(t *testing.T, token string) *fakeChaosd {
	return &fakeChaosd{
		t:     t,
		token: token,
		experiments: map[string]api.Verdict{
			"exp-pass":        api.VerdictPass,
			"exp-fail":        api.VerdictFail,
			"exp-aborted":     api.VerdictAborted,
			"exp-error":       api.VerdictError,
			"exp-interrupted": "interrupted",
			"exp-forever":     "",
		},
		runs: map[string]*fakeRun{},
	}
}

// serveTCP starts the fake on loopback and returns its endpoint.
func (f *fakeChaosd) serveTCP() string {
	srv := httptest.NewServer(f.handler())
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// serveUnix starts the fake on a unix socket in a fresh directory and
// returns the socket path.
func (f *fakeChaosd) serveUnix() string {
	dir := f.t.TempDir()
	sock := filepath.Join(dir, "chaosd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		f.t.Fatalf("listen on %s: %v", sock, err)
	}
	srv := httptest.NewUnstartedServer(f.handler())
	srv.Listener = ln
	srv.Start()
	f.t.Cleanup(srv.Close)
	return sock
}

// handler serves the fake through chaosd's own API handler (routes, auth,
// limits, status codes), so the fake only holds state.
func (f *fakeChaosd) handler() http.Handler {
	h := httpapi.Handler(f, httpapi.Options{Token: f.token, Auth: f.auth})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/runs" && r.Method == http.MethodGet {
			f.mu.Lock()
			f.listQueries = append(f.listQueries, r.URL.RawQuery)
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// queries returns the query strings of every GET /v1/runs so far.
func (f *fakeChaosd) queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.listQueries...)
}

// forced returns the forced answer of every /v1 call, if any.
func (f *fakeChaosd) forced() error {
	if f.status != 0 {
		return httpapi.Errorf(f.status, "forced %d", f.status)
	}
	return nil
}

func (f *fakeChaosd) Experiments(context.Context) ([]api.ExperimentInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return nil, err
	}
	return []api.ExperimentInfo{
		{Name: "exp-pass", Source: "library", Schedule: "0 10 * * 2", TimeZone: "Europe/Berlin",
			NextRun: ptr(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))},
		{Name: "exp-fail", Source: "/etc/chaosd/experiments/exp-fail.yaml"},
	}, nil
}

func (f *fakeChaosd) StartRun(_ context.Context, req api.StartRequest) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.Run{}, err
	}
	verdict, ok := f.experiments[req.Experiment]
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", req.Experiment)
	}
	if err := f.scheds.refuse(req); err != nil {
		return api.Run{}, err
	}
	id := fmt.Sprintf("r-%04d", len(f.order)+1)
	run := &fakeRun{states: script(id, req.Experiment, verdict, req.DryRun)}
	f.runs[id] = run
	f.order = append(f.order, id)
	return run.states[0], nil
}

// StartAdHocRun starts a run of an ad hoc experiment, which the handler
// has validated: it passes, and its record keeps the spec.
func (f *fakeChaosd) StartAdHocRun(_ context.Context, exp *experiments.Experiment, req api.StartRequest) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.Run{}, err
	}
	name := exp.Metadata.Name
	if _, clash := f.experiments[name]; clash {
		return api.Run{}, httpapi.Errorf(http.StatusUnprocessableEntity, "metadata.name: %q is an experiment of chaosd's library", name)
	}
	f.adHoc = append(f.adHoc, req)
	id := fmt.Sprintf("r-%04d", len(f.order)+1)
	states := script(id, name, api.VerdictPass, req.DryRun)
	for i := range states {
		states[i].AdHoc = &api.AdHoc{File: req.File, SHA256: "fake", Spec: req.Spec}
	}
	f.runs[id] = &fakeRun{states: states}
	f.order = append(f.order, id)
	return states[0], nil
}

// addRecord adds a finished run record (for lists and filters).
func (f *fakeChaosd) addRecord(r api.Run) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[r.ID] = &fakeRun{states: []api.Run{r}}
	f.order = append(f.order, r.ID)
}

// Preview answers for exp-pass: two eligible nodes, one of whose agents
// cannot run the fault.
func (f *fakeChaosd) Preview(_ context.Context, name string) (api.ExperimentPreview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.ExperimentPreview{}, err
	}
	if _, ok := f.experiments[name]; !ok {
		return api.ExperimentPreview{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", name)
	}
	return api.ExperimentPreview{
		Experiment: api.ExperimentInfo{Name: name, Description: "cut the TGW route", Source: "library", Schedule: "0 10 * * 2", TimeZone: "Europe/Berlin"},
		ResolvedAt: t0, DurationSeconds: 120, ProbeIntervalSeconds: 2, RTOSeconds: 900,
		Probes: []api.PreviewProbe{{Phase: api.PhaseSteadyState, Name: "gateway-success", Query: "sum(rate(x[1m]))", Condition: ">= 0.99"}},
		Targets: []api.PreviewTarget{{Name: "c1-nodes", Cluster: "c1", Selector: "role=worker", Mode: "one",
			Eligible: []string{"c1-n1", "c1-n2"}, Picked: 1}},
		Faults: []api.PreviewFault{{Name: "cut-tgw", Kind: "partition", Target: "c1-nodes", Params: []byte(`{"cidrs":["10.1.0.0/16"]}`),
			On: []api.PreviewPlacement{{Cluster: "c1", Node: "c1-n1", Ready: true}, {Cluster: "c1", Node: "c1-n2", Problem: "agent: unreachable"}}}},
		Problems: []string{"fault cut-tgw on c1-n2: agent: unreachable"},
	}, nil
}

// Version is the fake's version.
func (f *fakeChaosd) Version(context.Context) (api.VersionInfo, error) {
	if err := f.forced(); err != nil {
		return api.VersionInfo{}, err
	}
	return api.VersionInfo{Version: "v9.9.9-fake", GoVersion: "go1.x", Platform: "linux/amd64", Mode: "standalone"}, nil
}

func (f *fakeChaosd) Agents(context.Context) ([]api.AgentInfo, error) {
	if err := f.forced(); err != nil {
		return nil, err
	}
	return []api.AgentInfo{
		{Cluster: "c1", Node: "c1-n1", Reachable: true, ActiveFaults: 1,
			Unavailable: map[string]string{"latency": "netem qdisc not supported by this kernel"}},
		{Cluster: "c1", Node: "c1-n2", Error: "agent unreachable: dial unix: connection refused"}}, nil
}

func (f *fakeChaosd) Halt(_ context.Context, cluster string) (api.HaltResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.HaltResult{}, err
	}
	res := api.HaltResult{AbortedRuns: []string{}, Agents: []api.HaltedNode{
		{Cluster: "c1", Node: "c1-n1", Reverted: 1}, {Cluster: "c1", Node: "c1-n2"}}}
	for id, run := range f.runs {
		last := &run.states[len(run.states)-1]
		if last.Phase != api.PhaseDone {
			last.Phase, last.Verdict, last.Reason = api.PhaseDone, api.VerdictAborted, "aborted by user: halt"
			res.AbortedRuns = append(res.AbortedRuns, id)
		}
	}
	if cluster == "c2" {
		res.Agents = []api.HaltedNode{{Cluster: "c2", Node: "c2-n1", Error: "agent unreachable"}}
	}
	return res, nil
}

func (f *fakeChaosd) Runs(context.Context) ([]api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return nil, err
	}
	out := []api.Run{}
	for i := len(f.order) - 1; i >= 0; i-- {
		run := f.runs[f.order[i]]
		out = append(out, run.states[run.next].DeepCopy())
	}
	return out, nil
}

func (f *fakeChaosd) Run(_ context.Context, id string) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.Run{}, err
	}
	run, ok := f.runs[id]
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown run %q", id)
	}
	if f.failGets > 0 {
		f.failGets--
		return api.Run{}, httpapi.Errorf(http.StatusServiceUnavailable, "store busy")
	}
	if run.next < len(run.states)-1 {
		run.next++
	}
	return run.states[run.next].DeepCopy(), nil
}

// Timeline answers like chaosd: the curves set in timelines, else those
// of a chaosd whose Prometheus is down; timelineStatus, when set, is the
// answer instead (an older chaosd without the route answers 404).
func (f *fakeChaosd) Timeline(_ context.Context, id string) (api.Timeline, error) {
	if _, err := f.runRecord(id); err != nil {
		return api.Timeline{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.timelineStatus != 0 {
		return api.Timeline{}, httpapi.Errorf(f.timelineStatus, "404 page not found")
	}
	if tl, ok := f.timelines[id]; ok {
		return tl, nil
	}
	return api.Timeline{RunID: id, Error: "probe curves unavailable: prometheus unreachable"}, nil
}

// runRecord returns the current state of a run without advancing it.
func (f *fakeChaosd) runRecord(id string) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.Run{}, err
	}
	run, ok := f.runs[id]
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown run %q", id)
	}
	return run.states[run.next].DeepCopy(), nil
}

func (f *fakeChaosd) Abort(_ context.Context, id string) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.Run{}, err
	}
	run, ok := f.runs[id]
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown run %q", id)
	}
	f.aborts = append(f.aborts, id)
	last := run.states[len(run.states)-1]
	last.Phase, last.Verdict, last.Reason = api.PhaseDone, api.VerdictAborted, "aborted by chaosctl abort"
	cur := run.states[run.next]
	cur.Phase = api.PhaseReverting
	run.states = append(run.states[:run.next+1], last)
	return cur, nil
}

func (f *fakeChaosd) Skips(context.Context) ([]api.SkipInfo, error) { return nil, f.forced() }

func (f *fakeChaosd) abortCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.aborts...)
}

func ptr[T any](v T) *T { return &v }

// t0 is when every scripted run starts.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// script is the sequence of states of a run of experiment ending with
// verdict ("interrupted": verdict error after a chaosd restart; "": never
// ends, it stays observing).
func script(id, experiment string, verdict api.Verdict, dryRun bool) []api.Run {
	final := sampleRun(id, experiment, verdict)
	final.DryRun = dryRun
	base := api.Run{
		ID: id, Experiment: experiment, Trigger: api.TriggerManual, DryRun: dryRun,
		CreatedAt: t0, RTO: api.RTO{TargetSeconds: 900, ResolutionSeconds: 1},
	}
	state := func(phase api.Phase, current ...api.ProbeResult) api.Run {
		r := base
		r.Phase = phase
		r.Current = current
		return r
	}
	ok := api.ProbeResult{Probe: "gateway-success", Time: t0, OK: true, Value: 0.998}
	bad := api.ProbeResult{Probe: "gateway-to-visits-success", Time: t0, OK: false, Value: 0.12}
	states := []api.Run{
		state(api.PhasePending),
		state(api.PhasePreflight),
		state(api.PhaseSteadyState, ok),
		state(api.PhaseInjecting),
		state(api.PhaseObserving, ok, bad),
		state(api.PhaseObserving, ok, bad),
	}
	if verdict == "" {
		return states
	}
	return append(states,
		state(api.PhaseReverting),
		state(api.PhaseRecovering, ok),
		final,
	)
}

// sampleRun is a finished run record with every part of the report filled
// in; the golden report of package report uses the same shape.
func sampleRun(id, experiment string, verdict api.Verdict) api.Run {
	at := func(s float64) *time.Time { t := t0.Add(time.Duration(s * float64(time.Second))); return &t }
	r := api.Run{
		ID: id, Experiment: experiment, Trigger: api.TriggerManual,
		Phase: api.PhaseDone, Verdict: verdict,
		CreatedAt: t0, FinishedAt: at(95),
		Times: api.Times{
			Started: at(0), Injected: at(20), FirstImpact: at(22), Reverted: at(50), Recovered: at(64),
		},
		RTO: api.RTO{MeasuredSeconds: ptr(42.0), TargetSeconds: 900, ResolutionSeconds: 1},
		Faults: []api.FaultRecord{{
			Name: "cut-tgw", Kind: "partition", Cluster: "c1", Node: "c1-node-1", AgentFaultID: "f-1",
			InjectedAt: at(20), RevertedAt: at(50), RevertReason: "duration elapsed", Verified: true,
		}},
		Phases: []api.PhaseResult{{
			Phase: api.PhaseSteadyState,
			Probes: []api.ProbeSummary{{
				Name: "gateway-success", Condition: ">= 0.99", Evaluations: 5,
				Last: api.ProbeResult{Probe: "gateway-success", Time: *at(19), OK: true, Value: 0.998},
			}},
		}},
		Events: []api.Event{
			{Time: *at(0), Phase: api.PhasePreflight, Message: "agents ready on 1 node"},
			{Time: *at(20), Phase: api.PhaseInjecting, Message: "injected cut-tgw on c1/c1-node-1"},
			{Time: *at(50), Phase: api.PhaseReverting, Message: "reverted cut-tgw on c1/c1-node-1 (verified)"},
		},
	}
	switch verdict {
	case api.VerdictPass:
		r.Reason = "recovered in 42.0s, within the 15m0s RTO"
	case api.VerdictFail:
		r.Reason = "not recovered within the RTO"
		r.RTO.MeasuredSeconds = nil
		r.Times.Recovered = nil
	case api.VerdictAborted:
		r.Reason = "abort condition gateway-mostly-failing held for 10s"
	case "interrupted":
		r.Verdict, r.Interrupted, r.Reason = api.VerdictError, true, "chaosd restarted during the run"
	case api.VerdictError:
		r.Reason = "agent on c1-node-1 unreachable"
	}
	return r
}
