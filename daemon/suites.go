package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	"github.com/chaosd/chaosd/experiments/suiterunner"
)

// suiteRunStore keeps suite run records: files in the data directory
// (store.Store, standalone) or SuiteRun objects (store.KubeSuiteRuns,
// Kubernetes, where the data directory is scratch space and any replica
// may lead next).
type suiteRunStore interface {
	SaveSuiteRun(api.SuiteRun) error
	GetSuiteRun(id string) (api.SuiteRun, error)
	ListSuiteRuns() ([]api.SuiteRun, error)
}

// suites are the suites chaosd knows and the suite runs in progress.
type suites struct {
	mu      sync.Mutex
	byName  map[string]*experiments.Suite
	active  map[string]*suiterunner.Runner // by suite run ID
	bySuite map[string]string              // suite → active suite run ID
	clock   suiterunner.Clock
}

func (s *suites) init(list []*experiments.Suite) {
	s.byName = map[string]*experiments.Suite{}
	for _, su := range list {
		s.byName[su.Metadata.Name] = su
	}
	s.active = map[string]*suiterunner.Runner{}
	s.bySuite = map[string]string{}
	if s.clock == nil {
		s.clock = suiterunner.RealClock{}
	}
}

// set adds or replaces a suite (a Suite object that passed validation).
func (s *suites) set(su *experiments.Suite) {
	s.mu.Lock()
	s.byName[su.Metadata.Name] = su
	s.mu.Unlock()
}

// remove forgets a suite; a run of it in progress goes on.
func (s *suites) remove(name string) {
	s.mu.Lock()
	delete(s.byName, name)
	s.mu.Unlock()
}

func (s *suites) get(name string) (*experiments.Suite, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	su, ok := s.byName[name]
	return su, ok
}

// all returns the suites by name.
func (s *suites) all() []*experiments.Suite {
	s.mu.Lock()
	out := make([]*experiments.Suite, 0, len(s.byName))
	for _, su := range s.byName {
		out = append(out, su)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}

func (s *suites) live(id string) (*suiterunner.Runner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rn, ok := s.active[id]
	return rn, ok
}

func (s *suites) allLive() map[string]*suiterunner.Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*suiterunner.Runner, len(s.active))
	for id, rn := range s.active {
		out[id] = rn
	}
	return out
}

// suiteOptions say how a suite run was asked for.
type suiteOptions struct {
	trigger      api.Trigger
	dryRun       bool
	force        bool
	scheduledAt  *time.Time
	missedPolicy string
}

// startSuite starts a run of the suite name in the background and returns
// its first record: one run of a suite at a time; inside a freeze window
// only with force (a dry run is never refused); every experiment must be
// in the library now.
func (d *Daemon) startSuite(name string, o suiteOptions) (api.SuiteRun, error) {
	su, ok := d.suites.get(name)
	if !ok {
		return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "unknown suite %q", httpapi.Clip(name, 64))
	}
	exps := make([]*experiments.Experiment, len(su.Spec.Experiments))
	for i, en := range su.Spec.Experiments {
		e, ok := d.exps.get(en.Experiment)
		if !ok {
			return api.SuiteRun{}, httpapi.Errorf(http.StatusUnprocessableEntity,
				"suite %s: spec.experiments[%d]: experiment %q is not in chaosd's library", name, i, en.Experiment)
		}
		exps[i] = e
	}
	rec := api.SuiteRun{ID: newSuiteRunID(), Suite: name, Trigger: o.trigger, DryRun: o.dryRun, ScheduledAt: o.scheduledAt,
		MissedPolicy: o.missedPolicy, StopOnFailure: su.StopsOnFailure(), CreatedAt: time.Now(), Current: -1}
	if f := d.suiteFrozen(su, nil); f != nil && !o.dryRun && o.trigger == api.TriggerManual {
		if !o.force {
			return api.SuiteRun{}, httpapi.Errorf(http.StatusConflict,
				"suite %s is inside freeze window %q (%s) until %s: no run starts in a freeze; force it with --force (API: \"force\": true)",
				name, f.Window.Name, f.Window.Origin, f.Until.Format(time.RFC3339))
		}
		rec.ForcedFreeze = f.Window.Name
		d.lg.Warn("suite run forced through a freeze window", zap.String("suite", name), zap.String("window", f.Window.Name))
	}
	gaps := make([]time.Duration, len(exps))
	for i := range exps {
		rec.Entries = append(rec.Entries, api.SuiteEntryResult{Experiment: exps[i].Metadata.Name})
		if i > 0 && !o.dryRun {
			gaps[i] = su.Gap(exps[i])
		}
	}

	g, s := &d.runs, &d.suites
	g.mu.Lock()
	runCtx := g.ctx
	if runCtx == nil || runCtx.Err() != nil {
		g.mu.Unlock()
		return api.SuiteRun{}, httpapi.Errorf(http.StatusServiceUnavailable, "%s", d.notLeading())
	}
	s.mu.Lock()
	if id, busy := s.bySuite[name]; busy {
		s.mu.Unlock()
		g.mu.Unlock()
		return api.SuiteRun{}, httpapi.Errorf(http.StatusConflict, "a run of suite %s is already in progress (suite run %s)", name, id)
	}
	lg := d.lg.Named("suite")
	members := &suiteMembers{d: d, suite: su, rec: &rec, force: o.force}
	rn := suiterunner.New(rec, gaps, suiterunner.Deps{Members: members, Save: d.saveSuiteRun, Clock: s.clock}, lg)
	first := rn.Record()
	if err := d.suiteStore.SaveSuiteRun(first); err != nil {
		s.mu.Unlock()
		g.mu.Unlock()
		lg.Error("save first suite run record; suite not started", zap.String("suiteRun", rec.ID), zap.Error(err))
		return api.SuiteRun{}, httpapi.Errorf(http.StatusInsufficientStorage,
			"the suite run record could not be written (%s); nothing was started", storeCause(err))
	}
	s.active[rec.ID], s.bySuite[name] = rn, rec.ID
	s.mu.Unlock()
	g.wg.Add(1)
	g.mu.Unlock()
	lg.Info("suite run started", zap.String("suiteRun", rec.ID), zap.String("suite", name),
		zap.Strings("experiments", su.Names()), zap.Bool("dryRun", o.dryRun))

	go func() {
		defer g.wg.Done()
		rn.Run(runCtx, su.StopsOnFailure())
		s.mu.Lock()
		delete(s.active, rec.ID)
		delete(s.bySuite, name)
		s.mu.Unlock()
	}()
	return first, nil
}

// saveSuiteRun is a suite runner's Save.
func (d *Daemon) saveSuiteRun(r api.SuiteRun) error { return d.suiteStore.SaveSuiteRun(r) }

// suiteFrozen returns the freeze window that holds now for the suite
// (chaosd's configuration's and the suite schedule's own windows) and,
// with exp, that experiment's own too.
func (d *Daemon) suiteFrozen(su *experiments.Suite, exp *experiments.Experiment) *calendar.Freeze {
	windows := append([]*calendar.Window{}, d.sched.windows...)
	if sc := su.Spec.Schedule; sc != nil {
		if own, err := sc.WindowsOf("suite"); err == nil {
			windows = append(windows, own...)
		}
	}
	if exp != nil && exp.Spec.Schedule != nil {
		if own, err := exp.Spec.Schedule.Windows(); err == nil {
			windows = append(windows, own...)
		}
	}
	return calendar.Frozen(windows, d.sched.clock.Now())
}

// suiteMembers starts a suite's experiments as chaosd's own runs.
type suiteMembers struct {
	d     *Daemon
	suite *experiments.Suite
	rec   *api.SuiteRun // the first record: ID, trigger, dry run (read only)
	force bool
}

// Start starts entry i's run. A freeze window that opened since the suite
// started stops it here (unless the suite was forced, or is a dry run):
// no run starts in a freeze.
func (m *suiteMembers) Start(_ context.Context, i int, experiment string) (api.Run, error) {
	d := m.d
	exp, ok := d.exps.get(experiment)
	if !ok {
		return api.Run{}, fmt.Errorf("experiment %q is no longer in chaosd's library", experiment)
	}
	o := runOptions{trigger: m.rec.Trigger, dryRun: m.rec.DryRun, scheduledAt: m.rec.ScheduledAt, missedPolicy: m.rec.MissedPolicy,
		suiteRun: m.rec.ID}
	if f := d.suiteFrozen(m.suite, exp); f != nil && !m.rec.DryRun {
		if !m.force {
			return api.Run{}, fmt.Errorf("inside freeze window %q (%s) until %s", f.Window.Name, f.Window.Origin, f.Until.Format(time.RFC3339))
		}
		o.forcedFreeze = f.Window.Name
	}
	run, err := d.startRun(experiment, o)
	if err != nil {
		var se *httpapi.StatusError
		if errors.As(err, &se) {
			return api.Run{}, se.Err
		}
		return api.Run{}, err
	}
	return run, nil
}

// Wait waits for the run to end and returns its final record.
func (m *suiteMembers) Wait(ctx context.Context, id string) (api.Run, error) {
	d := m.d
	if done := d.runs.doneChan(id); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			// chaosd is stopping: the run's own context ends too and its
			// runner reverts; wait for its final record.
			select {
			case <-done:
			case <-time.After(shutdownRuns):
				return api.Run{}, ctx.Err()
			}
		}
	}
	if rec, ok := d.runs.getUnsaved(id); ok {
		return rec, nil
	}
	return d.store.Get(id)
}

// Abort aborts the run if it is still in progress.
func (m *suiteMembers) Abort(id, why string) {
	if rn, ok := m.d.runs.get(id); ok {
		rn.Abort(why)
	}
}

// abortSuiteRun aborts a suite run in progress: its current experiment is
// aborted and the rest never start.
func (d *Daemon) abortSuiteRun(id, why string) (api.SuiteRun, error) {
	rn, live := d.suites.live(id)
	if !live {
		rec, err := d.suiteStore.GetSuiteRun(id)
		if err != nil {
			return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "suite run %q not found", httpapi.Clip(id, 64))
		}
		if rec.Phase != api.SuiteDone {
			return api.SuiteRun{}, httpapi.Errorf(http.StatusServiceUnavailable, "suite run %s is not run by this chaosd: %s", id, d.notLeading())
		}
		return api.SuiteRun{}, httpapi.Errorf(http.StatusConflict, "suite run %s already finished (%s)", id, rec.Verdict)
	}
	rn.Abort(why)
	return d.liveSuiteRecord(rn), nil
}

// liveSuiteRecord is a suite runner's record with its current
// experiment's live phase.
func (d *Daemon) liveSuiteRecord(rn *suiterunner.Runner) api.SuiteRun {
	rec := rn.Record()
	if c := rec.Current; c >= 0 && c < len(rec.Entries) && rec.Entries[c].RunID != "" {
		if r, ok := d.runs.get(rec.Entries[c].RunID); ok {
			rec.Entries[c].Phase = r.Record().Phase
		}
	}
	return rec
}

// suiteRun returns one suite run: live while it runs, else its record.
func (d *Daemon) suiteRun(id string) (api.SuiteRun, error) {
	if rn, ok := d.suites.live(id); ok {
		return d.liveSuiteRecord(rn), nil
	}
	rec, err := d.suiteStore.GetSuiteRun(id)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "suite run %q not found", httpapi.Clip(id, 64))
	case err != nil:
		d.lg.Error("read suite run record", zap.String("suiteRun", httpapi.Clip(id, 64)), zap.Error(err))
		return api.SuiteRun{}, httpapi.Errorf(http.StatusInternalServerError, "suite run %s: its record could not be read (see chaosd's log)", httpapi.Clip(id, 64))
	}
	return rec, nil
}

// suiteRuns lists suite runs, newest first, live ones as they are now.
func (d *Daemon) suiteRuns() ([]api.SuiteRun, error) {
	runs, err := d.suiteStore.ListSuiteRuns()
	for i := range runs {
		if rn, ok := d.suites.live(runs[i].ID); ok {
			runs[i] = d.liveSuiteRecord(rn)
		}
	}
	if err != nil {
		d.lg.Warn("some suite run records could not be read", zap.Error(err))
		if len(runs) == 0 {
			return nil, httpapi.Errorf(http.StatusInternalServerError, "suite run records could not be read (see chaosd's log)")
		}
	}
	return runs, nil
}

// suiteInfos describes the suites.
func (d *Daemon) suiteInfos() []api.SuiteInfo {
	out := []api.SuiteInfo{}
	now := d.sched.clock.Now()
	for _, su := range d.suites.all() {
		info := api.SuiteInfo{Name: su.Metadata.Name, Description: su.Metadata.Description, Source: su.Source,
			Experiments: su.Names(), StopOnFailure: su.StopsOnFailure()}
		if info.Description == "" {
			info.Description = su.Metadata.Annotations[experiments.DescriptionAnnotation]
		}
		if p := su.Spec.Pause; p != nil {
			info.Pause = p.String()
		}
		if sc := su.Spec.Schedule; sc != nil {
			info.Schedule, info.TimeZone = sc.Cron, sc.TimeZone
			if c, err := sc.Calendar(); err == nil {
				if next := c.Next(now); !next.IsZero() {
					info.NextRun = &next
				}
			}
		}
		out = append(out, info)
	}
	return out
}

// recoverInterruptedSuites marks suite runs that were going when chaosd
// last stopped as interrupted, after the runs' own recovery (which
// reverted their faults): each started experiment gets its run's
// recovered record, the rest are skipped. A suite is never resumed.
func (d *Daemon) recoverInterruptedSuites() {
	runs, err := d.suiteStore.ListSuiteRuns()
	if err != nil {
		d.lg.Warn("some suite run records could not be read", zap.Error(err))
	}
	for _, r := range runs {
		if r.Phase == api.SuiteDone {
			continue
		}
		for i := range r.Entries {
			e := &r.Entries[i]
			switch {
			case e.RunID != "" && e.Verdict == "":
				if run, err := d.store.Get(e.RunID); err == nil {
					suiterunner.SetResult(&r, i, run)
				} else {
					e.Interrupted, e.Reason = true, "its record could not be read after the restart"
				}
			case e.RunID == "" && e.Skipped == "":
				e.Skipped = api.SkippedInterrupted
			}
		}
		now := time.Now()
		r.Phase, r.Current, r.FinishedAt, r.Interrupted = api.SuiteDone, -1, &now, true
		r.Verdict, r.Reason = suiterunner.Verdict(r, "")
		if err := d.suiteStore.SaveSuiteRun(r); err != nil {
			d.lg.Error("save interrupted suite run", zap.String("suiteRun", r.ID), zap.Error(err))
		}
		d.lg.Warn("suite run was interrupted by a restart", zap.String("suiteRun", r.ID), zap.String("suite", r.Suite))
	}
}

// isSuiteRunID reports whether id names a suite run.
func isSuiteRunID(id string) bool { return strings.HasPrefix(id, api.SuiteRunPrefix) }

func newSuiteRunID() string { return api.SuiteRunPrefix + strings.TrimPrefix(newRunID(), "r-") }

// suiteSchedulePrefix marks a suite's entry in the scheduler, its
// schedule state and its skipped triggers ("suite/game-day"); experiment
// names cannot hold a slash, so the two never clash.
const suiteSchedulePrefix = "suite/"

// suiteScheduleEntries are the scheduler entries of the scheduled suites,
// each with chaosd's freeze windows and its own.
func (d *Daemon) suiteScheduleEntries() []scheduler.Entry {
	var out []scheduler.Entry
	for _, su := range d.suites.all() {
		sc := su.Spec.Schedule
		if sc == nil {
			continue
		}
		c, err := sc.Calendar()
		if err == nil {
			var own []*calendar.Window
			if own, err = sc.WindowsOf("suite"); err == nil {
				out = append(out, scheduler.Entry{
					Experiment: suiteSchedulePrefix + su.Metadata.Name, Cron: c,
					Windows:    append(append([]*calendar.Window{}, d.sched.windows...), own...),
					MissedRuns: sc.MissedRuns, StartingDeadline: sc.StartingDeadline.D(),
					Key: sc.Cron + "\x00" + sc.TimeZone,
				})
				continue
			}
		}
		d.lg.Error("suite schedule not registered", zap.String("suite", su.Metadata.Name), zap.Error(err))
	}
	return out
}

// startScheduledSuite is the scheduler's Start for a suite's trigger.
func (d *Daemon) startScheduledSuite(name string, t scheduler.Trigger) error {
	at := t.At
	o := suiteOptions{trigger: api.TriggerSchedule, scheduledAt: &at}
	if t.Missed {
		o.missedPolicy = string(experiments.MissedRunsRunOnce)
	}
	_, err := d.startSuite(name, o)
	var se *httpapi.StatusError
	if errors.As(err, &se) && se.Status == http.StatusConflict {
		return overlapError{err}
	}
	return err
}

// suiteScheduleInfos describes the scheduled suites for GET /v1/schedules
// (Experiment is "suite/NAME", Suite the suite's name).
func (d *Daemon) suiteScheduleInfos(only string, now time.Time, skips []api.SkipInfo) []api.ScheduleInfo {
	runs, _ := d.suiteStore.ListSuiteRuns()
	var out []api.ScheduleInfo
	for _, en := range d.suiteScheduleEntries() {
		if only != "" && en.Experiment != only {
			continue
		}
		name := strings.TrimPrefix(en.Experiment, suiteSchedulePrefix)
		su, _ := d.suites.get(name)
		sc := su.Spec.Schedule
		info := api.ScheduleInfo{Experiment: en.Experiment, Suite: name, Cron: sc.Cron, TimeZone: sc.TimeZone,
			MissedRuns: string(sc.MissedRuns), Next: []api.FireTime{}, Skipped: []api.SkipInfo{}}
		if sc.MissedRuns == experiments.MissedRunsRunOnce {
			info.StartingDeadline = sc.StartingDeadline.String()
		}
		if st, err := d.schedules.ScheduleState(en.Experiment); err == nil {
			info.Paused, info.PausedAt, info.LastTrigger = st.Paused, st.PausedAt, st.LastTrigger
		}
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
		for _, r := range runs { // newest first
			if r.Suite == name {
				info.LastRun = &api.RunSummary{ID: r.ID, Trigger: r.Trigger, CreatedAt: r.CreatedAt, Verdict: r.Verdict,
					Phase: map[bool]api.Phase{true: api.PhaseDone, false: api.PhaseObserving}[r.Phase == api.SuiteDone]}
				break
			}
		}
		for i := len(skips) - 1; i >= 0 && len(info.Skipped) < skipsShown; i-- {
			if skips[i].Experiment == en.Experiment {
				info.Skipped = append(info.Skipped, skips[i])
			}
		}
		out = append(out, info)
	}
	return out
}
