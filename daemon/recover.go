package daemon

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments/runner"
)

// restartRevertTimeout bounds each agent call of the restart recovery.
const restartRevertTimeout = 10 * time.Second

// recoverInterrupted marks runs that were in progress when chaosd last
// stopped as interrupted and reverts whatever faults they may have left,
// with the runner's own revert-and-record (runner.RevertFault).
func (d *Daemon) recoverInterrupted(ctx context.Context) {
	runs, err := d.store.List()
	if err != nil {
		d.lg.Warn("some run records could not be read", zap.Error(err))
	}
	for _, r := range runs {
		if r.Phase == api.PhaseDone {
			d.metrics.restored(r)
			continue
		}
		phase := r.Phase
		for i := range r.Faults {
			f := &r.Faults[i]
			if f.RevertedAt != nil {
				continue
			}
			var ag runner.Reverter
			if a, err := d.fleet.Agent(f.Cluster, f.Node); err == nil {
				ag = a
			}
			if err := runner.RevertFault(context.WithoutCancel(ctx), ag, f, restartRevertTimeout); err != nil {
				d.lg.Error("revert after restart", zap.String("run", r.ID), zap.String("fault", f.AgentFaultID),
					zap.String("node", f.Node), zap.Error(err))
				continue
			}
			d.lg.Info("fault reverted", zap.String("run", r.ID), zap.String("fault", f.AgentFaultID), zap.String("node", f.Node),
				zap.String("reason", "restart-recovery"), zap.Bool("verified", f.Verified))
		}
		d.expireLeftSilences(ctx, &r)
		now := time.Now()
		r.Phase = api.PhaseDone
		r.Verdict = api.VerdictError
		r.Interrupted = true
		r.Reason = fmt.Sprintf("interrupted: chaosd stopped during phase %s; faults reverted at restart", phase)
		r.FinishedAt = &now
		r.Current = nil
		r.Events = append(r.Events, api.Event{Time: now, Phase: api.PhaseDone, Message: r.Reason})
		if err := d.store.Save(r); err != nil {
			d.lg.Error("save interrupted run", zap.String("run", r.ID), zap.Error(err))
		}
		d.metrics.finished(r)
		d.lg.Warn("run was interrupted by a restart", zap.String("run", r.ID), zap.String("phase", string(phase)))
	}
	d.recoverInterruptedSuites()
}

// expireLeftSilences ends the Alertmanager silences an interrupted run
// left: the on-call team must hear about real trouble again as soon as
// the planned chaos is over, not when the silence lapses.
func (d *Daemon) expireLeftSilences(ctx context.Context, r *api.Run) {
	for i := range r.Silences {
		s := &r.Silences[i]
		if s.ExpiredAt != nil {
			continue
		}
		if d.silencer == nil {
			s.Error = fmt.Sprintf("chaosd restarted without an Alertmanager configured; the silence lapses at %s", s.EndsAt.UTC().Format(time.RFC3339))
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restartRevertTimeout)
		err := d.silencer.ExpireSilence(cctx, s.ID)
		cancel()
		if err != nil {
			s.Error = fmt.Sprintf("expire after restart: %v (it lapses at %s)", err, s.EndsAt.UTC().Format(time.RFC3339))
			d.lg.Error("expire silence after restart", zap.String("run", r.ID), zap.String("silence", s.ID), zap.Error(err))
			continue
		}
		now := time.Now()
		s.ExpiredAt, s.ExpiredBy = &now, "chaosd restart"
		d.lg.Info("silence expired", zap.String("run", r.ID), zap.String("silence", s.ID), zap.String("reason", "restart-recovery"))
	}
}
