package daemon

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/prom"
)

const timelineExperiment = `apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata:
  name: cut
spec:
  targets:
    - name: c1-nodes
      cluster: c1
  faults:
    - name: cut
      kind: partition
      target: c1-nodes
      partition:
        cidrs: [10.1.0.0/16]
  duration: 60s
  probeInterval: 2s
  steadyState:
    probes:
      - name: healthy
        query: min(sut_healthy)
        op: "=="
        threshold: 1
      - name: renamed-since
        query: up
        op: ">="
        threshold: 1
      - name: success-rate
        query: sum(rate(ok[$__rate_interval])) / sum(rate(all[$__rate_interval]))
        op: ">="
        threshold: 0.99
  effects:
    probes:
      - name: cut-visible
        query: max(sut_cut)
        op: between
        min: 1
        max: 2
        match: all
  abortWhen:
    - name: on-fire
      query: sum(rate(errors[$__rate_interval]))
      op: ">"
      threshold: 5
      onEmpty: pass
      for: 10s
`

func TestTimelineProbesMergeRecordAndExperiment(t *testing.T) {
	exp, err := experiments.Parse([]byte(timelineExperiment), "cut.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The run reached the steady state and the effects; one probe of the
	// record is no longer in the experiment, one changed its query since.
	run := api.Run{ID: "r-1", Experiment: "cut", Phases: []api.PhaseResult{
		{Phase: api.PhaseSteadyState, Probes: []api.ProbeSummary{
			{Name: "healthy", Query: "min(sut_healthy)", Condition: "== 1"},
			{Name: "gone", Query: "sum(x)", Condition: "between 0.5 and 1e+06"},
			{Name: "renamed-since", Query: "up{job=\"old\"}", Condition: ">= 1"},
			{Name: "success-rate", Query: "sum(rate(ok[4s])) / sum(rate(all[4s]))", Condition: ">= 0.99"},
		}},
		{Phase: api.PhaseEffects, Probes: []api.ProbeSummary{
			{Name: "cut-visible", Query: "max(sut_cut)", Condition: "between 1 and 2"},
		}},
	}}
	noFallback := func() time.Duration { t.Error("the record shows the window: no fallback needed"); return 0 }
	got := timelineProbes(run, exp, noFallback)
	type row struct {
		name, query, cond string
		match             probes.Match
		phases            []api.Phase
	}
	var rows []row
	for _, tp := range got {
		rows = append(rows, row{tp.probe.Name, tp.probe.Query, tp.condition, tp.probe.Match, tp.phases})
	}
	want := []row{
		// In both: the experiment's probe (its match rule), the phases of both.
		{"healthy", "min(sut_healthy)", "== 1", "", []api.Phase{api.PhaseSteadyState, api.PhaseObserving, api.PhaseRecovering}},
		{"gone", "sum(x)", "between 0.5 and 1e+06", "", []api.Phase{api.PhaseSteadyState}},
		{"renamed-since", `up{job="old"}`, ">= 1", "", []api.Phase{api.PhaseSteadyState}},
		// $__rate_interval as the run expanded it.
		{"success-rate", "sum(rate(ok[4s])) / sum(rate(all[4s]))", ">= 0.99", "", []api.Phase{api.PhaseSteadyState, api.PhaseObserving, api.PhaseRecovering}},
		{"cut-visible", "max(sut_cut)", "between 1 and 2", probes.MatchAll, []api.Phase{api.PhaseEffects}},
		// Not reached by the run: from the experiment, $__rate_interval
		// written as the run wrote it for the others.
		{"on-fire", "sum(rate(errors[4s]))", "> 5", "", []api.Phase{api.PhaseAbort}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("timeline probes:\n got %+v\nwant %+v", rows, want)
	}
	if p := got[1].probe; p.Op != probes.OpBetween || *p.Min != 0.5 || *p.Max != 1e6 || p.Validate() != nil {
		t.Errorf("probe rebuilt from the record's condition: %+v", p)
	}
	if got[5].probe.OnEmpty != probes.OnEmptyPass {
		t.Errorf("abort probe lost its onEmpty rule: %+v", got[5].probe)
	}

	// Without the experiment (deleted since), the record alone.
	if got := timelineProbes(run, nil, noFallback); len(got) != 5 || got[0].probe.Threshold == nil || *got[0].probe.Threshold != 1 {
		t.Errorf("record alone: %+v", got)
	}

	// A run that evaluated nothing (preflight failed): every probe from
	// the experiment, $__rate_interval as the runner would write it.
	got = timelineProbes(api.Run{ID: "r-2", Experiment: "cut"}, exp, func() time.Duration { return 8 * time.Second })
	if len(got) != 5 || got[2].probe.Query != "sum(rate(ok[8s])) / sum(rate(all[8s]))" || got[4].probe.Query != "sum(rate(errors[8s]))" {
		t.Errorf("probes of a run that evaluated none: %+v", got)
	}
}

func TestExpandedAs(t *testing.T) {
	for _, tt := range []struct {
		spec, query, window string
		same                bool
	}{
		{"up", "up", "", true},
		{"up", "up{a=\"b\"}", "", false},
		{"rate(x[$__rate_interval])", "rate(x[4s])", "4s", true},
		{"rate(x[$__rate_interval]) / rate(y[$__rate_interval])", "rate(x[1m30s]) / rate(y[1m30s])", "1m30s", true},
		{"rate(x[$__rate_interval]) / rate(y[$__rate_interval])", "rate(x[4s]) / rate(y[5s])", "", false},
		{"rate(x[$__rate_interval])", "rate(z[4s])", "", false},
		{"rate(x.y[$__rate_interval])", "rate(xzy[4s])", "", false}, // metacharacters are literal
	} {
		w, same := expandedAs(tt.spec, tt.query)
		if w != tt.window || same != tt.same {
			t.Errorf("expandedAs(%q, %q) = %q, %v; want %q, %v", tt.spec, tt.query, w, same, tt.window, tt.same)
		}
	}
}

func TestProbeFromRecord(t *testing.T) {
	for _, tt := range []struct {
		cond string
		ok   bool
	}{
		{">= 0.99", true}, {"< +Inf", true}, {"!= -3", true}, {"between 0.1 and 0.5", true},
		{"== ?", false}, {"between 1 and ?", false}, {"~ 1", false}, {"", false}, {">= NaN", false},
	} {
		p := probeFromRecord(api.ProbeSummary{Name: "p", Query: "q", Condition: tt.cond})
		if ok := p.Validate() == nil; ok != tt.ok {
			t.Errorf("%q: valid %v, want %v (%+v)", tt.cond, ok, tt.ok, p)
		}
		if tt.ok && p.Condition() != tt.cond {
			t.Errorf("%q reads back as %q", tt.cond, p.Condition())
		}
	}
}

func TestTimelineWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	exp := &experiments.Experiment{Spec: experiments.Spec{ProbeInterval: experiments.Duration(2 * time.Second)}}
	tests := []struct {
		name            string
		run             api.Run
		exp             *experiments.Experiment
		now             time.Time
		start, end      time.Time
		step            time.Duration
		wantMaxedPoints bool
	}{
		{name: "finished: resolution step, 30s before start, 5s after the end",
			run: api.Run{CreatedAt: t0, Times: api.Times{Started: at(time.Second)}, FinishedAt: at(90 * time.Second),
				RTO: api.RTO{ResolutionSeconds: 0.25}},
			now: t0.Add(time.Hour), start: t0.Add(-29 * time.Second), end: t0.Add(95 * time.Second), step: 250 * time.Millisecond},
		{name: "running: up to now",
			run: api.Run{CreatedAt: t0, Times: api.Times{Started: at(0)}, RTO: api.RTO{ResolutionSeconds: 1}},
			now: t0.Add(time.Minute), start: t0.Add(-30 * time.Second), end: t0.Add(time.Minute), step: time.Second},
		{name: "just finished: not past now",
			run: api.Run{CreatedAt: t0, FinishedAt: at(time.Minute), RTO: api.RTO{ResolutionSeconds: 1}},
			now: t0.Add(61 * time.Second), start: t0.Add(-30 * time.Second), end: t0.Add(61 * time.Second), step: time.Second},
		{name: "no resolution recorded: the probe interval",
			run: api.Run{CreatedAt: t0, FinishedAt: at(time.Minute)}, exp: exp,
			now: t0.Add(time.Hour), start: t0.Add(-30 * time.Second), end: t0.Add(65 * time.Second), step: 2 * time.Second},
		{name: "long run: step widened to the point budget",
			run: api.Run{CreatedAt: t0, FinishedAt: at(3 * time.Hour), RTO: api.RTO{ResolutionSeconds: 1}},
			now: t0.Add(24 * time.Hour), start: t0.Add(-30 * time.Second), end: t0.Add(3*time.Hour + 5*time.Second),
			step: 9859 * time.Millisecond, wantMaxedPoints: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, step := timelineWindow(tt.run, tt.exp, tt.now)
			if !start.Equal(tt.start) || !end.Equal(tt.end) || step != tt.step {
				t.Fatalf("window %s..%s step %s; want %s..%s step %s", start, end, step, tt.start, tt.end, tt.step)
			}
			n := int(end.Sub(start)/step) + 1
			if n > timelineMaxPoints || (tt.wantMaxedPoints && n < timelineMaxPoints-2) {
				t.Errorf("%d points (budget %d)", n, timelineMaxPoints)
			}
		})
	}
}

func TestTimelineAbortPointsFireLikeTheRunner(t *testing.T) {
	p := probes.Probe{Name: "on-fire", Query: "q", Op: probes.OpGT, Threshold: ptrTo(5.0), OnEmpty: probes.OnEmptyPass}
	one := []probes.SeriesValue{{Labels: "{}", Value: 7}}
	res := []probes.Result{
		{Value: 7, OK: true, Series: one},                    // condition (bad state) holds: firing
		{Value: 1, OK: false, Series: one},                   // quiet
		{Value: math.NaN(), OK: true},                        // empty, onEmpty pass: quiet
		{Value: math.NaN(), Error: "prometheus unreachable"}, // cannot be judged: firing
		{Value: math.NaN(), Error: "NaN", Series: one[:1]},   // NaN: firing
	}
	var got []bool
	for _, pt := range points(p, true, res) {
		got = append(got, pt.OK)
	}
	if want := []bool{false, true, true, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("abort points OK = %v, want %v", got, want)
	}
	if pts := points(p, false, res); !pts[0].OK || pts[1].OK {
		t.Errorf("a healthy-state probe's points are its judgement: %+v", pts)
	}
}

func ptrTo[T any](v T) *T { return &v }

// A Prometheus nobody answers at: the timeline says why it has no curves,
// once, and still lists the probes.
func TestTimelineWithoutPrometheus(t *testing.T) {
	ev, err := prom.New("http://127.0.0.1:1", prom.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	exp, err := experiments.Parse([]byte(timelineExperiment), "cut.yaml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	started := now.Add(-time.Minute)
	run := api.Run{ID: "r-1", Experiment: "cut", CreatedAt: started, Times: api.Times{Started: &started}, FinishedAt: &now,
		RTO: api.RTO{ResolutionSeconds: 1}}
	tl := buildTimeline(context.Background(), ev, run, exp, now)
	if !strings.Contains(tl.Error, "probe curves unavailable") || !strings.Contains(tl.Error, "unreachable") {
		t.Errorf("timeline error %q, want it to say Prometheus is unreachable", tl.Error)
	}
	if len(tl.Series) != 5 || tl.Series[0].Name != "healthy" || tl.Series[0].Threshold == nil || len(tl.Series[0].Points) != 0 {
		t.Errorf("series %+v, want the 5 probes without points", tl.Series)
	}
	if tl.RunID != "r-1" || tl.StepSeconds != 1 || !tl.Start.Equal(started.Add(-30*time.Second)) {
		t.Errorf("timeline %+v", tl)
	}
}
