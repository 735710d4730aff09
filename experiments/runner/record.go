package runner

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/targets"
)

// finish records the verdict and ends the run.
func (r *Runner) finish(verdict api.Verdict, reason string) {
	now := time.Now()
	r.update(func(rec *api.Run) {
		rec.Phase = api.PhaseDone
		rec.Verdict = verdict
		rec.Reason = reason
		rec.FinishedAt = &now
		rec.Current = nil
	})
	r.event(fmt.Sprintf("verdict %s: %s", verdict, reason))
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

func (r *Runner) setPhase(phase api.Phase, msg string) {
	r.update(func(rec *api.Run) {
		rec.Phase = phase
		rec.Current = nil
	})
	r.event(msg)
	r.lg.Info("phase", zap.String("phase", string(phase)), zap.String("detail", msg))
}

func (r *Runner) event(msg string) {
	r.update(func(rec *api.Run) {
		rec.Events = append(rec.Events, api.Event{Time: time.Now(), Phase: rec.Phase, Message: msg})
	})
}

// update mutates the record under the lock and saves a copy.
func (r *Runner) update(fn func(rec *api.Run)) {
	r.mu.Lock()
	fn(&r.rec)
	cp := r.rec.DeepCopy()
	r.mu.Unlock()
	r.deps.Save(cp)
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
