package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/promql"
)

// The window and density of a run's timeline.
const (
	// timelineBefore shows the steady state before the run started.
	timelineBefore = 30 * time.Second
	// timelineAfter shows the last moments after the run finished.
	timelineAfter = 5 * time.Second
	// timelineMaxPoints bounds the points of one probe's series (a long
	// recovery widens the step rather than grow the answer).
	timelineMaxPoints = 1100
)

// rangeEvaluator is what a timeline needs of the probes' backend
// (probes/prom's Evaluator).
type rangeEvaluator interface {
	EvalRange(ctx context.Context, p probes.Probe, start, end time.Time, step time.Duration) ([]probes.Result, error)
	ScrapeInterval(ctx context.Context) (time.Duration, error)
}

// timelineProbe is one probe of a run and the phases it served in.
type timelineProbe struct {
	probe     probes.Probe
	condition string // as the record shows it
	phases    []api.Phase
}

// buildTimeline range-queries every probe of run (steady state, effects,
// recovery, abort conditions) over the run's window. exp is the run's
// experiment as chaosd knows it now (nil when it is gone). Prometheus
// failing is written into the timeline, never returned: the report renders
// without the curves.
func buildTimeline(ctx context.Context, ev rangeEvaluator, run api.Run, exp *experiments.Experiment, now time.Time) api.Timeline {
	start, end, step := timelineWindow(run, exp, now)
	tl := api.Timeline{RunID: run.ID, Start: start, End: end, StepSeconds: step.Seconds(), Series: []api.ProbeSeries{}}
	// $__rate_interval as the runner writes it, for probes the run did
	// not reach (a Prometheus that does not answer fails below anyway).
	rateWindow := func() time.Duration {
		scrape, err := ev.ScrapeInterval(ctx)
		if err != nil || scrape <= 0 {
			scrape = step
		}
		return promql.Window(step, scrape)
	}
	for _, tp := range timelineProbes(run, exp, rateWindow) {
		s := api.ProbeSeries{Name: tp.probe.Name, Query: tp.probe.Query, Condition: tp.condition,
			Op: string(tp.probe.Op), Threshold: tp.probe.Threshold, Min: tp.probe.Min, Max: tp.probe.Max,
			Phases: tp.phases, Points: []api.Point{}}
		if tl.Error == "" {
			res, err := ev.EvalRange(ctx, tp.probe, start, end, step)
			switch {
			case errors.Is(err, probes.ErrUnreachable) || ctx.Err() != nil:
				// Every other probe would fail the same way (and wait as
				// long): say it once.
				tl.Error = fmt.Sprintf("probe curves unavailable: %v", err)
			case err != nil:
				s.Error = err.Error()
			default:
				s.Points = points(tp.probe, slices.Contains(tp.phases, api.PhaseAbort), res)
			}
		}
		tl.Series = append(tl.Series, s)
	}
	return tl
}

// timelineWindow is [started - 30s, finished (or now) + 5s], no later than
// now, at the run's resolution widened to at most timelineMaxPoints points.
func timelineWindow(run api.Run, exp *experiments.Experiment, now time.Time) (start, end time.Time, step time.Duration) {
	begin := run.CreatedAt
	if run.Times.Started != nil {
		begin = *run.Times.Started
	}
	finish := now
	if run.FinishedAt != nil {
		finish = *run.FinishedAt
	}
	start = begin.Add(-timelineBefore)
	end = finish.Add(timelineAfter)
	if end.After(now) {
		end = now
	}
	step = time.Duration(run.RTO.ResolutionSeconds * float64(time.Second))
	if step <= 0 && exp != nil {
		step = exp.Spec.ProbeInterval.D()
	}
	if step <= 0 {
		step = time.Second
	}
	if !end.After(start) {
		end = start.Add(step)
	}
	// Prometheus takes the step in (float) seconds: whole milliseconds
	// keep the points where they are meant to be.
	step = max(step.Round(time.Millisecond), time.Millisecond)
	span := end.Sub(start)
	least := (span + timelineMaxPoints - 2) / (timelineMaxPoints - 1) // ceil(span / (max-1))
	least = (least + time.Millisecond - 1).Truncate(time.Millisecond)
	step = max(step, least)
	return start, end, step
}

// timelineProbes lists the probes of a run. The record says what the run
// evaluated (name, query with $__rate_interval expanded, condition per
// phase); the experiment adds what the record cannot (match and onEmpty
// rules) and the probes of phases the run did not reach, their
// $__rate_interval expanded as the run expanded the others (or to
// fallbackWindow when the record shows none). A probe whose query changed
// in the experiment since the run is taken from the record.
func timelineProbes(run api.Run, exp *experiments.Experiment, fallbackWindow func() time.Duration) []timelineProbe {
	spec := map[string]timelineProbe{} // by name, from the experiment
	var specOrder []string
	addSpec := func(p probes.Probe, phases ...api.Phase) {
		tp, ok := spec[p.Name]
		if !ok {
			tp = timelineProbe{probe: p, condition: p.Condition()}
			specOrder = append(specOrder, p.Name)
		}
		if tp.probe.Query != p.Query {
			return // two probes of one name: keep the first
		}
		tp.phases = addPhases(tp.phases, phases...)
		spec[p.Name] = tp
	}
	if exp != nil {
		s := exp.Spec
		steady := []api.Phase{api.PhaseSteadyState, api.PhaseObserving}
		if len(s.Recovery.Probes) == 0 {
			steady = append(steady, api.PhaseRecovering)
		}
		for _, p := range s.SteadyState.Probes {
			addSpec(p, steady...)
		}
		if s.Effects != nil {
			for _, p := range s.Effects.Probes {
				addSpec(p, api.PhaseEffects)
			}
		}
		for _, p := range s.Recovery.Probes {
			addSpec(p, api.PhaseRecovering)
		}
		for _, a := range s.AbortWhen {
			addSpec(a.Probe, api.PhaseAbort)
		}
	}

	var out []timelineProbe
	index := map[string]int{} // name -> position in out
	window := ""              // what the run wrote for $__rate_interval
	for _, ph := range run.Phases {
		for _, sum := range ph.Probes {
			if i, ok := index[sum.Name]; ok {
				out[i].phases = addPhases(out[i].phases, ph.Phase)
				continue
			}
			tp, ok := spec[sum.Name]
			w, same := expandedAs(tp.probe.Query, sum.Query)
			if !ok || !same || tp.condition != sum.Condition {
				// Not (or no longer) in the experiment: what the record says.
				tp = timelineProbe{probe: probeFromRecord(sum), condition: sum.Condition}
			}
			if w != "" {
				window = w
			}
			tp.probe.Query = sum.Query
			tp.phases = addPhases(tp.phases, ph.Phase)
			index[sum.Name] = len(out)
			out = append(out, tp)
		}
	}
	for _, name := range specOrder {
		if _, ok := index[name]; !ok {
			tp := spec[name]
			if window == "" && strings.Contains(tp.probe.Query, promql.RateInterval) {
				window = model.Duration(fallbackWindow()).String()
			}
			tp.probe.Query = strings.ReplaceAll(tp.probe.Query, promql.RateInterval, window)
			out = append(out, tp)
		}
	}
	return out
}

// expandedAs reports whether query is specQuery with $__rate_interval
// written as one duration, and that duration ("" when specQuery has no
// $__rate_interval).
func expandedAs(specQuery, query string) (window string, same bool) {
	if !strings.Contains(specQuery, promql.RateInterval) {
		return "", specQuery == query
	}
	parts := strings.Split(specQuery, promql.RateInterval)
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	m := regexp.MustCompile("^" + strings.Join(parts, "([0-9][0-9a-z]*)") + "$").FindStringSubmatch(query)
	if m == nil {
		return "", false
	}
	for _, w := range m[2:] {
		if w != m[1] {
			return "", false
		}
	}
	return m[1], true
}

// addPhases adds phases to have, keeping the phases' run order.
func addPhases(have []api.Phase, phases ...api.Phase) []api.Phase {
	for _, p := range phases {
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	order := func(p api.Phase) int {
		for i, q := range []api.Phase{api.PhaseSteadyState, api.PhaseEffects, api.PhaseObserving, api.PhaseAbort, api.PhaseRecovering} {
			if p == q {
				return i
			}
		}
		return 99
	}
	slices.SortStableFunc(have, func(a, b api.Phase) int { return order(a) - order(b) })
	return have
}

// probeFromRecord rebuilds a probe from a run record's summary: its
// condition as probes.Probe.Condition writes it (">= 0.99", "between 0.1
// and 0.5"). A condition that cannot be read leaves the op empty, and the
// range query reports the probe as invalid.
func probeFromRecord(s api.ProbeSummary) probes.Probe {
	p := probes.Probe{Name: s.Name, Query: s.Query}
	f := strings.Fields(s.Condition)
	num := func(s string) *float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	switch {
	case len(f) == 4 && f[0] == string(probes.OpBetween) && f[2] == "and":
		if lo, hi := num(f[1]), num(f[3]); lo != nil && hi != nil {
			p.Op, p.Min, p.Max = probes.OpBetween, lo, hi
		}
	case len(f) == 2:
		switch op := probes.Op(f[0]); op {
		case probes.OpLT, probes.OpLE, probes.OpGT, probes.OpGE, probes.OpEQ, probes.OpNE:
			if t := num(f[1]); t != nil {
				p.Op, p.Threshold = op, t
			}
		}
	}
	return p
}

// points turns judged results into the timeline's points. An abort
// condition describes the bad state: its point is OK when it does not
// fire, and it fires when its condition holds or it cannot be judged,
// except an empty result with onEmpty: pass (as the runner judges it).
func points(p probes.Probe, abort bool, res []probes.Result) []api.Point {
	out := make([]api.Point, len(res))
	for i, r := range res {
		ok := r.OK
		if abort {
			firing := r.OK
			switch {
			case r.Error != "":
				firing = true
			case len(r.Series) == 0:
				firing = p.OnEmpty != probes.OnEmptyPass
			}
			ok = !firing
		}
		out[i] = api.Point{Time: r.Time, Value: r.Value, OK: ok}
	}
	return out
}
