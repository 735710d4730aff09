package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments/runner"
)

// errBusy means a run of the experiment is in progress.
var errBusy = errors.New("a run of this experiment is already in progress")

// registry holds the runs in progress: never two of one experiment.
type registry struct {
	mu     sync.Mutex
	active map[string]*runner.Runner // by run ID
	byExp  map[string]string         // experiment → active run ID
	ctx    context.Context           // runs' context; nil or done: not accepting
	wg     sync.WaitGroup
}

func (g *registry) init() {
	g.active = map[string]*runner.Runner{}
	g.byExp = map[string]string{}
}

func (g *registry) setContext(ctx context.Context) {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
}

// get returns the runner of a run in progress.
func (g *registry) get(id string) (*runner.Runner, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rn, ok := g.active[id]
	return rn, ok
}

// all returns the runs in progress by ID.
func (g *registry) all() map[string]*runner.Runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]*runner.Runner, len(g.active))
	for id, rn := range g.active {
		out[id] = rn
	}
	return out
}

func (g *registry) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.active)
}

// faultsActive counts faults injected and not yet reverted over all runs.
func (g *registry) faultsActive() int {
	n := 0
	for _, rn := range g.all() {
		n += rn.ActiveFaults()
	}
	return n
}

// wait waits for the runs in progress to end, at most timeout.
func (g *registry) wait(timeout time.Duration) bool { return waitGroupDone(&g.wg, timeout) }

// start launches a run in the background and returns its first record.
func (d *Daemon) start(name string, trigger api.Trigger, dryRun bool) (api.Run, error) {
	exp, ok := d.exps.get(name)
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", httpapi.Clip(name, 64))
	}
	g := &d.runs
	g.mu.Lock()
	if id, busy := g.byExp[name]; busy {
		g.mu.Unlock()
		return api.Run{}, httpapi.Errorf(http.StatusConflict, "%w (run %s)", errBusy, id)
	}
	runCtx := g.ctx
	if runCtx == nil || runCtx.Err() != nil {
		g.mu.Unlock()
		return api.Run{}, httpapi.Errorf(http.StatusServiceUnavailable, "%s", d.notLeading())
	}
	rec := api.Run{ID: newRunID(), Experiment: name, Trigger: trigger, DryRun: dryRun, CreatedAt: time.Now()}
	lg := d.lg.Named("runner")
	save := d.saver(lg)
	rn := runner.New(exp, rec, runner.Deps{Prober: d.prober, Inventory: d.inventory, Agents: d.fleet, Save: save, Recorder: d.recorder,
		Alerts: d.alerts, Silencer: d.silencer, Data: d.data},
		lg, runner.Options{Lease: d.cfg.lease()})
	first := rn.Record()
	save(first)
	g.active[rec.ID] = rn
	g.byExp[name] = rec.ID
	g.wg.Add(1)
	g.mu.Unlock()

	go func() {
		defer g.wg.Done()
		final := rn.Run(runCtx)
		if final.Verdict == api.VerdictError && runCtx.Err() != nil {
			final.Interrupted = true
			save(final)
		}
		d.metrics.finished(final)
		g.mu.Lock()
		delete(g.active, final.ID)
		delete(g.byExp, final.Experiment)
		g.mu.Unlock()
	}()
	return first, nil
}

// saver returns the save function of one run: records are written in the
// order the runner made them.
func (d *Daemon) saver(lg *zap.Logger) func(api.Run) {
	var mu sync.Mutex
	return func(r api.Run) {
		mu.Lock()
		defer mu.Unlock()
		if err := d.store.Save(r); err != nil {
			lg.Error("save run record", zap.String("run", r.ID), zap.Error(err))
		}
	}
}

// abort aborts a run in progress.
func (d *Daemon) abort(id, why string) (api.Run, error) {
	rn, live := d.runs.get(id)
	if !live {
		if rec, err := d.store.Get(id); err == nil {
			if rec.Phase != api.PhaseDone {
				return api.Run{}, httpapi.Errorf(http.StatusServiceUnavailable, "run %s is not run by this chaosd: %s", id, d.notLeading())
			}
			return api.Run{}, httpapi.Errorf(http.StatusConflict, "run %s already finished (%s)", id, rec.Verdict)
		}
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "run %q not found", httpapi.Clip(id, 64))
	}
	rn.Abort(why)
	return rn.Record(), nil
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "r-" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
