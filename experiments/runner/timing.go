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
	// scrape is Prometheus' scrape interval (0: unknown).
	scrape time.Duration
	// lag is, per recovery probe, how long before an evaluation that
	// holds its answer vouches for: its range window less one scrape (a
	// rate over the last minute that holds says the last minute's
	// requests succeeded); 0 for a probe of the latest value (a gauge).
	lag map[string]time.Duration
	// lastSLO is the time of the last SLO round, lastRecoveryRound of the
	// last round of distinct recovery probes during the fault; the next
	// round judges every step since.
	lastSLO           time.Time
	lastRecoveryRound time.Time
	// lastFailing names the recovery probes that failed at the last step
	// fed to the recovery tracker.
	lastFailing []string
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

// chooseResolution decides how precisely the run judges and times
// changes: at every scrape when Prometheus scrapes more often than the
// probe interval (each round then judges the steps since the previous one
// with range queries), else at every probe round.
func (r *Runner) chooseResolution(ctx context.Context) {
	interval := r.exp.Spec.ProbeInterval.D()
	si, err := r.deps.Prober.ScrapeInterval(ctx)
	if err != nil {
		r.event(fmt.Sprintf("judged every probe round, times measured to ±%s (scrape interval unknown: %v)", interval, err))
		return
	}
	r.timing.scrape = si
	if si <= 0 || si >= interval {
		r.event(fmt.Sprintf("judged every probe round, times measured to ±%s, the probe interval (Prometheus scrapes every %s)", interval, si))
		return
	}
	r.timing.refineStep = si
	r.update(func(rec *api.Run) { rec.RTO.ResolutionSeconds = si.Seconds() })
	r.event(fmt.Sprintf("judged at every scrape, times measured to ±%s, Prometheus' scrape interval (probe rounds every %s; the scrapes between rounds by range queries)", si, interval))
}

// judgeStep is the spacing of the results the run judges: the scrape
// interval when rounds are filled in by range queries, else the probe
// interval.
func (r *Runner) judgeStep() time.Duration {
	if r.timing.refineStep > 0 {
		return r.timing.refineStep
	}
	return r.exp.Spec.ProbeInterval.D()
}

// steps evaluates ps at every judging step in (from, to), one range query
// per probe; nil when the rounds are the judging steps (or from is unset).
func (r *Runner) steps(ctx context.Context, ps []probes.Probe, from, to time.Time) (probes.Grid, error) {
	step := r.timing.refineStep
	if step <= 0 || from.IsZero() || to.Sub(from) <= step {
		return nil, nil
	}
	return r.evalGrid(ctx, ps, from.Add(step), to.Add(-step/2), step)
}

// evalGrid evaluates ps at start, start+step, … up to end.
func (r *Runner) evalGrid(ctx context.Context, ps []probes.Probe, start, end time.Time, step time.Duration) (probes.Grid, error) {
	var grid probes.Grid
	for _, p := range ps {
		rs, err := r.deps.Prober.EvalRange(ctx, p, start, end, step)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		if grid == nil {
			grid = make(probes.Grid, len(rs))
		}
		if len(rs) != len(grid) {
			return nil, fmt.Errorf("%s: range query returned %d steps, want %d", p.Name, len(rs), len(grid))
		}
		for i := range rs {
			grid[i] = append(grid[i], rs[i])
		}
	}
	return grid, nil
}

// cover turns one round of ps (res, evaluated now) into the rows it
// judges: every step since the previous round of the same probes (*last),
// then the round itself, so no scrape between two rounds goes unjudged.
// When the steps cannot be evaluated the round counts as blind: what
// happened between the rounds was not seen.
func (r *Runner) cover(ctx context.Context, ps []probes.Probe, last *time.Time, res []probes.Result) probes.Grid {
	if len(res) == 0 {
		return nil
	}
	prev := *last
	*last = res[0].Time
	if len(probes.Blind(res)) > 0 {
		return probes.Grid{res}
	}
	grid, err := r.steps(ctx, ps, prev, res[0].Time)
	if err != nil {
		r.lg.Warn("range query over the last round failed; the round counts as blind", zap.Error(err))
		blind := make([]probes.Result, len(res))
		for i, x := range res {
			x.OK, x.Err = false, fmt.Errorf("%w: steps since the last round: %w", probes.ErrQuery, err)
			x.Error = x.Err.Error()
			blind[i] = x
		}
		return probes.Grid{blind}
	}
	return append(grid, res)
}

// noteImpact marks the first failing step of the SLO probes. A probe that
// could not be evaluated is no impact: only judged results count.
func (r *Runner) noteImpact(rows probes.Grid) {
	if r.rec.Times.FirstImpact != nil {
		return
	}
	for _, row := range rows {
		f := probes.Failing(probes.Judged(row))
		if len(f) == 0 {
			continue
		}
		t := f[0].Time
		r.update(func(rec *api.Run) { rec.Times.FirstImpact = &t })
		r.event("first impact: " + describeFailures(f))
		return
	}
}

// feedRecovery feeds the recovery tracker from the first impact on, one
// row per judging step. The recovery probes are evaluated here too when
// they differ from the SLO probes, so a system that heals while the fault
// is still active gets credit for it.
func (r *Runner) feedRecovery(ctx context.Context, slo probes.Grid) {
	spec := &r.exp.Spec
	if r.rec.Times.FirstImpact == nil && r.rec.Phase != api.PhaseRecovering {
		return
	}
	tm := &r.timing
	hold := spec.Recovery.HoldFor.D()
	if tm.recovery == nil {
		tm.recovery = &probes.RecoveryTracker{HoldFor: hold}
	}
	rows := slo
	if r.rec.Phase != api.PhaseRecovering && !sameProbes(spec.Recovery.Probes, spec.SteadyState.Probes) {
		res := r.evalAll(ctx, spec.Recovery.Probes)
		rows = r.cover(ctx, spec.Recovery.Probes, &tm.lastRecoveryRound, res)
	}
	for _, row := range rows {
		if len(row) == 0 || len(probes.Blind(row)) > 0 {
			// Blind: no evidence either way; the streak neither grows
			// nor breaks.
			continue
		}
		failing := probes.Failing(row)
		ok := len(failing) == 0
		t := row[0].Time
		if _, done := tm.recovery.Recovered(); done && !ok {
			// Healed during the fault, then failed again: start over.
			tm.recovery = &probes.RecoveryTracker{HoldFor: hold}
		}
		since := t
		if ok && len(tm.lastFailing) > 0 {
			// A streak starts. A probe that failed at the last step and
			// holds now vouches for its whole window: users were fine
			// from the start of the window of the last of them to heal.
			since = t.Add(-r.vouchesFor(tm.lastFailing))
		}
		tm.lastFailing = tm.lastFailing[:0]
		for _, f := range failing {
			tm.lastFailing = append(tm.lastFailing, f.Probe)
		}
		tm.recovery.ObserveSince(t, since, ok)
	}
}

// vouchesFor is how far before a holding evaluation the probes named
// vouch for, at least: the shortest of their lags.
func (r *Runner) vouchesFor(names []string) time.Duration {
	d := time.Duration(-1)
	for _, n := range names {
		l := r.timing.lag[n]
		if d < 0 || l < d {
			d = l
		}
	}
	return max(d, 0)
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
