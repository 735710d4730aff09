package runner

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
)

// TestEveryRequestIsJudged: the verdict is about what users saw, every
// scrape of it, not a sample taken once per probe round. The fake system
// fails requests only at the instants failsAt says; Prometheus scrapes it
// every 10ms and the probe rounds are 50ms apart.
func TestEveryRequestIsJudged(t *testing.T) {
	const scrape = 10 * time.Millisecond
	slo := func(q string) func(*experiments.Spec) {
		return func(sp *experiments.Spec) {
			sp.SteadyState.Baseline = experiments.Duration(2 * time.Second)
			p := []probes.Probe{{Name: "slo", Query: q, Op: probes.OpGE, Threshold: f64(1)}}
			sp.SteadyState.Probes, sp.Recovery.Probes = p, p
		}
	}
	for _, tc := range []struct {
		name    string
		query   string
		failsAt func(t0, t time.Time) bool
		recover time.Duration
		verdict api.Verdict
		reason  string
		check   func(t *testing.T, s *system, run api.Run)
	}{{
		// One failed scrape a second before the run, between two rounds.
		name:  "a blip in the baseline fails the steady state",
		query: "up",
		failsAt: func(t0, t time.Time) bool {
			d := t0.Sub(t)
			return d > 995*time.Millisecond && d <= 1005*time.Millisecond
		},
		verdict: api.VerdictFail, reason: "steady state not met over the 2s baseline before inject: slo failed at 1 of 201 steps",
		check: func(t *testing.T, s *system, run api.Run) {
			if run.Times.Injected != nil || s.injected != 0 {
				t.Errorf("injected into a system not in its steady state")
			}
		},
	}, {
		// After the fault the system keeps failing one scrape in every
		// 170ms: it never holds for holdFor (200ms), though most probe
		// rounds land between the blips.
		name:  "a system that stays flaky after the fault never recovers",
		query: "up",
		failsAt: func(t0, t time.Time) bool {
			return t.After(t0) && t.Sub(t0)%(170*time.Millisecond) < scrape
		},
		verdict: api.VerdictFail, reason: "not recovered",
	}, {
		// A rate over 100ms that holds says the last 100ms of requests
		// succeeded: recovery is placed at the window's start, not 90ms
		// late.
		name:    "recovery is placed where the window that held begins",
		query:   "sum(rate(requests_total[100ms]))",
		recover: 300 * time.Millisecond,
		verdict: api.VerdictPass, reason: "recovered in",
		check: func(t *testing.T, s *system, run api.Run) {
			if d := run.Times.Recovered.Sub(s.impairedUntil); d < -scrape || d > scrape {
				t.Errorf("recovered at %s, the system healed at %s: off by %s (> one scrape)", run.Times.Recovered, s.impairedUntil, d)
			}
			if d := run.Times.FirstImpact.Sub(s.impairedFrom); d < 0 || d > scrape {
				t.Errorf("first impact at %s, the fault went in at %s: off by %s", run.Times.FirstImpact, s.impairedFrom, d)
			}
		},
	}, {
		name:    "a window shorter than a step and a scrape is refused before inject",
		query:   "sum(rate(requests_total[15ms]))",
		verdict: api.VerdictError, reason: "steady-state probe slo reads a 15ms window, shorter than the judging step 10ms + the scrape interval 10ms",
	}, {
		name:    "$__rate_interval becomes four scrapes",
		query:   "sum(rate(requests_total[$__rate_interval]))",
		verdict: api.VerdictPass, reason: "recovered in",
		check: func(t *testing.T, s *system, run api.Run) {
			if q := run.Phases[0].Probes[0].Query; q != "sum(rate(requests_total[40ms]))" {
				t.Errorf("query judged %q, want the window expanded to 40ms", q)
			}
			// 2s of baseline at 10ms, plus the round itself.
			if n := run.Phases[0].Probes[0].Evaluations; n != 201 {
				t.Errorf("steady state judged %d steps, want 201", n)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				s.scrape = scrape
				s.recoverAfter = tc.recover
				t0 := time.Now()
				if tc.failsAt != nil {
					s.failsAt = func(t time.Time) bool { return tc.failsAt(t0, t) }
				}
				final, _ := run(t, context.Background(), experiment(slo(tc.query)), s, nil)
				if final.Verdict != tc.verdict || !strings.Contains(final.Reason, tc.reason) {
					t.Fatalf("verdict %s (%s), want %s containing %q", final.Verdict, final.Reason, tc.verdict, tc.reason)
				}
				if tc.check != nil {
					tc.check(t, s, final)
				}
			})
		})
	}
}
