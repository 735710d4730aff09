package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/promql"
)

// Every request judged: the SLO probes (steady state, recovery) judge
// what users saw, not a sample of it. Three rules make that so:
//
//   - every round judges every step since the previous round (coverage
//     in timing.go), so a scrape between two rounds is never skipped;
//   - a range window must reach back over a step to the last sample the
//     previous step saw (judging step + scrape interval), which
//     $__rate_interval always does (prepareProbes);
//   - the steady state is judged at every step of a baseline window
//     before the inject (steadyState), not from one round.

// prepareProbes expands $__rate_interval in every probe, for the judging
// step and scrape interval the run found, refuses SLO probes whose windows
// would skip requests, and notes how far back each recovery probe's
// answer reaches. It returns a reason when the run cannot be judged.
func (r *Runner) prepareProbes() string {
	step := r.judgeStep()
	scrape := r.timing.scrape
	basis := scrape
	if basis <= 0 {
		// Unknown: assume Prometheus is at least as fresh as the rounds.
		basis = r.exp.Spec.ProbeInterval.D()
	}
	window := promql.Window(step, basis)

	exp := *r.exp
	spec := &exp.Spec
	spec.SteadyState.Probes = expand(spec.SteadyState.Probes, window)
	spec.Recovery.Probes = expand(spec.Recovery.Probes, window)
	if spec.Effects != nil {
		ef := *spec.Effects
		ef.Probes = expand(ef.Probes, window)
		spec.Effects = &ef
	}
	spec.AbortWhen = slices.Clone(spec.AbortWhen)
	for i := range spec.AbortWhen {
		spec.AbortWhen[i].Query = promql.Expand(spec.AbortWhen[i].Query, window)
	}
	r.exp = &exp

	r.timing.lag = map[string]time.Duration{}
	var short []string
	check := func(block string, ps []probes.Probe, lags bool) {
		for _, p := range ps {
			info, err := promql.Analyze(p.Query)
			if err != nil {
				short = append(short, fmt.Sprintf("%s probe %s: %v", block, p.Name, err))
				continue
			}
			for _, w := range info.Windows {
				if scrape > 0 && w < step+scrape {
					short = append(short, fmt.Sprintf("%s probe %s reads a %s window, shorter than the judging step %s + the scrape interval %s: "+
						"requests between two evaluations would go unjudged (use [%s], %s in this run)",
						block, p.Name, w, step, scrape, promql.RateInterval, window))
				}
			}
			if lags {
				r.timing.lag[p.Name] = max(info.Lookback(window)-basis, 0)
			}
		}
	}
	check("steady-state", spec.SteadyState.Probes, false)
	check("recovery", spec.Recovery.Probes, true)
	if len(short) > 0 {
		return "probes would skip requests: " + strings.Join(short, "; ")
	}
	r.event(fmt.Sprintf("%s = %s (judging step %s + scrape interval, at least four scrapes)", promql.RateInterval, window, step))
	return ""
}

func expand(ps []probes.Probe, window time.Duration) []probes.Probe {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Query = promql.Expand(out[i].Query, window)
	}
	return out
}

// steadyState judges the steady-state probes at every judging step of the
// baseline window that ends now: they must have held throughout before
// anything is injected. A system that failed a few requests in the
// baseline is not in its steady state.
func (r *Runner) steadyState(ctx context.Context) (api.Verdict, string) {
	ps := r.exp.Spec.SteadyState.Probes
	base := r.exp.Spec.SteadyState.Baseline.D()
	step := r.judgeStep()
	r.setPhase(api.PhaseSteadyState, fmt.Sprintf("judging steady state over the last %s, every %s", base, step))
	now := r.evalAll(ctx, ps)
	if blind := probes.Blind(now); len(blind) > 0 {
		r.recordRound(api.PhaseSteadyState, ps, now, false)
		// Not evidence against the system: the tool could not look.
		return api.VerdictError, "steady state could not be judged: " + describeFailures(blind)
	}
	var rows probes.Grid
	if base > step {
		at := now[0].Time
		grid, err := r.evalGrid(ctx, ps, at.Add(-base), at.Add(-step/2), step)
		if err != nil {
			return api.VerdictError, fmt.Sprintf("steady state could not be judged over the %s baseline: %v", base, err)
		}
		rows = grid
	}
	r.recordSteps(api.PhaseSteadyState, ps, rows)
	r.recordRound(api.PhaseSteadyState, ps, now, false)
	rows = append(rows, now)
	if f := failedSteps(ps, rows); f != "" {
		return api.VerdictFail, fmt.Sprintf("steady state not met over the %s baseline before inject: %s", base, f)
	}
	return "", ""
}

// failedSteps describes, per probe, the steps at which it did not hold:
// how many of how many, the first one and its value.
func failedSteps(ps []probes.Probe, rows probes.Grid) string {
	var parts []string
	for i, p := range ps {
		var first *probes.Result
		n, total := 0, 0
		for _, row := range rows {
			if i >= len(row) {
				continue
			}
			total++
			if !row[i].OK {
				n++
				if first == nil {
					first = &row[i]
				}
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s failed at %d of %d steps (first at %s: %s)",
				p.Name, n, total, first.Time.UTC().Format("15:04:05.000"), fmtValue(*first)))
		}
	}
	return strings.Join(parts, "; ")
}
