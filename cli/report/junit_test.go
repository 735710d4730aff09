package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

func TestJUnit(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	secs := func(v float64) *float64 { return &v }
	fault := api.FaultRecord{Name: "cut-tgw", Kind: "partition", Cluster: "c1", Node: "c1-n1", InjectedAt: at(1), RevertedAt: at(31), Verified: true}
	base := func(verdict api.Verdict, reason string) api.Run {
		return api.Run{ID: "r-1", Experiment: "partition-c1-c2", Phase: api.PhaseDone, Verdict: verdict, Reason: reason,
			CreatedAt: t0, FinishedAt: at(45), Faults: []api.FaultRecord{fault},
			Times: api.Times{Started: at(0), Injected: at(1), FirstImpact: at(2), Reverted: at(31), Recovered: at(33)},
			RTO:   api.RTO{MeasuredSeconds: secs(31), TargetSeconds: 900, ResolutionSeconds: 0.25}}
	}
	cases := []struct {
		name                             string
		run                              api.Run
		tests, failures, errors, skipped int
		wantFailing                      string
	}{
		{name: "pass", run: base(api.VerdictPass, "recovered in 31s"), tests: 5},
		{name: "not recovered", run: func() api.Run {
			r := base(api.VerdictFail, "not recovered: recovery probes did not hold")
			r.Times.Recovered, r.RTO.MeasuredSeconds = nil, nil
			return r
		}(), tests: 5, failures: 1, wantFailing: "recovered"},
		{name: "RTO over target", run: func() api.Run {
			r := base(api.VerdictFail, "recovered, but measured RTO exceeds the target")
			r.RTO.MeasuredSeconds = secs(1000)
			return r
		}(), tests: 5, failures: 1, wantFailing: "RTO within target"},
		{name: "steady state not met", run: func() api.Run {
			r := base(api.VerdictFail, "steady state not met before inject")
			r.Times = api.Times{Started: at(0)}
			r.Faults = nil
			return r
		}(), tests: 5, failures: 1, skipped: 4, wantFailing: "steady state holds before inject"},
		{name: "aborted", run: base(api.VerdictAborted, "abort condition gateway-mostly-failing fired"), tests: 5, failures: 1, skipped: 2,
			wantFailing: "no abort condition fired"},
		{name: "tool error in preflight", run: func() api.Run {
			r := base(api.VerdictError, "preflight: node c1-n1 cannot run latency faults")
			r.Times = api.Times{Started: at(0)}
			r.Faults = nil
			return r
		}(), tests: 5, errors: 1, skipped: 4, wantFailing: "steady state holds before inject"},
		{name: "RPO over target", run: func() api.Run {
			r := base(api.VerdictFail, "data lost: 10 of 19 acknowledged writes lost, spanning 4.5s, more than the RPO 1s; recovered in 31s")
			r.DataLoss = &api.DataLoss{TargetSeconds: 1, Writes: 37, Acknowledged: 19, Lost: 10, MeasuredSeconds: secs(4.5)}
			return r
		}(), tests: 6, failures: 1, wantFailing: "RPO within target"},
		{name: "forbidden alert fired", run: func() api.Run {
			r := base(api.VerdictFail, "alert PetClinicGatewayBreakerOpen fired at 10:00:03.000 and must not")
			r.Alerts = []api.AlertCheck{
				{Name: "PetClinicVisitsCallsFailing", Expected: true, WithinSeconds: 20, FiredAt: at(4), OK: true},
				{Name: "PetClinicGatewayBreakerOpen", FiredAt: at(3), Reason: "alert PetClinicGatewayBreakerOpen fired at 10:00:03.000 and must not"},
			}
			return r
		}(), tests: 7, failures: 1, wantFailing: "alert PetClinicGatewayBreakerOpen does not fire"},
		{name: "RPO within target", run: func() api.Run {
			r := base(api.VerdictPass, "recovered in 31s; 0 of 19 acknowledged writes lost")
			r.DataLoss = &api.DataLoss{TargetSeconds: 1, Writes: 37, Acknowledged: 19, MeasuredSeconds: secs(0)}
			return r
		}(), tests: 6},
		{name: "RPO not measurable", run: func() api.Run {
			r := base(api.VerdictError, "data-loss check could not be judged: read back: HTTP 503")
			r.DataLoss = &api.DataLoss{TargetSeconds: 1, Writes: 37, Acknowledged: 19, Error: "read back: HTTP 503"}
			return r
		}(), tests: 6, errors: 1, wantFailing: "RPO within target"},
		{name: "fault not verified", run: func() api.Run {
			r := base(api.VerdictError, "revert: agent could not verify removal")
			r.Faults[0].Verified = false
			return r
		}(), tests: 5, errors: 1, wantFailing: "faults reverted and verified"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := JUnit(&b, tc.run); err != nil {
				t.Fatal(err)
			}
			var doc junitSuites
			if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatalf("not valid XML: %v\n%s", err, b.String())
			}
			s := doc.Suites[0]
			if s.Tests != tc.tests || s.Failures != tc.failures || s.Errors != tc.errors || s.Skipped != tc.skipped {
				t.Fatalf("tests %d failures %d errors %d skipped %d; want %d %d %d %d\n%s", s.Tests, s.Failures, s.Errors, s.Skipped,
					tc.tests, tc.failures, tc.errors, tc.skipped, b.String())
			}
			for _, c := range s.Cases {
				bad := c.Failure != nil || c.Error != nil
				if bad != (c.Name == tc.wantFailing) {
					t.Errorf("case %q failing=%v, want only %q failing", c.Name, bad, tc.wantFailing)
				}
			}
			if !strings.Contains(s.SystemOut, "partition-c1-c2") || s.Name != "chaosd.partition-c1-c2" {
				t.Errorf("suite %q without the report in system-out", s.Name)
			}
		})
	}
}
