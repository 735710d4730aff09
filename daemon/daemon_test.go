package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/internal/amtest"
	"github.com/chaosd/chaosd/probes/alertmanager"
	"github.com/chaosd/chaosd/probes/promtest"
)

// fakeNode is a stateful fake of one node agent together with the part of
// the system under test it affects: while a fault is active the node's
// exported "sut_healthy" gauge reads 0, so the real Prometheus the test
// runs sees the impact.
type fakeNode struct {
	name   string
	socket string // unix socket, or "" when it listens on TCP
	port   int    // TCP port on 127.0.0.1 when socket is ""
	token  string

	mu      sync.Mutex
	active  map[string]agentapi.Fault
	last    agentapi.Fault // the last fault injected
	history []string       // "inject ID" / "revert ID"
	healthy prometheus.Gauge
	// afterCall, when set, is called after each inject or revert took
	// effect, before the answer is sent.
	afterCall func()
}

func startFakeNode(t *testing.T, dir, name, token string, healthy prometheus.Gauge) *fakeNode {
	return startFakeNodeOn(t, filepath.Join(dir, name+".sock"), name, token, healthy)
}

// startFakeNodeOn serves the fake on the unix socket path, or on a TCP
// port of 127.0.0.1 when path is "".
func startFakeNodeOn(t *testing.T, path, name, token string, healthy prometheus.Gauge) *fakeNode {
	t.Helper()
	if healthy == nil {
		// The system's health is not watched (no Prometheus scrapes it).
		healthy = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	}
	n := &fakeNode{name: name, socket: path, token: token,
		active: map[string]agentapi.Fault{}, healthy: healthy}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, agentapi.Status{Node: name})
	})
	mux.HandleFunc("POST /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		var f agentapi.Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || f.Deadline.IsZero() || f.LeaseSeconds <= 0 {
			writeJSON(w, 400, agentapi.Error{Error: "bad fault"})
			return
		}
		n.mu.Lock()
		n.active[f.ID] = f
		n.last = f
		n.history = append(n.history, "inject "+f.ID)
		n.healthy.Set(0)
		hook := n.afterCall
		n.mu.Unlock()
		if hook != nil {
			hook()
		}
		writeJSON(w, 201, agentapi.FaultStatus{Fault: f, State: agentapi.StateActive, AppliedAt: time.Now()})
	})
	mux.HandleFunc("POST /v1/faults/{id}/renew", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.active[r.PathValue("id")]; !ok {
			writeJSON(w, 404, agentapi.Error{Error: "unknown"})
			return
		}
		writeJSON(w, 200, agentapi.FaultStatus{State: agentapi.StateActive})
	})
	mux.HandleFunc("DELETE /v1/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		n.mu.Lock()
		if _, ok := n.active[id]; !ok {
			n.mu.Unlock()
			writeJSON(w, 404, agentapi.Error{Error: "unknown"})
			return
		}
		delete(n.active, id)
		n.history = append(n.history, "revert "+id)
		if len(n.active) == 0 {
			n.healthy.Set(1)
		}
		hook := n.afterCall
		n.mu.Unlock()
		if hook != nil {
			hook()
		}
		writeJSON(w, 200, agentapi.FaultStatus{State: agentapi.StateReverted, RevertedAt: time.Now(),
			RevertReason: agentapi.ReasonRequested, Verified: true})
	})
	mux.HandleFunc("POST /v1/halt", func(w http.ResponseWriter, _ *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		var out []agentapi.FaultStatus
		for id, f := range n.active {
			delete(n.active, id)
			n.history = append(n.history, "halt "+id)
			out = append(out, agentapi.FaultStatus{Fault: f, State: agentapi.StateReverted, RevertReason: agentapi.ReasonHalt, Verified: true})
		}
		n.healthy.Set(1)
		writeJSON(w, 200, out)
	})
	var l net.Listener
	var err error
	if n.socket != "" {
		l, err = net.Listen("unix", n.socket)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		n.port = a.Port
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			writeJSON(w, 401, agentapi.Error{Error: "unauthorized"})
			return
		}
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return n
}

func (n *fakeNode) lastFault() agentapi.Fault {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

func (n *fakeNode) activeCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.active)
}

type harness struct {
	t      *testing.T
	dir    string
	cfg    *Config
	client *client.Client
	nodes  []*fakeNode
	stop   func()
	done   chan error
}

const testExperiment = `apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata:
  name: %s
spec:
  targets:
    - name: c1-nodes
      cluster: c1
  faults:
    - name: cut
      kind: partition
      target: c1-nodes
      partition:
        cidrs: [10.1.0.0/16]
  duration: %s
  probeInterval: 1s
  steadyState:
    baseline: 1s
    probes:
      - name: healthy
        query: min(sut_healthy)
        op: "=="
        threshold: 1
  recovery:
    holdFor: 2s
    timeout: 30s
%s`

// newHarness writes a config and experiments, starts fake agents and (if
// promURL is not empty) points chaosd at that Prometheus.
func newHarness(t *testing.T, promURL string, healthy prometheus.Gauge, experiments map[string]string) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "chaosd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	expDir := filepath.Join(dir, "experiments")
	if err := os.MkdirAll(expDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range experiments {
		if err := os.WriteFile(filepath.Join(expDir, name+".yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for f, v := range map[string]string{"token": "secret-token", "agent-token": "agent-secret"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if healthy == nil {
		healthy = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	}
	h := &harness{t: t, dir: dir}
	cfg := &Config{TokenFile: filepath.Join(dir, "token"), DataDir: filepath.Join(dir, "data"),
		ExperimentsDir: expDir, AgentTokenFile: filepath.Join(dir, "agent-token"), Lease: "3s"}
	cfg.Listen.Socket = filepath.Join(dir, "chaosd.sock")
	cfg.Prometheus.URL = promURL
	if promURL == "" {
		cfg.Prometheus.URL = "http://127.0.0.1:1" // nothing listens there
	}
	cl := Cluster{Name: "c1"}
	for _, name := range []string{"c1-n1", "c1-n2"} {
		n := startFakeNode(t, dir, name, "agent-secret", healthy)
		h.nodes = append(h.nodes, n)
		cl.Agents = append(cl.Agents, AgentNode{Node: name, Endpoint: "unix://" + n.socket})
	}
	cfg.Clusters = []Cluster{cl}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.client, err = client.NewClient("unix://"+cfg.Listen.Socket, "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start() {
	h.t.Helper()
	d, err := New(h.cfg, zaptest.NewLogger(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.done = make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	h.stop = func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("chaosd Run: %v", err)
			}
		case <-time.After(90 * time.Second):
			h.t.Fatal("chaosd did not stop")
		}
	}
	h.t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for h.client.Health(context.Background()) != nil {
		if time.Now().After(deadline) {
			h.t.Fatal("chaosd did not answer /healthz")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) wait(id string, timeout time.Duration) api.Run {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := h.client.Run(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.Phase == api.PhaseDone {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %s still in phase %s after %s", id, r.Phase, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exporter serves a registry on loopback for the test Prometheus.
func exporter(t *testing.T, cs ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestIntegrationDaemonRunWithRealPrometheus(t *testing.T) {
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	h := newHarness(t, prom, healthy, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	ctx := context.Background()

	run, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	// A second run of the same experiment while the first goes is refused.
	var ae *api.APIError
	if _, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "cut"}); !errors.As(err, &ae) || ae.Status != 409 {
		t.Errorf("second concurrent run: got %v, want 409", err)
	}
	if _, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "nope"}); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("unknown experiment: got %v, want 404", err)
	}
	final := h.wait(run.ID, 60*time.Second)
	if final.Verdict != api.VerdictPass {
		t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
	}
	if final.Times.FirstImpact == nil || final.RTO.MeasuredSeconds == nil {
		t.Fatalf("the fake system was impaired while the fault was active, but no impact/RTO recorded: %+v", final.Times)
	}
	// Impaired from inject to revert: the measured RTO is the fault window,
	// within the resolution plus a scrape.
	window := final.Times.Reverted.Sub(*final.Times.Injected).Seconds()
	if got := *final.RTO.MeasuredSeconds; got < window-2.5 || got > window+2.5 {
		t.Errorf("measured RTO %.2fs, impaired for %.2fs", got, window)
	}
	if len(final.Faults) != 2 {
		t.Fatalf("faults %+v, want one per node", final.Faults)
	}
	for _, n := range h.nodes {
		if n.activeCount() != 0 {
			t.Errorf("node %s still has %d active fault(s)", n.name, n.activeCount())
		}
	}
	// The record is on disk and in the list.
	runs, err := h.client.Runs(ctx)
	if err != nil || len(runs) != 1 || runs[0].Verdict != api.VerdictPass {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	checkTimeline(t, h, final)
	// Metrics.
	body := h.get("/metrics")
	for _, want := range []string{
		`chaosd_runs_total{experiment="cut",verdict="pass"} 1`,
		`chaosd_last_measured_rto_seconds{experiment="cut"}`,
		`chaosd_faults_active 0`,
		`chaosd_runs_total{experiment="cut",verdict="fail"} 0`,
		`chaosd_rto_target_seconds{experiment="cut"} 900`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// checkTimeline asks chaosd for the run's timeline: the steady-state
// probe's curve, from the real Prometheus, is healthy before the inject and
// failing while the fault is in place.
func checkTimeline(t *testing.T, h *harness, run api.Run) {
	t.Helper()
	tl, err := h.client.Timeline(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Error != "" || len(tl.Series) != 1 {
		t.Fatalf("timeline error %q, %d series; want the one probe's curve", tl.Error, len(tl.Series))
	}
	s := tl.Series[0]
	if s.Name != "healthy" || s.Query != "min(sut_healthy)" || s.Condition != "== 1" || s.Threshold == nil || *s.Threshold != 1 ||
		!slices.Equal(s.Phases, []api.Phase{api.PhaseSteadyState, api.PhaseObserving, api.PhaseRecovering}) || s.Error != "" {
		t.Errorf("series %s %q %q threshold %v phases %v error %q", s.Name, s.Query, s.Condition, s.Threshold, s.Phases, s.Error)
	}
	if !tl.Start.Equal(run.Times.Started.Add(-30*time.Second)) || tl.StepSeconds != run.RTO.ResolutionSeconds {
		t.Errorf("window from %s step %gs; want 30s before the start %s, at the resolution %gs",
			tl.Start, tl.StepSeconds, run.Times.Started, run.RTO.ResolutionSeconds)
	}
	step := time.Duration(tl.StepSeconds * float64(time.Second))
	if want := int(tl.End.Sub(tl.Start)/step) + 1; len(s.Points) != want {
		t.Errorf("%d points, want one per step (%d)", len(s.Points), want)
	}
	var before, during int
	for _, p := range s.Points {
		switch {
		case p.Time.Before(*run.Times.Injected) && !math.IsNaN(p.Value):
			before++
			if p.Value != 1 || !p.OK {
				t.Errorf("before the inject at %s: %+v", run.Times.Injected, p)
			}
		case p.Time.After(run.Times.Injected.Add(1500*time.Millisecond)) && p.Time.Before(run.Times.Reverted.Add(-500*time.Millisecond)):
			during++
			if p.Value != 0 || p.OK {
				t.Errorf("during the fault (%s..%s): %+v", run.Times.Injected, run.Times.Reverted, p)
			}
		}
	}
	if before == 0 || during == 0 {
		t.Errorf("%d healthy points before the inject, %d during the fault; want some of each:\n%+v", before, during, s.Points)
	}
}

func (h *harness) get(path string) string {
	h.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.cfg.Listen.Socket)
	}}}
	req, _ := http.NewRequest("GET", "http://chaosd"+path, nil)
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, err := hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

func TestDaemonRequiresToken(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.cfg.Listen.Socket)
	}}}
	for _, ep := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/metrics"}, {"GET", "/v1/experiments"}, {"POST", "/v1/runs"},
		{"GET", "/v1/runs"}, {"GET", "/v1/runs/x"}, {"GET", "/v1/runs/x/timeline"}, {"POST", "/v1/runs/x/abort"}, {"GET", "/v1/skips"},
		{"GET", "/v1/version"}, {"GET", "/v1/experiments/cut/preview"}, {"GET", "/v1/runs?selector=adhoc%3Dtrue"},
	} {
		for _, tok := range []string{"", "Bearer wrong", "secret-token"} {
			req, _ := http.NewRequest(ep.method, "http://chaosd"+ep.path, nil)
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("%s %s with %q: status %d, want 401", ep.method, ep.path, tok, resp.StatusCode)
			}
		}
	}
}

func TestDaemonRestartMarksInterruptedRunAndRevertsItsFaults(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	// A previous chaosd crashed while observing: one fault is still active
	// on c1-n1 (as far as the record knows), c1-n2's was reverted.
	st, err := store.Open(h.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	n1 := h.nodes[0]
	n1.active["r-old.cut"] = agentapi.Fault{ID: "r-old.cut"}
	old := api.Run{ID: "r-old", Experiment: "cut", Trigger: api.TriggerManual, Phase: api.PhaseObserving, CreatedAt: at,
		Times: api.Times{Injected: &at},
		Faults: []api.FaultRecord{
			{Name: "cut", Kind: "partition", Cluster: "c1", Node: "c1-n1", AgentFaultID: "r-old.cut", InjectedAt: &at},
			{Name: "cut", Kind: "partition", Cluster: "c1", Node: "c1-n2", AgentFaultID: "r-old.cut", InjectedAt: &at, RevertedAt: &at, Verified: true},
		}}
	if err := st.Save(old); err != nil {
		t.Fatal(err)
	}
	h.start()
	got, err := h.client.Run(context.Background(), "r-old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict != api.VerdictError || !got.Interrupted || got.Phase != api.PhaseDone || !strings.Contains(got.Reason, "interrupted") {
		t.Fatalf("restarted run: verdict %s interrupted %v phase %s reason %q", got.Verdict, got.Interrupted, got.Phase, got.Reason)
	}
	if n1.activeCount() != 0 {
		t.Fatalf("fault left active on c1-n1 after restart")
	}
	if f := got.Faults[0]; f.RevertedAt == nil || !f.Verified {
		t.Errorf("fault record after restart: %+v", f)
	}
	if !strings.Contains(h.get("/metrics"), `chaosd_runs_total{experiment="cut",verdict="error"} 1`) {
		t.Errorf("interrupted run not counted in metrics")
	}
}

// TestDaemonRestartExpiresSilencesOfInterruptedRuns: a chaosd that died
// mid-run left an Alertmanager silence; the restarted one expires it (in
// a real Alertmanager) and the record says who did.
func TestDaemonRestartExpiresSilencesOfInterruptedRuns(t *testing.T) {
	amURL := amtest.Start(t)
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.cfg.Alertmanager.URL = amURL
	am, err := alertmanager.New(amURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ends := time.Now().Add(time.Hour)
	id, err := am.CreateSilence(context.Background(), map[string]string{"alertname": "PetClinicVisitsCallsFailing"}, ends, "chaosd run r-old")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(h.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	old := api.Run{ID: "r-old", Experiment: "cut", Trigger: api.TriggerManual, Phase: api.PhaseRecovering, CreatedAt: at,
		Times:    api.Times{Injected: &at, Reverted: &at},
		Silences: []api.Silence{{ID: id, Matchers: []string{`alertname="PetClinicVisitsCallsFailing"`}, EndsAt: ends, CreatedAt: at}}}
	if err := st.Save(old); err != nil {
		t.Fatal(err)
	}
	if s := amtest.Get(t, amURL, id); s.Status.State != "active" {
		t.Fatalf("silence %s before the restart", s.Status.State)
	}
	h.start()
	got, err := h.client.Run(context.Background(), "r-old")
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Silences[0]; s.ExpiredAt == nil || s.ExpiredBy != "chaosd restart" || s.Error != "" {
		t.Errorf("silence record after restart: %+v", s)
	}
	if s := amtest.Get(t, amURL, id); s.Status.State != "expired" {
		t.Errorf("silence %s in Alertmanager after the restart, want expired", s.Status.State)
	}
}

func TestIntegrationDaemonScheduleNeverOverlapsAndRecordsSkips(t *testing.T) {
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	sched := "  schedule:\n    cron: \"@every 1s\"\n    timeZone: Europe/Berlin\n"
	h := newHarness(t, prom, healthy, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", sched)})
	h.start()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, err := h.client.Runs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) >= 1 && runs[0].Phase == api.PhaseDone || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.stop()
	h.stop = nil
	st, _ := store.Open(h.cfg.DataDir)
	all, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || all[len(all)-1].Trigger != api.TriggerSchedule {
		t.Fatalf("no scheduled run recorded: %+v", all)
	}
	// Runs never overlap: each started after the previous finished.
	for i := 0; i+1 < len(all); i++ {
		newer, older := all[i], all[i+1]
		if older.FinishedAt == nil || newer.CreatedAt.Before(*older.FinishedAt) {
			t.Errorf("run %s started %s before run %s finished (%v)", newer.ID, newer.CreatedAt, older.ID, older.FinishedAt)
		}
	}
	skips, err := st.Skips()
	if err != nil {
		t.Fatal(err)
	}
	if len(skips) < 2 {
		t.Fatalf("a 4s run triggered every second must record skipped triggers, got %d", len(skips))
	}
	if !strings.Contains(skips[0].Reason, "already in progress") {
		t.Errorf("skip reason %q", skips[0].Reason)
	}
}

func TestIntegrationHaltAbortsRunsAndRevertsEverything(t *testing.T) {
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	h := newHarness(t, prom, healthy, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "60s", "")})
	h.start()
	ctx := context.Background()
	run, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := h.client.Run(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Phase == api.PhaseObserving {
			break
		}
		if time.Now().After(deadline) || r.Phase == api.PhaseDone {
			t.Fatalf("run never reached observing: %s %s", r.Phase, r.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ae *api.APIError
	if _, err := h.client.Halt(ctx, "c9"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("halt of an unknown cluster: %v, want 404", err)
	}
	res, err := h.client.Halt(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AbortedRuns) != 1 || res.AbortedRuns[0] != run.ID || len(res.Agents) != 2 {
		t.Fatalf("halt result %+v", res)
	}
	for _, a := range res.Agents {
		if a.Error != "" {
			t.Errorf("agent %s: %s", a.Node, a.Error)
		}
	}
	final := h.wait(run.ID, 30*time.Second)
	if final.Verdict != api.VerdictAborted {
		t.Errorf("verdict %s (%s), want aborted", final.Verdict, final.Reason)
	}
	for _, n := range h.nodes {
		if n.activeCount() != 0 {
			t.Errorf("node %s still has faults after halt", n.name)
		}
	}
}

func TestDaemonListsAgents(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	agents, err := h.client.Agents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].Node != "c1-n1" || agents[1].Node != "c1-n2" || !agents[0].Reachable || !agents[1].Reachable {
		t.Fatalf("agents %+v", agents)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
