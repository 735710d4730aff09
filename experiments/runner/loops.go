package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes"
)

// observe holds the faults for the spec's duration (their leases are
// renewed meanwhile, leases.go; a fault lost comes on leaseLost) and runs
// one observation round (round.go) every probe interval. It only
// schedules: it returns a verdict only when the run must end without
// recovery.
func (r *Runner) observe(ctx context.Context, leaseLost <-chan string) (api.Verdict, string) {
	spec := &r.exp.Spec
	end := r.rec.Times.Injected.Add(spec.Duration.D())
	ob := &observation{proven: spec.Effects == nil}
	if ob.proven {
		r.setPhase(api.PhaseObserving, fmt.Sprintf("holding faults for %s", spec.Duration.D()))
	} else {
		ob.effectsDeadline = r.rec.Times.Injected.Add(spec.Effects.Within.D())
		r.setPhase(api.PhaseEffects, fmt.Sprintf("proving the faults took hold (within %s)", spec.Effects.Within.D()))
	}

	ob.aborts = make([]*probes.AbortTracker, len(spec.AbortWhen))
	for i, a := range spec.AbortWhen {
		ob.aborts[i] = &probes.AbortTracker{For: a.For.D()}
	}
	tick := time.NewTicker(spec.ProbeInterval.D())
	defer tick.Stop()
	for {
		if vd, rs := r.observeRound(ctx, ob); vd != "" {
			return vd, rs
		}
		if !time.Now().Before(end) {
			if !ob.proven {
				return api.VerdictError, "the faults were held to the end but their effects were never proven"
			}
			return "", ""
		}
		wait := time.NewTimer(time.Until(end))
		select {
		case <-ctx.Done():
			wait.Stop()
			return api.VerdictError, "interrupted: chaosd is shutting down"
		case why := <-r.abortCh:
			wait.Stop()
			return api.VerdictAborted, "aborted by user: " + why
		case why := <-leaseLost:
			wait.Stop()
			return api.VerdictError, "fault ended early: " + why
		case <-tick.C:
		case <-wait.C:
		}
		wait.Stop()
	}
}

// recover polls the recovery probes after the revert (one recovery round
// every probe interval) until they have held continuously for holdFor
// (counted from the revert) or the timeout ends.
func (r *Runner) recover(ctx context.Context) (api.Verdict, string) {
	rc := r.exp.Spec.Recovery
	r.setPhase(api.PhaseRecovering, fmt.Sprintf("waiting for recovery (hold %s, timeout %s)", rc.HoldFor.D(), rc.Timeout.D()))
	reverted := *r.rec.Times.Reverted
	deadline := reverted.Add(rc.Timeout.D())
	tick := time.NewTicker(r.exp.Spec.ProbeInterval.D())
	defer tick.Stop()
	for {
		res := r.recoveryRound(ctx)
		now := time.Now()
		if start, ok := r.timing.recovery.Recovered(); ok && !now.Before(reverted.Add(rc.HoldFor.D())) {
			return r.verdict(start)
		}
		if now.After(deadline) {
			if !r.recoveryJudgeable() {
				// The tool could not look, so it cannot say the system
				// failed: an error, with how long it was blind.
				return api.VerdictError, fmt.Sprintf("recovery could not be judged: the probes were blind for %s of the %s after the revert (%s)",
					(time.Duration(r.rec.BlindSeconds * float64(time.Second))).Round(time.Millisecond), rc.Timeout.D(), describeFailures(probes.Blind(res)))
			}
			return api.VerdictFail, fmt.Sprintf("not recovered: recovery probes did not hold for %s within %s of the revert (%s)",
				rc.HoldFor.D(), rc.Timeout.D(), describeFailures(probes.Failing(res)))
		}
		select {
		case <-ctx.Done():
			return api.VerdictError, "interrupted: chaosd is shutting down"
		case why := <-r.abortCh:
			return api.VerdictAborted, "aborted by user during recovery: " + why
		case <-tick.C:
		}
	}
}
