package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// full returns a run with every pointer and slice field set.
func full() Run {
	t := func(s int64) *time.Time { v := time.Unix(s, 0).UTC(); return &v }
	rto := 12.5
	res := ProbeResult{Probe: "p", Time: *t(5), OK: true, Value: 1, Series: []SeriesValue{{Labels: "{}", Value: 1, OK: true}}}
	return Run{
		ID: "r-1", Experiment: "e", Trigger: TriggerManual, Phase: PhaseDone, Verdict: VerdictPass,
		AdHoc:     &AdHoc{File: "e.yaml", SHA256: "00", Spec: "kind: Experiment\n"},
		CreatedAt: *t(1), FinishedAt: t(9),
		Times: Times{Started: t(1), Injected: t(2), FirstImpact: t(3), Reverted: t(4), Recovered: t(5)},
		RTO:   RTO{MeasuredSeconds: &rto, TargetSeconds: 900, ResolutionSeconds: 0.25},
		Faults: []FaultRecord{{Name: "f", Kind: "partition", Cluster: "c1", Node: "n1", AgentFaultID: "r-1.f",
			InjectedAt: t(2), RevertedAt: t(4), Verified: true, Undo: []byte(`{"url":"http://v"}`), SelfExpiry: "kernel", SelfExpiresAt: t(6)}},
		Phases:  []PhaseResult{{Phase: PhaseSteadyState, Probes: []ProbeSummary{{Name: "p", Evaluations: 1, Failures: 1, FirstFailure: t(3), Last: res}}}},
		Current: []ProbeResult{res},
		Events:  []Event{{Time: *t(2), Phase: PhaseInjecting, Message: "in"}},
		Alerts: []AlertCheck{{Name: "A", Labels: map[string]string{"k": "v"}, Expected: true, PendingAt: t(3), FiredAt: t(3),
			ResolvedAt: t(5), TTASeconds: &rto, TTRSeconds: &rto, OK: true}},
		Silences: []Silence{{ID: "s", Matchers: []string{`alertname="A"`}, EndsAt: *t(9), ExpiredAt: t(8)}},
		DataLoss: &DataLoss{TargetSeconds: 300, Writes: 3, Acknowledged: 3, Lost: 1, FirstLost: t(3), LastLost: t(3), MeasuredSeconds: &rto},
	}
}

func TestDeepCopySharesNothing(t *testing.T) {
	orig := full()
	want, _ := json.Marshal(orig)
	cp := orig.DeepCopy()
	if !reflect.DeepEqual(cp, orig) {
		t.Fatalf("copy differs:\n%+v\n%+v", cp, orig)
	}
	// Scribble over every pointer and slice element of the copy.
	*cp.FinishedAt = time.Time{}
	cp.AdHoc.Spec = "x"
	*cp.Times.Started, *cp.Times.Injected, *cp.Times.FirstImpact = time.Time{}, time.Time{}, time.Time{}
	*cp.Times.Reverted, *cp.Times.Recovered = time.Time{}, time.Time{}
	*cp.RTO.MeasuredSeconds = -1
	*cp.Faults[0].InjectedAt, *cp.Faults[0].RevertedAt = time.Time{}, time.Time{}
	cp.Faults[0].Node = "x"
	cp.Faults[0].Undo[2] = 'X'
	*cp.Faults[0].SelfExpiresAt = time.Time{}
	*cp.Phases[0].Probes[0].FirstFailure = time.Time{}
	cp.Phases[0].Probes[0].Last.Series[0].Value = -1
	cp.Phases[0].Probes[0].Failures = 99
	cp.Current[0].Series[0].Labels = "x"
	cp.Events[0].Message = "x"
	cp.Alerts[0].Labels["k"] = "x"
	*cp.Alerts[0].PendingAt, *cp.Alerts[0].FiredAt, *cp.Alerts[0].ResolvedAt = time.Time{}, time.Time{}, time.Time{}
	*cp.Alerts[0].TTASeconds, *cp.Alerts[0].TTRSeconds = -1, -1
	cp.Silences[0].Matchers[0] = "x"
	*cp.Silences[0].ExpiredAt = time.Time{}
	*cp.DataLoss.FirstLost, *cp.DataLoss.LastLost, *cp.DataLoss.MeasuredSeconds = time.Time{}, time.Time{}, -1
	got, _ := json.Marshal(orig)
	if string(got) != string(want) {
		t.Fatalf("changing the copy changed the original:\n got %s\nwant %s", got, want)
	}
}

func TestDeepCopyKeepsNil(t *testing.T) {
	cp := Run{ID: "r"}.DeepCopy()
	if cp.Faults != nil || cp.Phases != nil || cp.Current != nil || cp.Events != nil || cp.FinishedAt != nil ||
		cp.Alerts != nil || cp.Silences != nil || cp.DataLoss != nil {
		t.Fatalf("nil fields became non-nil: %+v", cp)
	}
}
