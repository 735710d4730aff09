package runner

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/targets"
)

// finish records the verdict and ends the run. The final record is on
// disk when finish returns (unless the store failed, which the saver
// reports): a restart must never take a finished run for an interrupted
// one.
func (r *Runner) finish(verdict api.Verdict, reason string) {
	now := time.Now()
	_ = r.updateDurable(func(rec *api.Run) {
		rec.Phase = api.PhaseDone
		rec.Verdict = verdict
		rec.Reason = reason
		rec.FinishedAt = &now
		rec.Current = nil
		rec.Events = append(rec.Events, api.Event{Time: now, Phase: rec.Phase, Message: fmt.Sprintf("verdict %s: %s", verdict, reason)})
	})
	r.lg.Info("run finished", zap.String("verdict", string(verdict)), zap.String("reason", reason))
	if verdict == api.VerdictAborted {
		r.record(nil, true, ReasonAborted, reason)
	}
	r.record(nil, verdict != api.VerdictPass, ReasonVerdict, fmt.Sprintf("%s: %s", verdict, reason))
}

// record hands an event to the Recorder, if any.
func (r *Runner) record(target *targets.Node, warning bool, reason, message string) {
	if r.deps.Recorder == nil {
		return
	}
	r.deps.Recorder.Event(r.rec.ID, target, warning, reason, message)
}

// setPhase moves the run to phase and waits until a record saying so is
// on disk: phase changes are few per run (whatever its size), and a
// restart then knows how far the run got.
func (r *Runner) setPhase(phase api.Phase, msg string) {
	_ = r.updateDurable(func(rec *api.Run) {
		rec.Phase = phase
		rec.Current = nil
		rec.Events = append(rec.Events, api.Event{Time: time.Now(), Phase: phase, Message: msg})
	})
	r.lg.Info("phase", zap.String("phase", string(phase)), zap.String("detail", msg))
}

func (r *Runner) event(msg string) {
	r.update(func(rec *api.Run) {
		rec.Events = append(rec.Events, api.Event{Time: time.Now(), Phase: rec.Phase, Message: msg})
	})
}

// update mutates the record under the lock and marks it changed: the
// record writer (recordWriter) saves it within Options.SaveInterval. No
// copy is made here; one is made per save.
func (r *Runner) update(fn func(rec *api.Run)) { r.change(fn) }

// updateDurable is update, then waits until a save containing the change
// is on disk (or has failed: the error is the store's, and the saver has
// already failed the run). Steps whose record a restart needs before the
// next action (the faults about to be injected, an undo document, a phase
// change, the verdict) use it.
func (r *Runner) updateDurable(fn func(rec *api.Run)) error {
	return r.w.waitSaved(r, r.change(fn))
}

// flush waits until the record as it is now is on disk.
func (r *Runner) flush() error {
	r.mu.Lock()
	v := r.version
	r.mu.Unlock()
	return r.w.waitSaved(r, v)
}

func (r *Runner) change(fn func(rec *api.Run)) uint64 {
	r.mu.Lock()
	fn(&r.rec)
	r.version++
	v := r.version
	r.mu.Unlock()
	r.w.changed(r)
	return v
}

// snapshot copies the record for a save, with its version.
func (r *Runner) snapshot() (api.Run, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.DeepCopy(), r.version
}

// recordWriter saves a run's record through Deps.Save. While the run goes
// (start to stop), one goroutine saves: at most every interval while
// nothing waits, at once when a step waits (waitSaved), always the latest
// record, so a save of N faults costs one copy and one write however many
// updates made it. Outside that span (before Run, after it, or when a
// test drives a step alone) every change is saved at once, in order.
type recordWriter struct {
	save     func(api.Run) error
	interval time.Duration

	kick   chan struct{} // a change is waiting (cap 1)
	urgent chan struct{} // a step waits for a save (cap 1)
	stop   chan struct{}
	done   chan struct{}

	syncMu sync.Mutex // serialises saves outside the goroutine's span

	mu        sync.Mutex
	running   bool
	attempted uint64        // version of the last save tried
	saved     uint64        // version of the last save that succeeded
	lastErr   error         // error of the last save tried
	faults    int           // faults in the last record saved (period)
	written   chan struct{} // closed (and replaced) after each save tried
}

func newRecordWriter(save func(api.Run) error, interval time.Duration) *recordWriter {
	return &recordWriter{save: save, interval: interval, written: make(chan struct{}),
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
}

// start runs the saving goroutine until stopAndFlush.
func (w *recordWriter) start(r *Runner) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = true
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.loop(r)
}

// stopAndFlush ends the goroutine and saves what it had not saved yet;
// later changes are saved at once.
func (w *recordWriter) stopAndFlush(r *Runner) error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	w.running = false
	close(w.written) // wake any waiter: it saves by itself now
	w.written = make(chan struct{})
	w.mu.Unlock()
	return r.flush()
}

func (w *recordWriter) loop(r *Runner) {
	defer close(w.done)
	var last time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-w.urgent:
		case <-w.kick:
			if wait := w.period() - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-w.urgent:
				case <-w.stop:
					t.Stop()
					return
				}
				t.Stop()
			}
		}
		w.write(r)
		last = time.Now()
	}
}

// faultsPerInterval is how many faults' records one save interval pays
// for: a record of more faults is saved (when nothing waits for it) that
// many times less often, so the bytes a run writes per second stay
// bounded (~1.2 KiB a fault: 100 faults every 500 ms by default) however
// many faults it has, instead of growing with them.
const faultsPerInterval = 100

// period is how long the writer waits between two saves nothing waits
// for: the interval, longer for records of many faults.
func (w *recordWriter) period() time.Duration {
	w.mu.Lock()
	n := w.faults
	w.mu.Unlock()
	return w.interval * time.Duration(max(1, (n+faultsPerInterval-1)/faultsPerInterval))
}

// write saves the latest record unless it was saved already.
func (w *recordWriter) write(r *Runner) {
	rec, v := r.snapshot()
	w.mu.Lock()
	w.faults = len(rec.Faults)
	if v <= w.attempted {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	err := w.save(rec)
	w.mu.Lock()
	w.attempted, w.lastErr = v, err
	if err == nil {
		w.saved = v
	}
	close(w.written)
	w.written = make(chan struct{})
	w.mu.Unlock()
}

// writeNow saves the record from the caller's goroutine (outside the
// writer goroutine's span), one save at a time.
func (w *recordWriter) writeNow(r *Runner) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.write(r)
}

// changed notes a change: the goroutine saves it within the interval, or
// (outside its span) it is saved now.
func (w *recordWriter) changed(r *Runner) {
	w.mu.Lock()
	running := w.running
	w.mu.Unlock()
	if !running {
		w.writeNow(r)
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// waitSaved waits until version v of the record (or a later one) has
// been saved, asking for a save at once; it returns the error of the save
// that covered v, if that failed.
func (w *recordWriter) waitSaved(r *Runner, v uint64) error {
	for {
		w.mu.Lock()
		if w.saved >= v {
			w.mu.Unlock()
			return nil
		}
		if w.attempted >= v {
			err := w.lastErr
			w.mu.Unlock()
			return err
		}
		running, written := w.running, w.written
		w.mu.Unlock()
		if !running {
			w.writeNow(r)
			continue
		}
		select {
		case w.urgent <- struct{}{}:
		default:
		}
		<-written
	}
}

// recordRound adds one round's results to the phase's summaries and shows
// them as the current values (after those already shown this round when
// appendCurrent).
func (r *Runner) recordRound(phase api.Phase, ps []probes.Probe, res []probes.Result, appendCurrent bool) {
	r.update(func(rec *api.Run) {
		if !appendCurrent {
			rec.Current = nil
		}
		pr := phaseResult(rec, phase)
		for i, p := range ps {
			rec.Current = append(rec.Current, toAPI(res[i]))
			addSummary(pr, p, res[i], !res[i].OK)
		}
	})
}

// recordSteps adds the steps a round judged besides its own results (the
// scrapes between two rounds, the baseline) to the phase's summaries.
func (r *Runner) recordSteps(phase api.Phase, ps []probes.Probe, rows probes.Grid) {
	if len(rows) == 0 {
		return
	}
	r.update(func(rec *api.Run) {
		pr := phaseResult(rec, phase)
		for _, row := range rows {
			for i, p := range ps {
				if i < len(row) {
					addSummary(pr, p, row[i], !row[i].OK)
				}
			}
		}
	})
}

func (r *Runner) recordAbortRound(ps []probes.Probe, res []probes.Result) {
	r.update(func(rec *api.Run) {
		pr := phaseResult(rec, api.PhaseAbort)
		for i, p := range ps {
			rec.Current = append(rec.Current, toAPI(res[i]))
			// For abort probes a "failure" is a firing round.
			addSummary(pr, p, res[i], abortFiring(p, res[i]))
		}
	})
}

func phaseResult(rec *api.Run, phase api.Phase) *api.PhaseResult {
	for i := range rec.Phases {
		if rec.Phases[i].Phase == phase {
			return &rec.Phases[i]
		}
	}
	rec.Phases = append(rec.Phases, api.PhaseResult{Phase: phase, Probes: []api.ProbeSummary{}})
	return &rec.Phases[len(rec.Phases)-1]
}

func addSummary(pr *api.PhaseResult, p probes.Probe, res probes.Result, failed bool) {
	var s *api.ProbeSummary
	for i := range pr.Probes {
		if pr.Probes[i].Name == p.Name {
			s = &pr.Probes[i]
		}
	}
	if s == nil {
		pr.Probes = append(pr.Probes, api.ProbeSummary{Name: p.Name, Query: p.Query, Condition: p.Condition()})
		s = &pr.Probes[len(pr.Probes)-1]
	}
	s.Evaluations++
	if failed {
		s.Failures++
		if s.FirstFailure == nil {
			t := res.Time
			s.FirstFailure = &t
		}
	}
	s.Last = toAPI(res)
}

// toAPI converts a probe result to the run record's form.
func toAPI(r probes.Result) api.ProbeResult {
	out := api.ProbeResult{Probe: r.Probe, Time: r.Time, OK: r.OK, Value: r.Value, Error: r.Error}
	if r.Series != nil {
		out.Series = make([]api.SeriesValue, len(r.Series))
		for i, s := range r.Series {
			out.Series[i] = api.SeriesValue{Labels: s.Labels, Value: s.Value, OK: s.OK}
		}
	}
	return out
}
