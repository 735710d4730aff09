package report

import (
	"math"

	"github.com/chaosd/chaosd/api"
)

// passTimeline is what chaosd's timeline gives for passRun: the window
// from 30s before the start to 5s after the end, one point a second. The
// breaker opens two seconds into the partition and closes after the
// revert; the gateway's own success rate hides the partition behind its
// fallback; the abort condition stays quiet (no 5xx series: empty).
func passTimeline() *api.Timeline {
	start, end := *at(-30), *at(70)
	tl := &api.Timeline{RunID: "r-20261125-100000-a1b2", Start: start, End: end, StepSeconds: 1}
	series := func(name, query, cond, op string, thr float64, phases []api.Phase, value func(s float64) float64, ok func(v float64) bool) api.ProbeSeries {
		s := api.ProbeSeries{Name: name, Query: query, Condition: cond, Op: op, Threshold: ptr(thr), Phases: phases}
		for sec := -30.0; sec <= 70; sec++ {
			v := value(sec)
			s.Points = append(s.Points, api.Point{Time: *at(sec), Value: v, OK: ok(v)})
		}
		return s
	}
	steady := []api.Phase{api.PhaseSteadyState, api.PhaseObserving, api.PhaseRecovering}
	ge := func(t float64) func(float64) bool { return func(v float64) bool { return v >= t } }
	tl.Series = []api.ProbeSeries{
		series("owner-details-breaker-closed",
			`max(resilience4j_circuitbreaker_state{job="api-gateway",name="getOwnerDetails",state="closed"})`,
			"== 1", "==", 1, steady,
			func(s float64) float64 {
				switch {
				case s < -26:
					return math.NaN() // before Prometheus' first scrape
				case s >= 24 && s < 55:
					return 0
				}
				return 1
			}, func(v float64) bool { return v == 1 }),
		series("gateway-to-visits-success",
			`sum(irate(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service",outcome="SUCCESS"}[5s])) / sum(irate(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service"}[5s]))`,
			">= 0.99", ">=", 0.99, steady,
			func(s float64) float64 {
				switch {
				case s < -26:
					return math.NaN()
				case s < 22:
					return 0.996 + 0.004*math.Sin(s)
				case s < 24:
					return 0.12
				case s < 55:
					return math.NaN() // the breaker is open: no calls at all, 0/0
				case s < 60:
					return 0.5 + 0.1*(s-55)
				}
				return 1
			}, ge(0.99)),
		series("gateway-success",
			`sum(irate(http_server_requests_seconds_count{job="api-gateway",outcome="SUCCESS"}[5s])) / sum(irate(http_server_requests_seconds_count{job="api-gateway"}[5s]))`,
			">= 0.99", ">=", 0.99, steady,
			func(s float64) float64 {
				if s < -26 {
					return math.NaN()
				}
				if s >= 21 && s < 23 {
					return 0.97
				}
				return 1
			}, ge(0.99)),
		series("gateway-mostly-failing",
			`sum(irate(http_server_requests_seconds_count{job="api-gateway",outcome="SERVER_ERROR"}[5s])) / sum(irate(http_server_requests_seconds_count{job="api-gateway"}[5s]))`,
			"> 0.5", ">", 0.5, []api.Phase{api.PhaseAbort},
			func(s float64) float64 {
				if s >= 21 && s < 23 {
					return 0.03
				}
				return math.NaN() // no SERVER_ERROR series: empty, onEmpty pass
			}, func(v float64) bool { return math.IsNaN(v) || v <= 0.5 }),
	}
	return tl
}

// checksRun is passRun with alert checks, a silence and the RPO check,
// as the alerting and RPO work records them.
func checksRun() api.Run {
	r := passRun()
	r.Alerts = []api.AlertCheck{
		{Name: "VisitsUnreachable", Labels: map[string]string{"cluster": "c1"}, Expected: true, WithinSeconds: 60,
			PendingAt: at(25), FiredAt: at(35), ResolvedAt: at(58), TTASeconds: ptr(13.0), TTRSeconds: ptr(23.0),
			Silenced: true, OK: true, Reason: "VisitsUnreachable fired 13s after the first impact"},
		{Name: "GatewayErrorBudgetBurn", Expected: false, OK: true, Reason: "GatewayErrorBudgetBurn did not fire"},
		{Name: "GatewayDown", Expected: false, PendingAt: at(40), FiredAt: at(45), ResolvedAt: at(52), OK: false,
			Reason: "alert GatewayDown fired at 10:00:45.000 and must not"},
	}
	r.Silences = []api.Silence{{ID: "4f1c2a", Matchers: []string{`alertname="VisitsUnreachable"`, `cluster="c1"`},
		CreatedAt: *at(19), EndsAt: *at(140), ExpiredAt: at(66), ExpiredBy: "run"}}
	r.DataLoss = &api.DataLoss{TargetSeconds: 300, Writes: 120, Acknowledged: 118, Lost: 2,
		FirstLost: at(48), LastLost: at(49.5), MeasuredSeconds: ptr(1.5)}
	r.Verdict, r.Reason = api.VerdictFail, "alert GatewayDown fired at 10:00:45.000 and must not"
	return r
}

// unavailable is the timeline of a chaosd whose Prometheus did not answer.
func unavailable() *api.Timeline {
	return &api.Timeline{RunID: "r-20261125-100000-a1b2", Start: *at(-30), End: *at(70), StepSeconds: 2,
		Error:  "probe curves unavailable: prometheus unreachable: Post \"http://10.2.0.10:9090/api/v1/query_range\": dial tcp 10.2.0.10:9090: connect: connection refused",
		Series: []api.ProbeSeries{{Name: "gateway-to-visits-success", Condition: ">= 0.99", Phases: []api.Phase{api.PhaseSteadyState}}}}
}
