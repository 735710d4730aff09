package runner

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
)

// timing is the bookkeeping that places the first impact and the start of
// the recovery, to the backend's scrape interval when it can.
type timing struct {
	// recovery tracks the recovery streak from the first impact on.
	recovery *probes.RecoveryTracker
	// refineStep, when set, is the step at which a change between two
	// probe rounds is placed (the backend's scrape interval); 0 measures
	// at the probe interval.
	refineStep time.Duration
	// lastSLO is the time of the last SLO round; lastRecovery and
	// lastRecoveryOK the last round fed to the recovery tracker.
	lastSLO        time.Time
	lastRecovery   time.Time
	lastRecoveryOK bool
	// blindSince is when the probes stopped answering (zero: they answer);
	// blindTotal the time they were blind before that.
	blindSince time.Time
	blindTotal time.Duration
	// blindEnded is when the last blind stretch ended.
	blindEnded time.Time
}

// recoveryJudgeable reports whether, since the probes last answered
// again, there was time enough (holdFor) to see the system recover: if
// not, a recovery that did not show is the tool's blindness, not the
// system's failure.
func (r *Runner) recoveryJudgeable() bool {
	tm := &r.timing
	if !tm.blindSince.IsZero() {
		return false
	}
	return tm.blindEnded.IsZero() || !time.Now().Before(tm.blindEnded.Add(r.exp.Spec.Recovery.HoldFor.D()))
}

// noteBlind tracks how long the probes could not be evaluated: a round
// with any blind result starts (or continues) a blind stretch, a fully
// evaluated round ends it. The record says for how long, and events say
// when judging stopped and resumed.
func (r *Runner) noteBlind(res []probes.Result) (blind bool) {
	tm := &r.timing
	b := probes.Blind(res)
	now := time.Now()
	if len(res) > 0 {
		now = res[0].Time
	}
	switch {
	case len(b) > 0 && tm.blindSince.IsZero():
		tm.blindSince = now
		r.event("probes blind, judging paused: " + describeFailures(b))
	case len(b) == 0 && !tm.blindSince.IsZero():
		d := now.Sub(tm.blindSince)
		tm.blindTotal += d
		tm.blindSince = time.Time{}
		tm.blindEnded = now
		r.event(fmt.Sprintf("probes answer again after %s blind; judging resumed", d.Round(time.Millisecond)))
	}
	total := tm.blindTotal
	if !tm.blindSince.IsZero() {
		total += now.Sub(tm.blindSince)
	}
	if secs := total.Seconds(); secs != r.rec.BlindSeconds {
		r.update(func(rec *api.Run) { rec.BlindSeconds = secs })
	}
	return len(b) > 0
}

// chooseResolution decides how precisely the run times changes: to the
// backend's scrape interval when that is shorter than the probe interval
// (a change between two rounds is then placed with a range query), else
// to the probe interval.
func (r *Runner) chooseResolution(ctx context.Context) {
	interval := r.exp.Spec.ProbeInterval.D()
	si, err := r.deps.Prober.ScrapeInterval(ctx)
	switch {
	case err != nil:
		r.event(fmt.Sprintf("times measured to ±%s, the probe interval (scrape interval unknown: %v)", interval, err))
		return
	case si <= 0 || si >= interval:
		r.event(fmt.Sprintf("times measured to ±%s, the probe interval (Prometheus scrapes every %s)", interval, si))
		return
	}
	r.timing.refineStep = si
	r.update(func(rec *api.Run) { rec.RTO.ResolutionSeconds = si.Seconds() })
	r.event(fmt.Sprintf("times measured to ±%s, Prometheus' scrape interval (probes every %s; changes between rounds placed by range queries)", si, interval))
}

// refine evaluates ps at every refine step in (from, to), or returns nil
// when refinement is off or fails (the round times stand then).
func (r *Runner) refine(ctx context.Context, ps []probes.Probe, from, to time.Time) probes.Grid {
	step := r.timing.refineStep
	if step <= 0 || from.IsZero() || to.Sub(from) <= step {
		return nil
	}
	start := from.Add(step)
	var grid probes.Grid
	for _, p := range ps {
		rs, err := r.deps.Prober.EvalRange(ctx, p, start, to.Add(-step/2), step)
		if err != nil {
			r.lg.Warn("refine: range query failed; keeping the probe round's time", zap.String("probe", p.Name), zap.Error(err))
			return nil
		}
		if grid == nil {
			grid = make(probes.Grid, len(rs))
		}
		if len(rs) != len(grid) {
			return nil
		}
		for i := range rs {
			grid[i] = append(grid[i], rs[i])
		}
	}
	return grid
}

// noteImpact marks the first failing SLO round, placed between the
// previous round and this one when the resolution allows.
func (r *Runner) noteImpact(ctx context.Context, res []probes.Result) {
	prev := r.timing.lastSLO
	if len(res) > 0 {
		r.timing.lastSLO = res[0].Time
	}
	if r.rec.Times.FirstImpact != nil {
		return
	}
	// A probe that could not be evaluated is no impact: only judged
	// results count.
	f := probes.Failing(probes.Judged(res))
	if len(f) == 0 {
		return
	}
	t := f[0].Time
	if at, ok := r.refine(ctx, r.exp.Spec.SteadyState.Probes, prev, t).FirstFailure(); ok {
		t = at
	}
	r.update(func(rec *api.Run) { rec.Times.FirstImpact = &t })
	r.event("first impact: " + describeFailures(f))
}

// feedRecovery feeds the recovery tracker from the first impact on. The
// recovery probes are evaluated here too when they differ from the SLO
// probes, so a system that heals while the fault is still active gets
// credit for it.
func (r *Runner) feedRecovery(ctx context.Context, slo []probes.Result) {
	spec := &r.exp.Spec
	if r.rec.Times.FirstImpact == nil && r.rec.Phase != api.PhaseRecovering {
		return
	}
	tm := &r.timing
	hold := spec.Recovery.HoldFor.D()
	if tm.recovery == nil {
		tm.recovery = &probes.RecoveryTracker{HoldFor: hold}
	}
	res := slo
	if r.rec.Phase != api.PhaseRecovering && !sameProbes(spec.Recovery.Probes, spec.SteadyState.Probes) {
		res = r.evalAll(ctx, spec.Recovery.Probes)
	}
	t := time.Now()
	if len(res) > 0 {
		t = res[0].Time
	}
	if len(probes.Blind(res)) > 0 {
		// Blind: no evidence either way; the streak neither grows nor
		// breaks, and the next judged round is placed from here.
		return
	}
	ok := len(probes.Failing(res)) == 0
	if _, done := tm.recovery.Recovered(); done && !ok {
		// Healed during the fault, then failed again: start over.
		tm.recovery = &probes.RecoveryTracker{HoldFor: hold}
	}
	at := t
	if ok && !tm.lastRecoveryOK && !tm.lastRecovery.IsZero() {
		// A streak starts: place its start at the first step from which
		// every recovery probe held through this round.
		if s, found := r.refine(ctx, spec.Recovery.Probes, tm.lastRecovery, t).StreakStart(); found {
			at = s
		}
	}
	tm.lastRecovery, tm.lastRecoveryOK = t, ok
	tm.recovery.Observe(at, ok)
}

// verdict judges a recovery that started at recovered against the RTO.
func (r *Runner) verdict(recovered time.Time) (api.Verdict, string) {
	rto := probes.MeasuredRTO(r.rec.Times.FirstImpact, recovered)
	secs := rto.Seconds()
	r.update(func(rec *api.Run) {
		rec.Times.Recovered = &recovered
		rec.RTO.MeasuredSeconds = &secs
	})
	target := r.exp.Spec.Recovery.RTO.D()
	// The resolution achieved: the scrape interval when changes were
	// placed by range queries, else the probe interval.
	res := time.Duration(r.rec.RTO.ResolutionSeconds * float64(time.Second))
	if rto > target {
		return api.VerdictFail, fmt.Sprintf("recovered, but measured RTO %s exceeds the target %s (resolution ±%s)", rto.Round(time.Millisecond), target, res)
	}
	if r.rec.Times.FirstImpact == nil {
		return api.VerdictPass, "no impact seen; steady state held throughout"
	}
	return api.VerdictPass, fmt.Sprintf("recovered in %s (target %s, resolution ±%s)", rto.Round(time.Millisecond), target, res)
}
