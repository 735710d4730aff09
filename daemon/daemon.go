// Package daemon is chaosd: it loads experiments, runs them on request and
// on cron schedules, keeps run records across restarts, talks to the node
// agents and serves the HTTP API (daemon/httpapi), /metrics and /healthz.
//
// The files follow the components: daemon.go wires them and owns the HTTP
// lifetime; runs.go is the registry of runs in progress; schedule.go the
// cron triggers; recover.go the restart recovery; agents.go the fleet of
// node agents (listing, halt, and the runner's Agents); metrics.go the
// Prometheus metrics; service.go the API's Service; config.go the
// configuration. Target resolution is package targets; a run itself is
// package experiments/runner.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/library"
	"github.com/chaosd/chaosd/experiments/runner"
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
	store *store.Store
	token string

	prober    runner.Prober
	inventory runner.Inventory
	fleet     *fleet
	exps      map[string]*experiments.Experiment

	runs    registry
	sched   schedule
	metrics *metrics
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
	prober, err := prom.New(cfg.Prometheus.URL, prom.WithLogger(lg.Named("probes")))
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	fl, err := newFleet(cfg.Clusters, agentToken)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg: cfg, lg: lg, store: st, token: token, prober: prober,
		inventory: cfg.inventory(), fleet: fl,
		exps: map[string]*experiments.Experiment{},
	}
	for _, e := range exps {
		d.exps[e.Metadata.Name] = e
	}
	d.runs.init()
	d.metrics = newMetrics(d.exps, d.runs.count, d.runs.faultsActive)
	return d, nil
}

// Run serves until ctx ends, then stops the scheduler, lets every run in
// progress revert its faults, and returns.
func (d *Daemon) Run(ctx context.Context) error {
	// Runs get their own context: on shutdown they are cancelled and revert.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	d.runs.setContext(runCtx)

	d.recoverInterrupted(ctx)
	if err := d.startSchedules(); err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           httpapi.Handler(service{d}, httpapi.Options{Token: d.token, Metrics: d.metrics.handler()}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(d.lg.Named("http")),
	}
	listeners, err := d.listen()
	if err != nil {
		d.stopSchedules()
		return err
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
	d.stopSchedules()
	cancelRuns()
	if !d.runs.wait(shutdownRuns) {
		d.lg.Warn("runs did not finish reverting in time; agents revert on lease expiry", zap.Duration("waited", shutdownRuns))
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

// listen opens the unix socket (mode 0600) and the optional TCP listener.
func (d *Daemon) listen() ([]net.Listener, error) {
	_ = os.Remove(d.cfg.Listen.Socket)
	ul, err := net.Listen("unix", d.cfg.Listen.Socket)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", d.cfg.Listen.Socket, err)
	}
	if err := os.Chmod(d.cfg.Listen.Socket, 0o600); err != nil {
		ul.Close()
		return nil, fmt.Errorf("chmod %s: %w", d.cfg.Listen.Socket, err)
	}
	listeners := []net.Listener{ul}
	if d.cfg.Listen.TCP != "" {
		tl, err := net.Listen("tcp", d.cfg.Listen.TCP)
		if err != nil {
			ul.Close()
			return nil, fmt.Errorf("listen on %s: %w", d.cfg.Listen.TCP, err)
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
