package report

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chaosd/chaosd/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func at(s float64) *time.Time {
	t := t0.Add(time.Duration(s * float64(time.Second)))
	return &t
}

func ptr[T any](v T) *T { return &v }

// passRun is a complete record: two nodes, three phases, a long event.
func passRun() api.Run {
	steady := []api.ProbeSummary{
		{Name: "owner-details-breaker-closed", Condition: "== 1", Evaluations: 20,
			Last: api.ProbeResult{Probe: "owner-details-breaker-closed", Time: *at(19), OK: true, Value: 1}},
		{Name: "gateway-to-visits-success", Condition: ">= 0.99", Evaluations: 20,
			Last: api.ProbeResult{Probe: "gateway-to-visits-success", Time: *at(19), OK: true, Value: 0.9987}},
	}
	observing := []api.ProbeSummary{
		{Name: "gateway-to-visits-success", Condition: ">= 0.99", Evaluations: 30, Failures: 28,
			FirstFailure: at(22),
			Last:         api.ProbeResult{Probe: "gateway-to-visits-success", Time: *at(49), OK: false, Value: 0}},
		{Name: "gateway-mostly-failing", Condition: "> 0.5", Evaluations: 30,
			Last: api.ProbeResult{Probe: "gateway-mostly-failing", Time: *at(49), OK: false, Value: math.NaN(), Error: "empty result"}},
	}
	recovering := []api.ProbeSummary{
		{Name: "gateway-to-visits-success", Condition: ">= 0.99", Evaluations: 14, Failures: 4,
			Last: api.ProbeResult{Probe: "gateway-to-visits-success", Time: *at(64), OK: true, Value: 1}},
	}
	return api.Run{
		ID: "r-20261125-100000-a1b2", Experiment: "partition-c1-c2", Trigger: api.TriggerManual,
		Phase: api.PhaseDone, Verdict: api.VerdictPass,
		Reason:    "steady state held, no abort fired, recovered in 42.0s within the 15m0s RTO",
		CreatedAt: t0, FinishedAt: at(65),
		Times: api.Times{Started: at(0), Injected: at(20), FirstImpact: at(22), Reverted: at(50), Recovered: at(64)},
		RTO:   api.RTO{MeasuredSeconds: ptr(42.0), TargetSeconds: 900, ResolutionSeconds: 1},
		Faults: []api.FaultRecord{
			{Name: "cut-tgw", Kind: "partition", Cluster: "c1", Node: "c1-node-1", AgentFaultID: "f-1",
				InjectedAt: at(20), RevertedAt: at(50), RevertReason: "duration elapsed", Verified: true},
			{Name: "cut-tgw", Kind: "partition", Cluster: "c1", Node: "c1-node-2", AgentFaultID: "f-2",
				InjectedAt: at(20.3), RevertedAt: at(50.2), RevertReason: "duration elapsed", Verified: true},
		},
		Phases: []api.PhaseResult{
			{Phase: api.PhaseSteadyState, Probes: steady},
			{Phase: api.PhaseObserving, Probes: observing},
			{Phase: api.PhaseRecovering, Probes: recovering},
		},
		Events: []api.Event{
			{Time: *at(0), Phase: api.PhasePreflight, Message: "2 agents ready in c1"},
			{Time: *at(20), Phase: api.PhaseInjecting, Message: "injected cut-tgw on c1/c1-node-1 and c1/c1-node-2"},
			{Time: *at(22), Phase: api.PhaseObserving, Message: "first impact: gateway-to-visits-success = 0.12 (condition >= 0.99); the circuit breaker getOwnerDetails opened and the gateway answers with its fallback"},
			{Time: *at(50), Phase: api.PhaseReverting, Message: "reverted cut-tgw on 2 nodes; agents verified no rule is left"},
			{Time: *at(64), Phase: api.PhaseRecovering, Message: "recovered: probes held for 10s"},
		},
	}
}

// failRun did not recover, and one fault's revert could not be verified.
func failRun() api.Run {
	r := passRun()
	r.Verdict = api.VerdictFail
	r.Reason = "not recovered within the 3m0s recovery timeout"
	r.Times.Recovered = nil
	r.RTO.MeasuredSeconds = nil
	r.RTO.ResolutionSeconds = 2
	r.Faults[1].Verified = false
	r.Faults[1].Error = "agent on c1-node-2 did not answer the verification; it reverts on its own when the lease expires"
	return r
}

// runningRun is a run still going (describe while it runs).
func runningRun() api.Run {
	r := passRun()
	r.Phase, r.Verdict, r.Reason = api.PhaseObserving, "", ""
	r.FinishedAt, r.Times.Reverted, r.Times.Recovered, r.RTO.MeasuredSeconds = nil, nil, nil, nil
	r.Faults = r.Faults[:1]
	r.Faults[0].RevertedAt, r.Faults[0].Verified = nil, false
	r.Events = r.Events[:3]
	return r
}

// dataLossRun recovered in time but lost acknowledged writes.
func dataLossRun() api.Run {
	r := passRun()
	r.Verdict = api.VerdictFail
	r.Reason = "data lost: 9 of 31 acknowledged writes lost, spanning 4.5s, more than the RPO 1s (resolution ±500ms); " + r.Reason
	r.DataLoss = &api.DataLoss{TargetSeconds: 1, Writes: 62, Acknowledged: 31, Lost: 9, FirstLost: at(15), LastLost: at(19.5), MeasuredSeconds: ptr(4.5)}
	return r
}

// alertsRun failed on a forbidden alert; the expected one fired in time,
// silenced for the run.
func alertsRun() api.Run {
	r := passRun()
	r.Verdict = api.VerdictFail
	r.Reason = "alert PetClinicGatewayBreakerOpen fired at 10:00:23.000 and must not"
	r.Alerts = []api.AlertCheck{
		{Name: "PetClinicVisitsCallsFailing", Labels: map[string]string{"team": "petclinic"}, Expected: true, WithinSeconds: 20,
			PendingAt: at(22.5), FiredAt: at(24.5), ResolvedAt: at(58), TTASeconds: ptr(2.5), TTRSeconds: ptr(33.5), Silenced: true, OK: true},
		{Name: "PetClinicGatewayBreakerOpen", PendingAt: at(22), FiredAt: at(23), ResolvedAt: at(54), TTASeconds: ptr(1.0)},
	}
	r.Silences = []api.Silence{{ID: "5c0f0b1e", Matchers: []string{`alertname="PetClinicVisitsCallsFailing"`, `team="petclinic"`},
		EndsAt: *at(400), CreatedAt: *at(19.9), ExpiredAt: at(70), ExpiredBy: "run"}}
	return r
}

func TestTextGolden(t *testing.T) {
	tests := []struct {
		name string
		run  api.Run
	}{
		{"pass", passRun()},
		{"fail", failRun()},
		{"running", runningRun()},
		{"dataloss", dataLossRun()},
		{"alerts", alertsRun()},
		{"empty", api.Run{ID: "r-1", Experiment: "x", Phase: api.PhasePending, CreatedAt: t0}},
		{"preflight-error", api.Run{
			ID: "r-2", Experiment: "partition-c1-c2", Trigger: api.TriggerSchedule, Phase: api.PhaseDone,
			Verdict: api.VerdictError, Reason: "preflight: Prometheus unreachable", CreatedAt: t0, FinishedAt: at(1),
			Times:  api.Times{Started: at(0.2)},
			RTO:    api.RTO{TargetSeconds: 900, ResolutionSeconds: 1},
			Events: []api.Event{{Time: *at(0.2), Phase: api.PhasePreflight, Message: "checking Prometheus, targets and agents"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Text(&buf, tt.run); err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(buf.String(), "\n") {
				if n := utf8.RuneCountInString(line); n > Width {
					t.Errorf("line %d is %d columns (> %d): %q", i+1, n, Width, line)
				}
				if strings.TrimRight(line, " ") != line {
					t.Errorf("line %d has trailing spaces: %q", i+1, line)
				}
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("report differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{
		{0, "0.0s"}, {12, "12.0s"}, {14.04, "14.0s"}, {59.96, "1m00.0s"}, {124, "2m04.0s"},
		{3723.5, "1h02m03.5s"}, {-3, "-3.0s"},
	} {
		if got := Seconds(tt.in); got != tt.want {
			t.Errorf("Seconds(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOffset(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{
		{0, "+0.0s"}, {2.04, "+2.0s"}, {-0.04, "+0.0s"}, {-0.06, "-0.1s"}, {-3, "-3.0s"}, {-124, "-2m04.0s"},
	} {
		if got := offset(*at(tt.in), at(0)); got != tt.want {
			t.Errorf("offset(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRTOLine(t *testing.T) {
	got := RTOLine(api.Run{Verdict: api.VerdictPass, RTO: api.RTO{MeasuredSeconds: ptr(14.0), TargetSeconds: 900, ResolutionSeconds: 1}})
	if want := "14.0s (target 15m0s) — resolution ±1s"; got != want {
		t.Errorf("RTOLine = %q, want %q", got, want)
	}
}

func TestTextNamesServiceInstances(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := api.Run{ID: "r-1", Experiment: "exceptions-visits", Phase: api.PhaseDone, Verdict: api.VerdictPass, CreatedAt: now,
		Faults: []api.FaultRecord{{Name: "visits-throws", Kind: "exception", Cluster: "c2", Node: "c2-n1",
			Instance: "visits-service/visits-service-0", InjectedAt: &now, RevertedAt: &now, Verified: true}}}
	var b strings.Builder
	if err := Text(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "c2/c2-n1 visits-service/visits-service-0") {
		t.Fatalf("report does not name the instance:\n%s", b.String())
	}
}

func TestAbortValue(t *testing.T) {
	at := time.Unix(100, 0)
	series := []api.SeriesValue{{Labels: "{}", Value: 0.7}}
	tests := []struct {
		name string
		res  api.ProbeResult
		want string
	}{
		{"condition holds: firing", api.ProbeResult{Probe: "a", Time: at, OK: true, Value: 0.7, Series: series}, "0.7 firing"},
		{"condition does not hold: quiet", api.ProbeResult{Probe: "a", Time: at, OK: false, Value: 0.1, Series: series}, "0.1 quiet"},
		{"cannot be judged: firing", api.ProbeResult{Probe: "a", Time: at, Value: math.NaN(), Error: "prometheus unreachable"}, "firing (prometheus unreachable)"},
		{"empty with onEmpty pass: quiet", api.ProbeResult{Probe: "a", Time: at, OK: true, Value: math.NaN()}, "quiet (empty)"},
		{"never evaluated", api.ProbeResult{}, "-"},
	}
	for _, tt := range tests {
		if got := AbortValue(tt.res); got != tt.want {
			t.Errorf("%s: AbortValue = %q, want %q", tt.name, got, tt.want)
		}
	}
}
