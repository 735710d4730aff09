// Package suiterunner runs a suite: the experiments of a game day one
// after the other as one unit with one record (api.SuiteRun). It starts
// each experiment's run through Members (chaosd's own runs, so every
// run's safety rules hold unchanged), waits for its verdict, pauses
// before the next, and stops at the first verdict that is not pass when
// the suite says so. Abort stops the whole suite: the current run is
// aborted (its faults reverted by its runner) and the rest never start.
package suiterunner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
)

// Members starts and follows the runs of a suite's experiments.
type Members interface {
	// Start starts a run of the experiment of entry i (index in the
	// suite) and returns its first record. An error means no run started.
	Start(ctx context.Context, i int, experiment string) (api.Run, error)
	// Wait returns the run's final record once it has ended (or ctx's
	// error).
	Wait(ctx context.Context, id string) (api.Run, error)
	// Abort aborts the run (a no-op when it has ended).
	Abort(id, why string)
}

// Clock is the time source of pauses (tests use a fake).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Deps are what a Runner needs.
type Deps struct {
	Members Members
	// Save stores the whole record; called on every change, in order.
	// A failed save is logged; the suite goes on (each member run's own
	// record is saved by its runner, which stops when it cannot).
	Save  func(api.SuiteRun) error
	Clock Clock
}

// Runner runs one suite run.
type Runner struct {
	deps Deps
	lg   *zap.Logger
	// gaps[i] is the pause before entry i (gaps[0] is not used).
	gaps []time.Duration

	mu       sync.Mutex
	rec      api.SuiteRun
	current  string // run ID of the experiment running
	aborted  string // why the suite was aborted; "" when not
	abortSig chan struct{}
}

// New returns a runner of rec, whose Entries list the experiments in
// order; gaps[i] is the pause before entry i. It starts nothing.
func New(rec api.SuiteRun, gaps []time.Duration, deps Deps, lg *zap.Logger) *Runner {
	if lg == nil {
		lg = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = RealClock{}
	}
	rec = rec.DeepCopy()
	rec.Phase, rec.Current = api.SuitePending, -1
	return &Runner{deps: deps, lg: lg, gaps: gaps, rec: rec, abortSig: make(chan struct{})}
}

// Record returns a copy of the current record.
func (r *Runner) Record() api.SuiteRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.DeepCopy()
}

// CurrentRun returns the ID of the experiment run in progress, if any.
func (r *Runner) CurrentRun() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// Abort stops the suite: the current experiment's run is aborted and no
// further one starts. Only the first call counts.
func (r *Runner) Abort(why string) {
	r.mu.Lock()
	if r.aborted != "" || r.rec.Phase == api.SuiteDone {
		r.mu.Unlock()
		return
	}
	r.aborted = why
	id := r.current
	close(r.abortSig)
	r.mu.Unlock()
	r.lg.Info("suite run aborted", zap.String("suiteRun", r.rec.ID), zap.String("reason", why))
	if id != "" {
		r.deps.Members.Abort(id, "suite run aborted: "+why)
	}
}

// update changes the record under the lock and saves it.
func (r *Runner) update(fn func(rec *api.SuiteRun)) {
	r.mu.Lock()
	fn(&r.rec)
	cp := r.rec.DeepCopy()
	r.mu.Unlock()
	if err := r.deps.Save(cp); err != nil {
		r.lg.Error("save suite run record", zap.String("suiteRun", cp.ID), zap.Error(err))
	}
}

// Run runs the suite until its end and returns the final record. When
// ctx ends (chaosd stops), the current run is left to chaosd's own
// shutdown (which reverts it) and the suite ends interrupted.
func (r *Runner) Run(ctx context.Context, stopOnFailure bool) api.SuiteRun {
	r.update(func(rec *api.SuiteRun) { rec.Phase = api.SuiteRunning })
	for i := range r.Record().Entries {
		if i > 0 && r.gaps[i] > 0 {
			until := r.deps.Clock.Now().Add(r.gaps[i])
			r.update(func(rec *api.SuiteRun) {
				rec.Phase, rec.Current = api.SuitePausing, i
				rec.Entries[i].NotBefore = &until
			})
			select {
			case <-ctx.Done():
				return r.finishInterrupted(i)
			case <-r.abortSig:
				return r.finishAborted(i)
			case <-r.deps.Clock.After(r.gaps[i]):
			}
		}
		if r.abortedWhy() != "" {
			return r.finishAborted(i)
		}
		if ctx.Err() != nil {
			return r.finishInterrupted(i)
		}
		run, ok := r.runEntry(ctx, i)
		if !ok {
			return r.finishSkipStart(i)
		}
		switch {
		case r.abortedWhy() != "":
			return r.finishAborted(i + 1)
		case run.Interrupted || ctx.Err() != nil:
			return r.finishInterrupted(i + 1)
		case run.Verdict != api.VerdictPass && stopOnFailure:
			return r.finish(i+1, api.SkippedAfterFailure)
		}
	}
	return r.finish(len(r.rec.Entries), "")
}

func (r *Runner) abortedWhy() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aborted
}

// runEntry starts entry i and waits for its verdict; false when it could
// not start (the entry then says why).
func (r *Runner) runEntry(ctx context.Context, i int) (api.Run, bool) {
	name := r.Record().Entries[i].Experiment
	run, err := r.deps.Members.Start(ctx, i, name)
	if err != nil {
		r.lg.Warn("suite experiment not started", zap.String("suiteRun", r.rec.ID), zap.String("experiment", name), zap.Error(err))
		r.update(func(rec *api.SuiteRun) {
			rec.Entries[i].Skipped = "not started: " + err.Error()
		})
		return api.Run{}, false
	}
	r.mu.Lock()
	r.current = run.ID
	abortNow := r.aborted
	r.mu.Unlock()
	if abortNow != "" { // aborted while it started
		r.deps.Members.Abort(run.ID, "suite run aborted: "+abortNow)
	}
	r.update(func(rec *api.SuiteRun) {
		rec.Phase, rec.Current = api.SuiteRunning, i
		e := &rec.Entries[i]
		e.RunID, e.Phase = run.ID, run.Phase
		started := run.CreatedAt
		e.StartedAt = &started
	})
	final, err := r.deps.Members.Wait(ctx, run.ID)
	r.mu.Lock()
	r.current = ""
	r.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		r.lg.Error("follow suite experiment", zap.String("suiteRun", r.rec.ID), zap.String("run", run.ID), zap.Error(err))
	}
	if err != nil {
		final = run
		final.Interrupted = true
	}
	r.update(func(rec *api.SuiteRun) { setResult(&rec.Entries[i], final) })
	return final, true
}

// setResult copies a run's outcome into its entry.
func setResult(e *api.SuiteEntryResult, run api.Run) {
	e.RunID, e.Phase, e.Verdict, e.Reason, e.Interrupted = run.ID, run.Phase, run.Verdict, run.Reason, run.Interrupted
	if run.FinishedAt != nil {
		t := *run.FinishedAt
		e.FinishedAt = &t
	}
}

// SetResult copies a run's outcome into entry i of rec (restart
// recovery uses it with the member run's recovered record).
func SetResult(rec *api.SuiteRun, i int, run api.Run) { setResult(&rec.Entries[i], run) }

func (r *Runner) finishAborted(from int) api.SuiteRun {
	return r.finish(from, api.SkippedAborted)
}

func (r *Runner) finishInterrupted(from int) api.SuiteRun {
	return r.finish(from, api.SkippedInterrupted)
}

// finishSkipStart ends the suite after entry i could not start.
func (r *Runner) finishSkipStart(i int) api.SuiteRun {
	return r.finish(i+1, "not started: an earlier experiment of the suite could not start")
}

// finish marks entries from `from` on as skipped with why, sets the
// verdict and saves the final record.
func (r *Runner) finish(from int, why string) api.SuiteRun {
	now := r.deps.Clock.Now()
	aborted := r.abortedWhy()
	r.update(func(rec *api.SuiteRun) {
		for j := from; j < len(rec.Entries); j++ {
			if rec.Entries[j].RunID == "" && rec.Entries[j].Skipped == "" {
				rec.Entries[j].Skipped = why
			}
		}
		rec.Phase, rec.Current, rec.FinishedAt = api.SuiteDone, -1, &now
		rec.Interrupted = why == api.SkippedInterrupted
		rec.Verdict, rec.Reason = Verdict(*rec, aborted)
	})
	final := r.Record()
	r.lg.Info("suite run finished", zap.String("suiteRun", final.ID), zap.String("suite", final.Suite),
		zap.String("verdict", string(final.Verdict)), zap.String("reason", final.Reason))
	return final
}

// Verdict judges a finished suite run: pass only if every experiment ran
// and passed. Otherwise aborted when the suite run was aborted (abortedBy
// says why), error when it was interrupted or an experiment could not
// start, else the first verdict of an experiment that was not pass.
func Verdict(rec api.SuiteRun, abortedBy string) (api.Verdict, string) {
	if abortedBy != "" {
		return api.VerdictAborted, "suite run aborted (" + abortedBy + ")" + progressNote(rec)
	}
	if rec.Interrupted {
		return api.VerdictError, "interrupted: chaosd stopped during the suite run" + progressNote(rec)
	}
	for i, e := range rec.Entries {
		switch {
		case e.RunID == "" && e.Skipped != "" && e.Skipped != api.SkippedAfterFailure:
			return api.VerdictError, fmt.Sprintf("%s (experiments[%d]) %s", e.Experiment, i, e.Skipped)
		case e.RunID != "" && e.Interrupted:
			return api.VerdictError, fmt.Sprintf("%s (experiments[%d], run %s) was interrupted", e.Experiment, i, e.RunID)
		case e.RunID != "" && e.Verdict != api.VerdictPass:
			return e.Verdict, fmt.Sprintf("%s (experiments[%d], run %s): %s: %s", e.Experiment, i, e.RunID, e.Verdict, e.Reason) + skippedNote(rec)
		}
	}
	return api.VerdictPass, fmt.Sprintf("all %d experiments passed", len(rec.Entries))
}

func progressNote(rec api.SuiteRun) string {
	ran := 0
	for _, e := range rec.Entries {
		if e.RunID != "" {
			ran++
		}
	}
	return fmt.Sprintf("; %d of %d experiments started", ran, len(rec.Entries))
}

func skippedNote(rec api.SuiteRun) string {
	n := 0
	for _, e := range rec.Entries {
		if e.Skipped == api.SkippedAfterFailure {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d later experiments skipped (stopOnFailure)", n)
}
