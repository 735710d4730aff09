// Package daemon is chaosd: it loads experiments, runs them on request and
// on cron schedules, keeps run records across restarts, talks to the node
// agents and serves the HTTP API, /metrics and /healthz.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/library"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/probes"
)

// Daemon is one chaosd instance.
type Daemon struct {
	cfg   *Config
	lg    *zap.Logger
	store *store.Store
	token string

	prober   runner.Prober
	agents   map[string][]agentHandle // by cluster
	services map[string][]Service     // by cluster

	exps map[string]*experiments.Experiment

	mu      sync.Mutex
	active  map[string]*runner.Runner // by run ID
	byExp   map[string]string         // experiment → active run ID
	wg      sync.WaitGroup
	runCtx  context.Context
	cron    *cron.Cron
	entries map[string]cron.EntryID

	reg     *prometheus.Registry
	mRuns   *prometheus.CounterVec
	mRTO    *prometheus.GaugeVec
	mTarget *prometheus.GaugeVec
	mSkips  *prometheus.CounterVec
	mActive prometheus.GaugeFunc
	mFaults prometheus.GaugeFunc
}

type agentHandle struct {
	node   string
	labels map[string]string
	client *agentclient.Client
}

// New builds a daemon from its configuration. It reads tokens and
// experiments but starts nothing.
func New(cfg *Config, lg *zap.Logger) (*Daemon, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	agentToken, err := readToken(cfg.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("agent token: %w", err)
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var exps []*experiments.Experiment
	if cfg.ExperimentsDir != "" {
		exps, err = experiments.LoadDir(cfg.ExperimentsDir)
	} else {
		exps, err = library.Load()
	}
	if err != nil {
		return nil, fmt.Errorf("load experiments: %w", err)
	}
	prober, err := probes.New(cfg.Prometheus.URL, probes.WithLogger(lg.Named("probes")))
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	d := &Daemon{
		cfg: cfg, lg: lg, store: st, token: token, prober: prober,
		agents: map[string][]agentHandle{}, services: map[string][]Service{}, exps: map[string]*experiments.Experiment{},
		active: map[string]*runner.Runner{}, byExp: map[string]string{},
		entries: map[string]cron.EntryID{},
	}
	for _, e := range exps {
		d.exps[e.Metadata.Name] = e
	}
	for _, cl := range cfg.Clusters {
		d.services[cl.Name] = cl.Services
		for _, a := range cl.Agents {
			c, err := agentclient.NewClient(a.Endpoint, agentToken)
			if err != nil {
				return nil, fmt.Errorf("agent %s/%s: %w", cl.Name, a.Node, err)
			}
			d.agents[cl.Name] = append(d.agents[cl.Name], agentHandle{node: a.Node, labels: a.Labels, client: c})
		}
	}
	d.initMetrics()
	return d, nil
}

func (d *Daemon) initMetrics() {
	d.reg = prometheus.NewRegistry()
	d.mRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chaosd_runs_total", Help: "Finished experiment runs by verdict.",
	}, []string{"experiment", "verdict"})
	d.mRTO = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chaosd_last_measured_rto_seconds", Help: "Measured RTO of the last run of each experiment that recovered.",
	}, []string{"experiment"})
	d.mTarget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chaosd_rto_target_seconds", Help: "RTO target of each experiment.",
	}, []string{"experiment"})
	d.mSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chaosd_schedule_skipped_total", Help: "Schedule triggers skipped because a run of the same experiment was still going.",
	}, []string{"experiment"})
	d.mActive = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chaosd_runs_active", Help: "Runs in progress.",
	}, func() float64 { d.mu.Lock(); defer d.mu.Unlock(); return float64(len(d.active)) })
	d.mFaults = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chaosd_faults_active", Help: "Faults injected and not yet reverted, over all runs in progress.",
	}, d.faultsActive)
	d.reg.MustRegister(d.mRuns, d.mRTO, d.mTarget, d.mSkips, d.mActive, d.mFaults)
	// Counters exist from the start at 0, so increase() and alerts see
	// the first run of each verdict too.
	for name, e := range d.exps {
		for _, v := range []string{api.VerdictPass, api.VerdictFail, api.VerdictAborted, api.VerdictError} {
			d.mRuns.WithLabelValues(name, v)
		}
		d.mSkips.WithLabelValues(name)
		d.mTarget.WithLabelValues(name).Set(e.Spec.Recovery.RTO.D().Seconds())
	}
}

func (d *Daemon) faultsActive() float64 {
	d.mu.Lock()
	rs := make([]*runner.Runner, 0, len(d.active))
	for _, r := range d.active {
		rs = append(rs, r)
	}
	d.mu.Unlock()
	n := 0
	for _, r := range rs {
		for _, f := range r.Record().Faults {
			if f.InjectedAt != nil && f.RevertedAt == nil {
				n++
			}
		}
	}
	return float64(n)
}

// Run serves until ctx ends, then stops the scheduler, lets every run in
// progress revert its faults, and returns.
func (d *Daemon) Run(ctx context.Context) error {
	// Runs get their own context: on shutdown they are cancelled and revert.
	runCtx, cancelRuns := context.WithCancel(context.Background())
	defer cancelRuns()
	d.runCtx = runCtx

	d.recoverInterrupted()
	if err := d.startSchedules(); err != nil {
		return err
	}

	mux := d.routes()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	_ = os.Remove(d.cfg.Listen.Socket)
	ul, err := net.Listen("unix", d.cfg.Listen.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.cfg.Listen.Socket, err)
	}
	if err := os.Chmod(d.cfg.Listen.Socket, 0o600); err != nil {
		ul.Close()
		return fmt.Errorf("chmod %s: %w", d.cfg.Listen.Socket, err)
	}
	listeners := []net.Listener{ul}
	if d.cfg.Listen.TCP != "" {
		tl, err := net.Listen("tcp", d.cfg.Listen.TCP)
		if err != nil {
			ul.Close()
			return fmt.Errorf("listen on %s: %w", d.cfg.Listen.TCP, err)
		}
		listeners = append(listeners, tl)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	d.lg.Info("chaosd serving", zap.String("socket", d.cfg.Listen.Socket), zap.String("tcp", d.cfg.Listen.TCP),
		zap.Int("experiments", len(d.exps)))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	d.lg.Info("chaosd stopping")
	if d.cron != nil {
		<-d.cron.Stop().Done()
	}
	cancelRuns()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		d.lg.Warn("runs did not finish reverting within 60s; agents revert on lease expiry")
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shCtx)
	_ = os.Remove(d.cfg.Listen.Socket)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// recoverInterrupted marks runs that were in progress when chaosd last
// stopped as interrupted and reverts whatever faults they may have left.
func (d *Daemon) recoverInterrupted() {
	runs, err := d.store.List()
	if err != nil {
		d.lg.Warn("some run records could not be read", zap.Error(err))
	}
	for _, r := range runs {
		if r.Phase == api.PhaseDone {
			if r.Verdict != "" {
				d.mRuns.WithLabelValues(r.Experiment, r.Verdict).Inc()
			}
			continue
		}
		phase := r.Phase
		for i := range r.Faults {
			f := &r.Faults[i]
			if f.RevertedAt != nil {
				continue
			}
			c := d.agentFor(f.Cluster, f.Node)
			if c == nil {
				f.Error = "no agent configured for this node any more: cannot confirm revert"
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := c.Revert(ctx, f.AgentFaultID)
			cancel()
			var ae *agentapi.APIError
			switch {
			case err == nil:
				at := st.RevertedAt
				if at.IsZero() {
					at = time.Now()
				}
				f.RevertedAt, f.RevertReason, f.Verified = &at, st.RevertReason, st.Verified
			case errors.As(err, &ae) && ae.Status == 404:
				now := time.Now()
				f.RevertedAt, f.RevertReason, f.Verified = &now, "unknown to agent", true
			default:
				f.Error = "revert after restart: " + err.Error()
			}
		}
		now := time.Now()
		r.Phase = api.PhaseDone
		r.Verdict = api.VerdictError
		r.Interrupted = true
		r.Reason = fmt.Sprintf("interrupted: chaosd stopped during phase %s; faults reverted at restart", phase)
		r.FinishedAt = &now
		r.Current = nil
		r.Events = append(r.Events, api.Event{Time: now, Phase: api.PhaseDone, Message: r.Reason})
		if err := d.store.Save(r); err != nil {
			d.lg.Error("save interrupted run", zap.String("run", r.ID), zap.Error(err))
		}
		d.mRuns.WithLabelValues(r.Experiment, r.Verdict).Inc()
		d.lg.Warn("run was interrupted by a restart", zap.String("run", r.ID), zap.String("phase", phase))
	}
}

func (d *Daemon) agentFor(cluster, node string) *agentclient.Client {
	for _, a := range d.agents[cluster] {
		if a.node == node {
			return a.client
		}
	}
	return nil
}

// agentInfos asks every configured agent for its status, in parallel.
func (d *Daemon) agentInfos(ctx context.Context) []api.AgentInfo {
	out := []api.AgentInfo{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for cl, hs := range d.agents {
		for _, h := range hs {
			wg.Add(1)
			go func(cl string, h agentHandle) {
				defer wg.Done()
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
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
			}(cl, h)
		}
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Node < out[j].Node
	})
	return out
}

// halt aborts every run in progress and asks every agent (of cluster, or
// all) to revert everything it holds, in parallel.
func (d *Daemon) halt(ctx context.Context, cluster string) api.HaltResult {
	res := api.HaltResult{AbortedRuns: []string{}, Agents: []api.HaltedNode{}}
	d.mu.Lock()
	for id, rn := range d.active {
		rn.Abort("halt")
		res.AbortedRuns = append(res.AbortedRuns, id)
	}
	d.mu.Unlock()
	sort.Strings(res.AbortedRuns)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for cl, hs := range d.agents {
		if cluster != "" && cl != cluster {
			continue
		}
		for _, h := range hs {
			wg.Add(1)
			go func(cl string, h agentHandle) {
				defer wg.Done()
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				sts, err := h.client.Halt(hctx)
				n := api.HaltedNode{Cluster: cl, Node: h.node, Reverted: len(sts)}
				if err != nil {
					n.Error = err.Error()
				}
				mu.Lock()
				res.Agents = append(res.Agents, n)
				mu.Unlock()
			}(cl, h)
		}
	}
	wg.Wait()
	sort.Slice(res.Agents, func(i, j int) bool {
		if res.Agents[i].Cluster != res.Agents[j].Cluster {
			return res.Agents[i].Cluster < res.Agents[j].Cluster
		}
		return res.Agents[i].Node < res.Agents[j].Node
	})
	d.lg.Warn("halt", zap.String("cluster", cluster), zap.Strings("abortedRuns", res.AbortedRuns), zap.Int("agents", len(res.Agents)))
	return res
}

// errBusy means a run of the experiment is in progress.
var errBusy = errors.New("a run of this experiment is already in progress")

// errUnknown means no experiment has that name.
var errUnknown = errors.New("unknown experiment")

// start launches a run in the background and returns its first record.
func (d *Daemon) start(name, trigger string, dryRun bool) (api.Run, error) {
	exp, ok := d.exps[name]
	if !ok {
		return api.Run{}, fmt.Errorf("%w %q", errUnknown, name)
	}
	d.mu.Lock()
	if id, busy := d.byExp[name]; busy {
		d.mu.Unlock()
		return api.Run{}, fmt.Errorf("%w (run %s)", errBusy, id)
	}
	if d.runCtx == nil || d.runCtx.Err() != nil {
		d.mu.Unlock()
		return api.Run{}, errors.New("chaosd is shutting down")
	}
	rec := api.Run{ID: newRunID(), Experiment: name, Trigger: trigger, DryRun: dryRun, CreatedAt: time.Now()}
	lg := d.lg.Named("runner")
	var saveMu sync.Mutex
	save := func(r api.Run) {
		saveMu.Lock()
		defer saveMu.Unlock()
		if err := d.store.Save(r); err != nil {
			lg.Error("save run record", zap.String("run", r.ID), zap.Error(err))
		}
	}
	rn := runner.New(exp, rec, d.prober, resolver{d}, save, lg, runner.Options{Lease: d.cfg.lease()})
	first := rn.Record()
	save(first)
	d.active[rec.ID] = rn
	d.byExp[name] = rec.ID
	d.wg.Add(1)
	d.mu.Unlock()

	go func() {
		defer d.wg.Done()
		final := rn.Run(d.runCtx)
		if final.Verdict == api.VerdictError && d.runCtx.Err() != nil {
			final.Interrupted = true
			save(final)
		}
		d.mRuns.WithLabelValues(final.Experiment, final.Verdict).Inc()
		if final.RTO.MeasuredSeconds != nil {
			d.mRTO.WithLabelValues(final.Experiment).Set(*final.RTO.MeasuredSeconds)
		}
		d.mu.Lock()
		delete(d.active, final.ID)
		delete(d.byExp, final.Experiment)
		d.mu.Unlock()
	}()
	return first, nil
}

func (d *Daemon) startSchedules() error {
	d.cron = cron.New(cron.WithLogger(cron.DiscardLogger))
	for name, e := range d.exps {
		if e.Spec.Schedule == nil {
			continue
		}
		tz := e.Spec.Schedule.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		name := name
		id, err := d.cron.AddFunc("CRON_TZ="+tz+" "+e.Spec.Schedule.Cron, func() { d.trigger(name) })
		if err != nil {
			return fmt.Errorf("schedule of %s: %w", name, err)
		}
		d.entries[name] = id
	}
	d.cron.Start()
	return nil
}

// trigger is called by the scheduler. A trigger that finds a run of the same
// experiment still going is recorded as skipped, never silently dropped.
func (d *Daemon) trigger(name string) {
	_, err := d.start(name, api.TriggerSchedule, false)
	if err == nil {
		return
	}
	d.mSkips.WithLabelValues(name).Inc()
	d.lg.Warn("scheduled run skipped", zap.String("experiment", name), zap.Error(err))
	if serr := d.store.AddSkip(store.Skip{Time: time.Now(), Experiment: name, Reason: err.Error()}); serr != nil {
		d.lg.Error("record skipped trigger", zap.Error(serr))
	}
}

func (d *Daemon) experimentInfos() []api.ExperimentInfo {
	var out []api.ExperimentInfo
	for name, e := range d.exps {
		info := api.ExperimentInfo{Name: name, Description: e.Metadata.Description, Source: e.Source}
		if s := e.Spec.Schedule; s != nil {
			info.Schedule, info.TimeZone = s.Cron, s.TimeZone
			if id, ok := d.entries[name]; ok && d.cron != nil {
				next := d.cron.Entry(id).Next
				if !next.IsZero() {
					info.NextRun = &next
				}
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "r-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// resolver resolves spec targets against the configured agents.
type resolver struct{ d *Daemon }

func (r resolver) Resolve(t experiments.Target) ([]runner.Node, error) {
	hs, ok := r.d.agents[t.Cluster]
	if !ok {
		return nil, fmt.Errorf("cluster %q has no agents configured", t.Cluster)
	}
	want := map[string]bool{}
	for _, n := range t.Nodes {
		want[n] = true
	}
	known := map[string]bool{}
	nodes := map[string]runner.Node{} // eligible nodes by name
	var sel []runner.Node
	for _, h := range hs {
		known[h.node] = true
		if len(want) > 0 && !want[h.node] {
			continue
		}
		if !labelsMatch(h.labels, t.Selector) {
			continue
		}
		n := runner.Node{Cluster: t.Cluster, Name: h.node, Agent: h.client}
		nodes[h.node] = n
		sel = append(sel, n)
	}
	for _, n := range t.Nodes {
		if !known[n] {
			return nil, fmt.Errorf("node %q is not in cluster %s", n, t.Cluster)
		}
	}
	if t.Service == "" {
		return pick(sel, t.Mode), nil
	}
	var svc *Service
	for i, s := range r.d.services[t.Cluster] {
		if s.Name == t.Service {
			svc = &r.d.services[t.Cluster][i]
		}
	}
	if svc == nil {
		return nil, fmt.Errorf("service %q is not known in cluster %s", t.Service, t.Cluster)
	}
	var insts []runner.Node
	for _, in := range svc.Instances {
		n, ok := nodes[in.Node]
		if !ok {
			continue
		}
		n.Instance = &runner.Instance{Service: svc.Name, Name: in.Name, URL: in.URL, Cgroup: in.Cgroup}
		insts = append(insts, n)
	}
	return pick(insts, t.Mode), nil
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// pick applies the blast radius, choosing nodes at random.
func pick(nodes []runner.Node, m experiments.BlastRadius) []runner.Node {
	n := len(nodes)
	switch m.Kind {
	case experiments.BlastOne:
		n = min(1, n)
	case experiments.BlastFixed:
		n = min(m.N, n)
	case experiments.BlastPercent:
		n = min(int(math.Ceil(float64(n)*m.Percent/100)), n)
	default:
		return nodes
	}
	mrand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	out := nodes[:n]
	sort.Slice(out, func(i, j int) bool { return nodeKey(out[i]) < nodeKey(out[j]) })
	return out
}

func nodeKey(n runner.Node) string {
	if n.Instance != nil {
		return n.Name + "/" + n.Instance.Name
	}
	return n.Name
}
