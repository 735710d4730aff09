package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/runner"
)

// errBusy means a run of the experiment is in progress.
var errBusy = errors.New("a run of this experiment is already in progress")

// registry holds the runs in progress: never two of one experiment.
type registry struct {
	mu     sync.Mutex
	active map[string]*runner.Runner // by run ID
	byExp  map[string]string         // experiment → active run ID
	// done holds a channel per run in progress, closed once its final
	// record is saved and it left active (suites wait on it).
	done map[string]chan struct{}
	// unsaved holds the last record of runs whose record could not be
	// saved (the data directory became read-only or full): GET serves it
	// from here, so a client never loses a run, until a save succeeds.
	unsaved map[string]api.Run
	ctx     context.Context // runs' context; nil or done: not accepting
	wg      sync.WaitGroup
}

func (g *registry) init() {
	g.active = map[string]*runner.Runner{}
	g.byExp = map[string]string{}
	g.done = map[string]chan struct{}{}
	g.unsaved = map[string]api.Run{}
}

// setUnsaved keeps (or, once saved, drops) a run's record in memory.
func (g *registry) setUnsaved(r api.Run, saved bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if saved {
		delete(g.unsaved, r.ID)
		return
	}
	g.unsaved[r.ID] = r
}

// getUnsaved returns the in-memory record of a run that could not be saved.
func (g *registry) getUnsaved(id string) (api.Run, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.unsaved[id]
	return r, ok
}

// allUnsaved returns the records that could not be saved.
func (g *registry) allUnsaved() []api.Run {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]api.Run, 0, len(g.unsaved))
	for _, r := range g.unsaved {
		out = append(out, r)
	}
	return out
}

func (g *registry) setContext(ctx context.Context) {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
}

// doneChan returns the channel closed when the run in progress id ends
// (nil when it is not in progress).
func (g *registry) doneChan(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done[id]
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

// start launches a run of a library experiment in the background and
// returns its first record.
func (d *Daemon) start(name string, trigger api.Trigger, dryRun bool) (api.Run, error) {
	return d.startRun(name, runOptions{trigger: trigger, dryRun: dryRun})
}

// runOptions say how a run was asked for; they go into its record.
type runOptions struct {
	trigger api.Trigger
	dryRun  bool
	// scheduledAt is the schedule trigger; missedPolicy the policy that
	// started a missed one (schedule.go).
	scheduledAt  *time.Time
	missedPolicy string
	// forcedFreeze is the freeze window a run on request was forced through.
	forcedFreeze string
	// suiteRun is the suite run the run is part of.
	suiteRun string
}

// startRun is start with every option.
func (d *Daemon) startRun(name string, o runOptions) (api.Run, error) {
	trigger, dryRun := o.trigger, o.dryRun
	exp, ok := d.exps.get(name)
	if !ok {
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", httpapi.Clip(name, 64))
	}
	return d.launch(exp, api.Run{ID: newRunID(), Experiment: name, Trigger: trigger, DryRun: dryRun, CreatedAt: time.Now(),
		ScheduledAt: o.scheduledAt, MissedPolicy: o.missedPolicy, ForcedFreeze: o.forcedFreeze, SuiteRun: o.suiteRun})
}

// startAdHoc launches a run of an experiment that came with the request
// (validated by the loader already); its record keeps the spec. Its name
// must not be a library experiment's: runs of two different experiments
// under one name could not be told apart in lists, metrics and reports.
// Freeze windows hold for it as for a run on request of the library
// (the config's and its own spec's).
func (d *Daemon) startAdHoc(exp *experiments.Experiment, req api.StartRequest) (api.Run, error) {
	name := exp.Metadata.Name
	if _, clash := d.exps.get(name); clash {
		return api.Run{}, httpapi.Errorf(http.StatusUnprocessableEntity,
			"metadata.name: %q is an experiment of chaosd's library; rename the ad hoc experiment, or run the library's with 'chaosctl run %s'", name, name)
	}
	o := runOptions{trigger: api.TriggerManual, dryRun: req.DryRun}
	if err := d.freezeGate(exp, req, &o); err != nil {
		return api.Run{}, err
	}
	adHoc := api.AdHoc{File: req.File, Spec: req.Spec}
	sum := sha256.Sum256([]byte(adHoc.Spec))
	adHoc.SHA256 = hex.EncodeToString(sum[:])
	return d.launch(exp, api.Run{ID: newRunID(), Experiment: name, Trigger: o.trigger, DryRun: o.dryRun, AdHoc: &adHoc,
		ForcedFreeze: o.forcedFreeze, CreatedAt: time.Now()})
}

// launch starts the run rec of exp in the background and returns its
// first record.
func (d *Daemon) launch(exp *experiments.Experiment, rec api.Run) (api.Run, error) {
	name := rec.Experiment
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
	lg := d.lg.Named("runner")
	var rn *runner.Runner
	save := d.saver(lg, func(why string) { rn.Fail(why) })
	rn = runner.New(exp, rec, runner.Deps{Prober: d.prober, Inventory: d.inventory, Agents: d.fleet, Save: save, Recorder: d.recorder,
		Alerts: d.alerts, Silencer: d.silencer, Data: d.data},
		lg, runner.Options{Lease: d.cfg.lease(), FanOut: d.cfg.FanOut})
	first := rn.Record()
	// The first record is on disk (fsynced) before anything can be
	// injected: a run chaosd cannot record is never started.
	if err := d.store.Save(first); err != nil {
		g.mu.Unlock()
		lg.Error("save first run record; run not started", zap.String("run", rec.ID), zap.Error(err))
		return api.Run{}, httpapi.Errorf(http.StatusInsufficientStorage,
			"the run record could not be written (%s); the run was not started and nothing was injected", storeCause(err))
	}
	g.active[rec.ID] = rn
	g.byExp[name] = rec.ID
	done := make(chan struct{})
	g.done[rec.ID] = done
	g.wg.Add(1)
	g.mu.Unlock()

	go func() {
		defer g.wg.Done()
		final := rn.Run(runCtx)
		if final.Verdict == api.VerdictError && runCtx.Err() != nil {
			final.Interrupted = true
			_ = save(final)
		}
		d.metrics.finished(final)
		g.mu.Lock()
		if _, unsaved := g.unsaved[final.ID]; unsaved {
			// The last save failed: the final record is served from
			// memory, and written when a later save succeeds.
			g.unsaved[final.ID] = final
		}
		delete(g.active, final.ID)
		delete(g.byExp, final.Experiment)
		delete(g.done, final.ID)
		g.mu.Unlock()
		close(done)
	}()
	return first, nil
}

// saver returns the save function of one run: the runner calls it from
// one goroutine at a time, in order (at most every SaveInterval, and at
// once where the run waits for its record to be on disk), and it returns
// once the store has the record. When a save fails (the data directory
// is read-only or full), fail is called once with the reason, so the run
// reverts its faults and ends in error, and the record is kept in memory
// (registry.unsaved) for GET; a later save that succeeds drops it.
func (d *Daemon) saver(lg *zap.Logger, fail func(why string)) func(api.Run) error {
	var mu sync.Mutex
	failed := false
	return func(r api.Run) error {
		mu.Lock()
		defer mu.Unlock()
		err := d.store.Save(r)
		d.runs.setUnsaved(r, err == nil)
		if err == nil {
			return nil
		}
		lg.Error("save run record", zap.String("run", r.ID), zap.Error(err))
		if !failed {
			failed = true
			fail(fmt.Sprintf("the run record could not be saved (%s): faults reverted and the run stopped; "+
				"this record is kept in chaosd's memory only", storeCause(err)))
		}
		return err
	}
}

// storeCause is what a store error says without the data directory's
// paths: the system's own words (read-only file system, no space left
// on device) when it has them.
func storeCause(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
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
