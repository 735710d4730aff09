package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/calendar"
	"github.com/chaosd/chaosd/experiments/scheduler"
)

// schedule runs the experiments' cron schedules (experiments/scheduler)
// while this chaosd leads. Schedule state (the last trigger handled,
// paused) and skipped triggers are kept in the daemon's scheduleStore:
// the data directory standalone, a ConfigMap in Kubernetes mode, so a
// new leader counts missed triggers from where the last one stopped.
type schedule struct {
	s       *scheduler.Scheduler
	windows []*calendar.Window // chaosd's configuration's freeze windows
	clock   scheduler.Clock

	mu     sync.Mutex
	cancel context.CancelFunc // nil: not running
	done   chan struct{}
}

// upcomingShown is how many fire times GET /v1/schedules shows.
const upcomingShown = 3

// skipsShown is how many skipped triggers per schedule it shows.
const skipsShown = 5

// initSchedules builds the scheduler (not yet running).
func (d *Daemon) initSchedules(clock scheduler.Clock) error {
	d.sched.windows = nil
	for _, w := range d.cfg.FreezeWindows {
		cw, err := w.Compile("chaosd config")
		if err != nil {
			return fmt.Errorf("freezeWindows: %w", err)
		}
		d.sched.windows = append(d.sched.windows, cw)
	}
	if clock == nil {
		clock = scheduler.RealClock{}
	}
	d.sched.clock = clock
	d.sched.s = scheduler.New(clock, d.schedules, scheduleStarter{d}, d.lg.Named("schedule"))
	return nil
}

// startSchedules starts the scheduler with every scheduled experiment;
// triggers missed since the last one handled are settled first.
func (d *Daemon) startSchedules(ctx context.Context) {
	d.sched.mu.Lock()
	defer d.sched.mu.Unlock()
	if d.sched.cancel != nil {
		return
	}
	d.syncSchedules()
	d.sched.s.Reset()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.sched.cancel, d.sched.done = cancel, done
	go func() { defer close(done); d.sched.s.Run(ctx) }()
}

// stopSchedules stops the scheduler and waits for the round in flight.
func (d *Daemon) stopSchedules() {
	d.sched.mu.Lock()
	cancel, done := d.sched.cancel, d.sched.done
	d.sched.cancel, d.sched.done = nil, nil
	d.sched.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// syncSchedules makes the scheduler's entries match the catalog
// (experiments come and go in Kubernetes mode). An experiment whose
// schedule cannot be read is logged and left out; validation checked it.
func (d *Daemon) syncSchedules() {
	if d.sched.s == nil {
		return
	}
	var entries []scheduler.Entry
	for _, e := range d.exps.all() {
		if e.Spec.Schedule == nil {
			continue
		}
		en, err := d.scheduleEntry(e)
		if err != nil {
			d.lg.Error("schedule not registered", zap.String("experiment", e.Metadata.Name), zap.Error(err))
			continue
		}
		entries = append(entries, en)
	}
	entries = append(entries, d.suiteScheduleEntries()...)
	d.sched.s.Set(entries)
}

// scheduleEntry is an experiment's schedule with every freeze window that
// holds for it: chaosd's, then the experiment's.
func (d *Daemon) scheduleEntry(e *experiments.Experiment) (scheduler.Entry, error) {
	sc := e.Spec.Schedule
	c, err := sc.Calendar()
	if err != nil {
		return scheduler.Entry{}, err
	}
	own, err := sc.Windows()
	if err != nil {
		return scheduler.Entry{}, err
	}
	return scheduler.Entry{
		Experiment: e.Metadata.Name, Cron: c,
		Windows:    append(append([]*calendar.Window{}, d.sched.windows...), own...),
		MissedRuns: sc.MissedRuns, StartingDeadline: sc.StartingDeadline.D(),
		Key: sc.Cron + "\x00" + sc.TimeZone,
	}, nil
}

// frozen returns the freeze window holding the experiment at now, or nil.
func (d *Daemon) frozen(exp *experiments.Experiment, now time.Time) *calendar.Freeze {
	windows := d.sched.windows
	if exp != nil && exp.Spec.Schedule != nil {
		if own, err := exp.Spec.Schedule.Windows(); err == nil {
			windows = append(append([]*calendar.Window{}, windows...), own...)
		}
	}
	return calendar.Frozen(windows, now)
}

// startRequested starts a run on request: inside a freeze window only
// with force (and the record names the window). A dry run injects
// nothing and is not refused.
func (d *Daemon) startRequested(req api.StartRequest) (api.Run, error) {
	o := runOptions{trigger: api.TriggerManual, dryRun: req.DryRun}
	exp, _ := d.exps.get(req.Experiment)
	if err := d.freezeGate(exp, req, &o); err != nil {
		return api.Run{}, err
	}
	return d.startRun(req.Experiment, o)
}

// freezeGate refuses a run on request of exp inside a freeze window (the
// config's, or exp's own), unless forced: then o names the window. A dry
// run injects nothing and passes.
func (d *Daemon) freezeGate(exp *experiments.Experiment, req api.StartRequest, o *runOptions) error {
	f := d.frozen(exp, d.sched.clock.Now())
	if f == nil || req.DryRun {
		return nil
	}
	name := req.Experiment
	if exp != nil {
		name = exp.Metadata.Name
	}
	if !req.Force {
		return httpapi.Errorf(http.StatusConflict,
			"%s is inside freeze window %q (%s) until %s: no run starts in a freeze; force it with --force (API: \"force\": true)",
			httpapi.Clip(name, 64), f.Window.Name, f.Window.Origin, f.Until.Format(time.RFC3339))
	}
	o.forcedFreeze = f.Window.Name
	d.lg.Warn("run forced through a freeze window", zap.String("experiment", name), zap.String("window", f.Window.Name))
	return nil
}

// scheduleStarter is the daemon as the scheduler's Starter.
type scheduleStarter struct{ d *Daemon }

// overlapError is errBusy as the scheduler's ErrOverlap.
type overlapError struct{ err error }

func (e overlapError) Error() string        { return e.err.Error() }
func (e overlapError) Is(target error) bool { return target == scheduler.ErrOverlap }
func (e overlapError) Unwrap() error        { return e.err }

func (s scheduleStarter) Start(t scheduler.Trigger) error {
	if suite, ok := strings.CutPrefix(t.Experiment, suiteSchedulePrefix); ok {
		return s.d.startScheduledSuite(suite, t)
	}
	at := t.At
	o := runOptions{trigger: api.TriggerSchedule, scheduledAt: &at}
	if t.Missed {
		o.missedPolicy = string(experiments.MissedRunsRunOnce)
	}
	_, err := s.d.startRun(t.Experiment, o)
	if errors.Is(err, errBusy) {
		return overlapError{err}
	}
	return err
}

// Skipped records a skipped trigger: the skip log, the metric, the log.
func (s scheduleStarter) Skipped(k api.SkipInfo) {
	s.d.metrics.skipped(k.Experiment)
	if err := s.d.schedules.AddSkip(k); err != nil {
		s.d.lg.Error("record skipped trigger", zap.Error(err))
	}
}

// setPaused pauses or resumes an experiment's schedule (404: unknown or
// not scheduled).
func (d *Daemon) setPaused(name string, paused bool) (api.ScheduleInfo, error) {
	e, ok := d.exps.get(name)
	if suite, isSuite := strings.CutPrefix(name, suiteSchedulePrefix); isSuite {
		// A suite's schedule: "suite/NAME".
		su, found := d.suites.get(suite)
		if !found || su.Spec.Schedule == nil {
			return api.ScheduleInfo{}, httpapi.Errorf(http.StatusNotFound, "no scheduled suite %q", httpapi.Clip(suite, 64))
		}
		e, ok = &experiments.Experiment{Spec: experiments.Spec{Schedule: su.Spec.Schedule}}, true
	}
	if !ok || e.Spec.Schedule == nil {
		what := "unknown experiment"
		if ok {
			what = "experiment without a schedule"
		}
		return api.ScheduleInfo{}, httpapi.Errorf(http.StatusNotFound, "%s %q", what, httpapi.Clip(name, 64))
	}
	// Any replica may pause: the state is shared (Kubernetes: the
	// ConfigMap), and the leader's scheduler reads the pause again
	// before it handles each trigger.
	if _, err := d.sched.s.SetPaused(name, paused, d.sched.clock.Now()); err != nil {
		d.lg.Error("save schedule state", zap.String("experiment", name), zap.Error(err))
		if d.kube != nil {
			// The API server did not take it: a retry may succeed.
			return api.ScheduleInfo{}, httpapi.Errorf(http.StatusServiceUnavailable, "the schedule state could not be written (%s)", err)
		}
		return api.ScheduleInfo{}, httpapi.Errorf(http.StatusInsufficientStorage, "the schedule state could not be written (%s)", storeCause(err))
	}
	d.lg.Info("schedule paused or resumed", zap.String("experiment", name), zap.Bool("paused", paused))
	infos, err := d.scheduleInfos(name)
	if err != nil || len(infos) == 0 {
		return api.ScheduleInfo{}, err
	}
	return infos[0], nil
}

// scheduleInfos describes every scheduled experiment (or only the one
// named): cron, zone, pause, next fire times with their freezes, the
// last run and the latest skipped triggers.
func (d *Daemon) scheduleInfos(only string) ([]api.ScheduleInfo, error) {
	now := d.sched.clock.Now()
	runs, err := d.store.List()
	if err != nil && len(runs) == 0 {
		d.lg.Warn("list runs for schedules", zap.Error(err))
	}
	lastRun := map[string]api.Run{}
	for _, r := range runs { // newest first
		if _, ok := lastRun[r.Experiment]; !ok {
			lastRun[r.Experiment] = r
		}
	}
	skips, err := d.schedules.Skips()
	if err != nil {
		d.lg.Warn("read skip log", zap.Error(err))
	}
	out := []api.ScheduleInfo{}
	for _, e := range d.exps.all() {
		sc := e.Spec.Schedule
		name := e.Metadata.Name
		if sc == nil || (only != "" && name != only) {
			continue
		}
		info := api.ScheduleInfo{Experiment: name, Cron: sc.Cron, TimeZone: sc.TimeZone,
			MissedRuns: string(sc.MissedRuns), Next: []api.FireTime{}, Skipped: []api.SkipInfo{}}
		if sc.MissedRuns == experiments.MissedRunsRunOnce {
			info.StartingDeadline = sc.StartingDeadline.String()
		}
		st, err := d.schedules.ScheduleState(name)
		if err != nil {
			d.lg.Warn("read schedule state", zap.String("experiment", name), zap.Error(err))
		}
		info.Paused, info.PausedAt, info.LastTrigger = st.Paused, st.PausedAt, st.LastTrigger
		if en, err := d.scheduleEntry(e); err == nil {
			for _, w := range en.Windows {
				info.FreezeWindows = append(info.FreezeWindows, w.Name)
			}
			for _, f := range scheduler.Upcoming(en, now, upcomingShown) {
				ft := api.FireTime{Time: f.At}
				if f.Frozen != nil {
					ft.Frozen = f.Frozen.Name
				}
				info.Next = append(info.Next, ft)
			}
		}
		if r, ok := lastRun[name]; ok {
			info.LastRun = &api.RunSummary{ID: r.ID, Trigger: r.Trigger, CreatedAt: r.CreatedAt, Phase: r.Phase, Verdict: r.Verdict}
		}
		for i := len(skips) - 1; i >= 0 && len(info.Skipped) < skipsShown; i-- {
			if skips[i].Experiment == name {
				info.Skipped = append(info.Skipped, skips[i])
			}
		}
		out = append(out, info)
	}
	out = append(out, d.suiteScheduleInfos(only, now, skips)...)
	sort.Slice(out, func(i, j int) bool { return out[i].Experiment < out[j].Experiment })
	return out, nil
}

// experimentInfos lists the experiments with their schedules and next runs.
func (d *Daemon) experimentInfos() []api.ExperimentInfo {
	out := []api.ExperimentInfo{}
	now := d.sched.clock.Now()
	for _, e := range d.exps.all() {
		name := e.Metadata.Name
		info := api.ExperimentInfo{Name: name, Description: e.Metadata.Description, Source: e.Source}
		if s := e.Spec.Schedule; s != nil {
			info.Schedule, info.TimeZone = s.Cron, s.TimeZone
			if c, err := s.Calendar(); err == nil {
				if next := c.Next(now); !next.IsZero() {
					info.NextRun = &next
				}
			}
		}
		out = append(out, info)
	}
	return out
}
