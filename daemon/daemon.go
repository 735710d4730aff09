// Package daemon is chaosd: it loads experiments, runs them on request and
// on cron schedules, keeps run records across restarts, talks to the node
// agents and serves the HTTP API (daemon/httpapi), /metrics and /healthz.
//
// The files follow the components: daemon.go wires them and owns the HTTP
// lifetime; runs.go is the registry of runs in progress; suites.go the
// suites (game days) and their runs; schedule.go the cron triggers;
// recover.go the restart recovery; agents.go the fleet of node agents
// (listing, halt, and the runner's Agents); metrics.go the Prometheus
// metrics; service.go the API's Service; leader.go what the leader does
// and what the other replicas answer; catalog.go the experiments;
// kube.go, kubeexp.go and kubesuite.go the Kubernetes mode (inventory,
// Experiment and Suite objects, Events, the Lease); config.go the
// configuration.
// Target resolution is package targets; a run itself is
// package experiments/runner.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/library"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/experiments/scheduler"
	"github.com/chaosd/chaosd/internal/serve"
	"github.com/chaosd/chaosd/probes/alertmanager"
	"github.com/chaosd/chaosd/probes/prom"
)

// Timeouts of the shutdown, on fresh contexts (the caller's has ended).
const (
	shutdownRuns = 60 * time.Second
	shutdownHTTP = 5 * time.Second
)

// Daemon is one chaosd instance.
type Daemon struct {
	cfg   *Config
	lg    *zap.Logger
	store runStore
	// schedules keeps the schedules' state and the skip log: the data
	// directory (standalone) or a ConfigMap (Kubernetes).
	schedules scheduleStore
	auth      httpapi.Authorizer
	tls       *tls.Config // of the TCP listener; nil: none or plain text

	prober    runner.Prober
	alerts    runner.AlertHistory
	silencer  runner.Silencer // nil: no Alertmanager configured
	data      runner.DataClient
	inventory runner.Inventory
	fleet     fleet
	recorder  runner.Recorder // nil: no Kubernetes Events
	exps      *catalog
	kube      *kubeMode // nil: standalone

	runs    registry
	sched   schedule
	metrics *metrics
	leader  leadership

	// suites and their runs in progress (suites.go); suite run records
	// are files (standalone) or SuiteRun objects (Kubernetes).
	suites     suites
	suiteStore suiteRunStore
}

// runStore keeps run records: files (standalone) or ExperimentRun
// objects (Kubernetes).
type runStore interface {
	Save(api.Run) error
	Get(id string) (api.Run, error)
	List() ([]api.Run, error)
}

// scheduleStore keeps the schedules' state and the skipped triggers
// where the scheduler of whichever chaosd leads finds them: the data
// directory's files (store.Store) standalone, a ConfigMap
// (store.KubeSchedules) in Kubernetes mode, where the data directory is
// scratch space and any replica may lead next.
type scheduleStore interface {
	scheduler.Store
	AddSkip(api.SkipInfo) error
	// Skips returns the skips kept, oldest first.
	Skips() ([]api.SkipInfo, error)
}

// New builds a daemon from its configuration. It reads tokens and
// experiments and, in Kubernetes mode, connects to the API server, but
// starts nothing.
func New(cfg *Config, lg *zap.Logger) (*Daemon, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	tokens, err := cfg.staticTokens()
	if err != nil {
		return nil, err
	}
	agentToken, err := readToken(cfg.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("agent token: %w", err)
	}
	agentTLS, err := cfg.agentTLSConfig()
	if err != nil {
		return nil, err
	}
	listenTLS, err := cfg.listenTLSConfig()
	if err != nil {
		return nil, err
	}
	fileStore, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	prober, err := prom.New(cfg.Prometheus.URL, prom.WithLogger(lg.Named("probes")))
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	d := &Daemon{cfg: cfg, lg: lg, store: fileStore, schedules: fileStore, suiteStore: fileStore, auth: tokens, tls: listenTLS, prober: prober, alerts: prober, data: newDataClient()}
	if cfg.Alertmanager.URL != "" {
		am, err := alertmanager.New(cfg.Alertmanager.URL, nil)
		if err != nil {
			return nil, err
		}
		d.silencer = am
	}
	d.runs.init()
	d.metrics = newMetrics(d.runs.count, d.runs.faultsActive)
	if cfg.Kubernetes != nil {
		km, err := newKubeMode(cfg.Kubernetes, agentToken, agentTLS, lg.Named("kube"))
		if err != nil {
			return nil, err
		}
		d.schedules = km.sched
		if !cfg.Kubernetes.Auth.Disabled {
			d.auth = httpapi.Chain{tokens, newKubeAuth(km.client, cfg.Kubernetes.Namespace, lg.Named("auth"))}
		}
		d.kube, d.store, d.suiteStore, d.inventory, d.fleet, d.recorder = km, km.store, km.suiteRuns, km.inv, km.fleet(), km
		d.exps = newCatalog(nil)
		d.suites.init(nil) // filled by the watch of Suite objects (kubesuite.go)
	} else {
		var (
			exps   []*experiments.Experiment
			suites []*experiments.Suite
		)
		if cfg.ExperimentsDir != "" {
			var lib *experiments.Library
			if lib, err = experiments.LoadLibraryDir(cfg.ExperimentsDir); err == nil {
				exps, suites = lib.Experiments, lib.Suites
			}
		} else {
			exps, err = library.Load()
		}
		if err != nil {
			return nil, fmt.Errorf("load experiments: %w", err)
		}
		d.suites.init(suites)
		fl, err := newStaticFleet(cfg.Clusters, agentToken, agentTLS)
		if err != nil {
			return nil, err
		}
		d.exps, d.inventory, d.fleet = newCatalog(exps), cfg.inventory(), fl
	}
	if err := d.initSchedules(nil); err != nil {
		return nil, err
	}
	for _, e := range d.exps.all() {
		d.metrics.experiment(e)
	}
	d.exps.changed = func() {
		for _, e := range d.exps.all() {
			d.metrics.experiment(e)
		}
		d.syncSchedules()
		if d.kube != nil {
			d.kube.experimentsChanged()
		}
	}
	return d, nil
}

// Run serves until ctx ends. While this chaosd leads (always, without
// leader election) it recovers interrupted runs, runs schedules and
// accepts runs; when ctx ends (or leadership is lost) the scheduler stops
// and every run in progress reverts its faults before Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	// One chaosd per data directory: a second one stops here, before it
	// touches the live one's socket or records.
	unlock, err := store.Lock(d.cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if d.kube != nil {
		if err := d.kube.start(ctx, d.exps, &d.suites, d.syncSchedules); err != nil {
			return err
		}
		defer d.kube.stop()
	}
	srv := serve.Server(httpapi.Handler(service{d}, httpapi.Options{Auth: d.auth, Metrics: d.metrics.handler()}),
		serve.DefaultLimits, zap.NewStdLog(d.lg.Named("http")))
	leadCtx, stopLeading := context.WithCancel(ctx)
	leadDone := make(chan error, 1)
	if d.kube != nil && !d.cfg.Kubernetes.LeaderElection.Disabled {
		go func() {
			leadDone <- d.kube.elect(leadCtx, &d.leader, func(ctx context.Context) {
				d.recoverInterrupted(ctx)
				d.lead(ctx, nil)
			})
		}()
	} else {
		// The only chaosd: interrupted runs are settled before the API
		// answers, so no client sees a stale "in progress".
		d.recoverInterrupted(ctx)
		d.leader.set(true, "this chaosd")
		// Runs are accepted before the API answers: a client that sees the
		// socket can start one at once.
		ready := make(chan struct{})
		go func() { d.lead(leadCtx, ready); leadDone <- nil }()
		select {
		case <-ready:
		case <-leadCtx.Done():
		}
	}

	listeners, err := d.listen()
	if err != nil {
		stopLeading()
		<-leadDone
		return err
	}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}
	d.lg.Info("chaosd serving", zap.String("socket", d.cfg.Listen.Socket), zap.String("tcp", d.cfg.Listen.TCP),
		zap.Int("experiments", d.exps.len()), zap.Bool("kubernetes", d.kube != nil))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	case serveErr = <-leadDone:
		// Leadership lost: stop serving so a fresh start rejoins the
		// election with a clean state.
		if serveErr == nil {
			serveErr = errors.New("lost the leader election")
		}
	}
	d.lg.Info("chaosd stopping")
	stopLeading()
	select {
	case <-leadDone:
	case <-time.After(shutdownRuns + 5*time.Second):
		d.lg.Warn("leadership did not end in time")
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownHTTP)
	defer cancel()
	_ = srv.Shutdown(shCtx)
	_ = os.Remove(d.cfg.Listen.Socket)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// listen opens the unix socket (mode 0600) and the optional TCP listener
// (TLS, unless plain text on purpose), each with serve's connection cap
// (under the TLS layer).
func (d *Daemon) listen() ([]net.Listener, error) {
	_ = os.Remove(d.cfg.Listen.Socket)
	ul, err := serve.Listen("unix", d.cfg.Listen.Socket, serve.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(d.cfg.Listen.Socket, 0o600); err != nil {
		ul.Close()
		return nil, fmt.Errorf("chmod %s: %w", d.cfg.Listen.Socket, err)
	}
	listeners := []net.Listener{ul}
	if d.cfg.Listen.TCP != "" {
		tl, err := serve.Listen("tcp", d.cfg.Listen.TCP, serve.DefaultLimits)
		if err != nil {
			ul.Close()
			return nil, err
		}
		if d.tls != nil {
			tl = tls.NewListener(tl, d.tls)
		} else {
			d.lg.Warn("API and /metrics served over TCP in PLAIN TEXT (listen.insecurePlaintext): tokens cross the network unencrypted", zap.String("tcp", d.cfg.Listen.TCP))
		}
		listeners = append(listeners, tl)
	}
	return listeners, nil
}

// waitGroupDone waits for wg at most timeout and reports whether it ended.
func waitGroupDone(wg *sync.WaitGroup, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
