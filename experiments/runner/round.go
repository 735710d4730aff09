package runner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
)

// observation is the state of the observe phase between rounds.
type observation struct {
	aborts []*probes.AbortTracker
	// proven is set once the effect probes held (at once without effects).
	proven          bool
	effectsDeadline time.Time
}

// observeRound evaluates one round while the faults are in place: the SLO
// probes (first impact, recovery during the fault), the effect probes
// until they held, and the abort conditions. It returns a verdict when the
// run must end now.
func (r *Runner) observeRound(ctx context.Context, ob *observation) (api.Verdict, string) {
	spec := &r.exp.Spec
	slo := r.evalAll(ctx, spec.SteadyState.Probes)
	rows := r.cover(ctx, spec.SteadyState.Probes, &r.timing.lastSLO, slo)
	r.recordSteps(api.PhaseObserving, spec.SteadyState.Probes, rows[:len(rows)-1])
	r.recordRound(api.PhaseObserving, spec.SteadyState.Probes, rows[len(rows)-1], false)
	r.noteBlind(rows[len(rows)-1])
	r.noteImpact(rows)
	r.feedRecovery(ctx, rows)

	if !ob.proven {
		eff := spec.Effects.Probes
		res := r.evalAll(ctx, eff)
		r.recordRound(api.PhaseEffects, eff, res, true)
		switch failed := probes.Failing(res); {
		case len(failed) == 0:
			ob.proven = true
			r.setPhase(api.PhaseObserving, fmt.Sprintf("effects proven after %s; holding faults for %s",
				time.Since(*r.rec.Times.Injected).Round(time.Millisecond), spec.Duration.D()))
		case !time.Now().Before(ob.effectsDeadline):
			return api.VerdictError, fmt.Sprintf("the faults had no provable effect within %s (%s): the run proves nothing",
				spec.Effects.Within.D(), describeFailures(failed))
		}
	} else if spec.SteadyState.MustHoldDuringFault {
		for _, row := range rows {
			if failed := probes.Failing(probes.Judged(row)); len(failed) > 0 {
				return api.VerdictFail, "steady state violated while the faults were in place: " + describeFailures(failed)
			}
		}
	}

	if len(spec.AbortWhen) == 0 {
		return "", ""
	}
	aps := make([]probes.Probe, len(spec.AbortWhen))
	for i, a := range spec.AbortWhen {
		aps[i] = a.Probe
	}
	res := r.evalAll(ctx, aps)
	r.recordAbortRound(aps, res)
	for i, a := range spec.AbortWhen {
		if ob.aborts[i].Observe(res[i].Time, abortFiring(a.Probe, res[i])) {
			return api.VerdictAborted, fmt.Sprintf("abort condition %s fired for %s (value %s, condition %s)",
				a.Name, a.For.D(), fmtValue(res[i]), a.Probe.Condition())
		}
	}
	return "", ""
}

// recoveryRound evaluates the recovery probes once after the revert,
// with every step since the previous round, and feeds the impact and
// recovery bookkeeping. It returns the round's own results.
func (r *Runner) recoveryRound(ctx context.Context) []probes.Result {
	ps := r.exp.Spec.Recovery.Probes
	res := r.evalAll(ctx, ps)
	rows := r.cover(ctx, ps, &r.timing.lastSLO, res)
	last := rows[len(rows)-1]
	r.recordSteps(api.PhaseRecovering, ps, rows[:len(rows)-1])
	r.recordRound(api.PhaseRecovering, ps, last, false)
	r.noteBlind(last)
	r.noteImpact(rows)
	r.feedRecovery(ctx, rows)
	return last
}

// evalAll evaluates probes concurrently at one instant.
func (r *Runner) evalAll(ctx context.Context, ps []probes.Probe) []probes.Result {
	at := time.Now()
	out := make([]probes.Result, len(ps))
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() {
			out[i] = r.deps.Prober.Eval(ctx, ps[i], at)
			if out[i].Time.IsZero() {
				out[i].Time = at
			}
			if out[i].Probe == "" {
				out[i].Probe = ps[i].Name
			}
		})
	}
	wg.Wait()
	return out
}

// abortFiring says whether an abort probe fires in one round. Its
// condition describes the bad state, so it fires when the condition holds,
// and also when it cannot be judged: losing sight of the system during a
// fault is itself a reason to stop. An empty result with onEmpty: pass
// means "nothing bad to see" and does not fire.
func abortFiring(p probes.Probe, r probes.Result) bool {
	if r.Error != "" {
		return true
	}
	if len(r.Series) == 0 {
		return p.OnEmpty != probes.OnEmptyPass
	}
	return r.OK
}
