package runner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
)

// AlertHistory reads what alerts did (Prometheus' ALERTS series).
type AlertHistory interface {
	AlertStates(ctx context.Context, name string, labels map[string]string, start, end time.Time, step time.Duration) ([]probes.AlertPoint, error)
}

// Silencer creates and expires Alertmanager silences.
type Silencer interface {
	// CreateSilence silences alerts matching every matcher (label name →
	// value, equality) until endsAt and returns the silence's ID.
	CreateSilence(ctx context.Context, matchers map[string]string, endsAt time.Time, comment string) (string, error)
	// ExpireSilence ends a silence now; one already expired or gone is
	// not an error.
	ExpireSilence(ctx context.Context, id string) error
}

// silenceAlerts silences the expected alerts for the run, just before
// the inject: the on-call team is not paged for what was planned. The
// silences end on their own after the run's longest possible end plus
// the grace, should chaosd die; chaosd expires them when the run ends.
func (r *Runner) silenceAlerts(ctx context.Context) error {
	spec := &r.exp.Spec
	if spec.Silence == nil {
		return nil
	}
	if r.deps.Silencer == nil {
		return fmt.Errorf("spec.silence asks for Alertmanager silences and chaosd has no Alertmanager configured (alertmanager.url)")
	}
	ends := time.Now().Add(spec.Duration.D() + spec.Recovery.Timeout.D() + spec.Silence.Grace.D())
	for _, a := range spec.ExpectAlerts {
		m := map[string]string{"alertname": a.Name}
		for k, v := range a.Labels {
			m[k] = v
		}
		cctx, cancel := context.WithTimeout(ctx, r.opts.AgentTimeout)
		id, err := r.deps.Silencer.CreateSilence(cctx, m, ends, fmt.Sprintf("chaosd run %s (%s): planned chaos", r.rec.ID, r.rec.Experiment))
		cancel()
		if err != nil {
			return fmt.Errorf("silence %s: %w", a.Name, err)
		}
		now := time.Now()
		r.update(func(rec *api.Run) {
			rec.Silences = append(rec.Silences, api.Silence{ID: id, Matchers: matcherStrings(m), EndsAt: ends, CreatedAt: now})
		})
		r.event(fmt.Sprintf("silenced %s in Alertmanager until %s (silence %s)", a.Name, ends.UTC().Format(time.RFC3339), id))
	}
	return nil
}

// expireSilences ends the run's silences. It runs whatever ended the
// run; a silence it cannot expire lapses at its own end, and the record
// says so.
func (r *Runner) expireSilences(ctx context.Context) {
	for i, s := range r.Record().Silences {
		if s.ExpiredAt != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.AgentTimeout)
		err := r.deps.Silencer.ExpireSilence(cctx, s.ID)
		cancel()
		now := time.Now()
		r.update(func(rec *api.Run) {
			if err != nil {
				rec.Silences[i].Error = fmt.Sprintf("expire: %v (it lapses by itself at %s)", err, s.EndsAt.UTC().Format(time.RFC3339))
				return
			}
			rec.Silences[i].ExpiredAt, rec.Silences[i].ExpiredBy = &now, "run"
		})
		if err != nil {
			r.lg.Warn("could not expire a silence", zap.String("silence", s.ID), zap.Error(err))
			r.event(fmt.Sprintf("could not expire silence %s: %v", s.ID, err))
		}
	}
}

// checkAlerts judges the expected and forbidden alerts from the inject
// to now; with wait, it first waits (unless the run is aborted) for
// expected alerts that have not fired yet and whose deadline is still
// ahead. It returns a reason when a check failed, or a tool error when
// the alerts could not be read.
func (r *Runner) checkAlerts(ctx context.Context, wait bool) (failed, toolErr string) {
	spec := &r.exp.Spec
	if len(spec.ExpectAlerts)+len(spec.ForbidAlerts) == 0 || r.rec.Times.Injected == nil {
		return "", ""
	}
	if r.deps.Alerts == nil {
		return "", "alert checks need Prometheus' ALERTS series, and the prober cannot read them"
	}
	from := *r.rec.Times.Injected
	if r.rec.Times.FirstImpact != nil {
		from = *r.rec.Times.FirstImpact
	}
	var deadline time.Time
	for _, a := range spec.ExpectAlerts {
		if d := from.Add(a.Within.D()); d.After(deadline) {
			deadline = d
		}
	}
	step := r.judgeStep()
	for {
		checks, err := r.readAlerts(ctx, step)
		if err != nil {
			return "", "alerts could not be read: " + err.Error()
		}
		waiting := false
		for _, c := range checks {
			waiting = waiting || (c.Expected && c.FiredAt == nil)
		}
		if !wait || !waiting || !time.Now().Before(deadline) || r.aborted.Load() || ctx.Err() != nil {
			r.update(func(rec *api.Run) { rec.Alerts = checks })
			var bad []string
			for _, c := range checks {
				if !c.OK {
					bad = append(bad, c.Reason)
				}
			}
			return strings.Join(bad, "; "), ""
		}
		r.update(func(rec *api.Run) { rec.Alerts = checks })
		select {
		case <-ctx.Done():
		case <-r.abortCh:
			r.aborted.Store(true)
		case <-time.After(min(spec.ProbeInterval.D(), time.Until(deadline))):
		}
	}
}

// readAlerts reads every declared alert from the inject to now.
func (r *Runner) readAlerts(ctx context.Context, step time.Duration) ([]api.AlertCheck, error) {
	spec := &r.exp.Spec
	start := *r.rec.Times.Injected
	end := time.Now()
	impact := r.rec.Times.FirstImpact
	var out []api.AlertCheck
	read := func(a experiments.AlertRule, expected bool) error {
		pts, err := r.deps.Alerts.AlertStates(ctx, a.Name, a.Labels, start, end, step)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Name, err)
		}
		tl := probes.Timeline(pts)
		c := api.AlertCheck{Name: a.Name, Labels: a.Labels, Expected: expected,
			PendingAt: tl.Pending, FiredAt: tl.Fired, ResolvedAt: tl.Resolved, Silenced: expected && spec.Silence != nil}
		from := start
		if impact != nil {
			from = *impact
		}
		if tl.Fired != nil {
			tta := max(tl.Fired.Sub(from), 0).Seconds()
			c.TTASeconds = &tta
			if tl.Resolved != nil {
				ttr := tl.Resolved.Sub(*tl.Fired).Seconds()
				c.TTRSeconds = &ttr
			}
		}
		switch {
		case expected:
			c.WithinSeconds = a.Within.D().Seconds()
			switch {
			case tl.Fired == nil:
				c.Reason = fmt.Sprintf("expected alert %s never fired (within %s of the first impact)", a.Name, a.Within.D())
			case tl.Fired.Sub(from) > a.Within.D():
				c.Reason = fmt.Sprintf("expected alert %s fired %s after the first impact, later than %s", a.Name, tl.Fired.Sub(from).Round(time.Millisecond), a.Within.D())
			default:
				c.OK = true
				c.Reason = fmt.Sprintf("%s fired %s after the first impact", a.Name, tl.Fired.Sub(from).Round(time.Millisecond))
			}
		case tl.Fired != nil:
			c.Reason = fmt.Sprintf("alert %s fired at %s and must not", a.Name, tl.Fired.UTC().Format("15:04:05.000"))
		default:
			c.OK = true
			c.Reason = fmt.Sprintf("%s did not fire", a.Name)
		}
		out = append(out, c)
		return nil
	}
	for _, a := range spec.ExpectAlerts {
		if err := read(a, true); err != nil {
			return nil, err
		}
	}
	for _, a := range spec.ForbidAlerts {
		if err := read(a, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func matcherStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(out)
	return out
}
