package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
)

// alerting fakes Prometheus' ALERTS and Alertmanager: the alert named
// "Impaired" is pending from the first inject and fires firesAfter later
// while the system is impaired (never, if firesAfter < 0); "Noisy" fires
// only when noisy is set.
type alerting struct {
	s          *system
	firesAfter time.Duration
	noisy      bool
	readErr    error

	mu       sync.Mutex
	silences map[string]time.Time // id → end
	expired  []string
	created  []map[string]string
	// injectedWhileSilenced records whether every silence existed
	// before the first fault went in.
	silencedFirst bool
}

func (a *alerting) AlertStates(_ context.Context, name string, _ map[string]string, start, end time.Time, step time.Duration) ([]probes.AlertPoint, error) {
	if a.readErr != nil {
		return nil, a.readErr
	}
	var out []probes.AlertPoint
	for t := start; !t.After(end); t = t.Add(step) {
		p := probes.AlertPoint{Time: t}
		switch {
		case name == "Noisy" && a.noisy:
			p.State = probes.AlertFiring
		case name == "Impaired" && !a.s.healthyAt(t):
			p.State = probes.AlertPending
			a.s.mu.Lock()
			from := a.s.impairedFrom
			a.s.mu.Unlock()
			if a.firesAfter >= 0 && !t.Before(from.Add(a.firesAfter)) {
				p.State = probes.AlertFiring
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *alerting) CreateSilence(_ context.Context, m map[string]string, ends time.Time, _ string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.silences == nil {
		a.silences = map[string]time.Time{}
	}
	a.s.mu.Lock()
	a.silencedFirst = a.s.injected == 0
	a.s.mu.Unlock()
	id := fmt.Sprintf("s-%d", len(a.silences)+1)
	a.silences[id] = ends
	a.created = append(a.created, m)
	return id, nil
}

func (a *alerting) ExpireSilence(_ context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expired = append(a.expired, id)
	return nil
}

func TestAlertChecks(t *testing.T) {
	expect := func(within time.Duration, silence bool) func(*experiments.Spec) {
		return func(sp *experiments.Spec) {
			sp.ExpectAlerts = []experiments.AlertRule{{Name: "Impaired", Labels: map[string]string{"team": "petclinic"}, Within: experiments.Duration(within)}}
			sp.ForbidAlerts = []experiments.AlertRule{{Name: "Noisy"}}
			if silence {
				sp.Silence = &experiments.Silence{Grace: experiments.Duration(time.Minute)}
			}
		}
	}
	for _, tc := range []struct {
		name       string
		mod        func(*experiments.Spec)
		firesAfter time.Duration
		noisy      bool
		readErr    error
		noSilencer bool
		abortAt    time.Duration
		verdict    api.Verdict
		reason     string
		check      func(t *testing.T, a *alerting, run api.Run)
	}{{
		name: "expected alert fires in time, silenced for the run", mod: expect(time.Second, true), firesAfter: 100 * time.Millisecond,
		verdict: api.VerdictPass, reason: "recovered in",
		check: func(t *testing.T, a *alerting, run api.Run) {
			if len(run.Alerts) != 2 || !run.Alerts[0].OK || run.Alerts[0].TTASeconds == nil || *run.Alerts[0].TTASeconds != 0.1 {
				t.Fatalf("alerts %+v, want Impaired fired with TTA 100ms and Noisy quiet", run.Alerts)
			}
			if run.Alerts[0].PendingAt == nil || !run.Alerts[0].PendingAt.Equal(*run.Times.FirstImpact) || run.Alerts[0].ResolvedAt == nil {
				t.Errorf("pending at %v (impact %v), resolved %v", run.Alerts[0].PendingAt, run.Times.FirstImpact, run.Alerts[0].ResolvedAt)
			}
			if len(run.Silences) != 1 || run.Silences[0].ExpiredAt == nil || run.Silences[0].ExpiredBy != "run" || len(a.expired) != 1 {
				t.Fatalf("silences %+v expired %v, want one, expired by the run", run.Silences, a.expired)
			}
			if !a.silencedFirst || a.created[0]["alertname"] != "Impaired" || a.created[0]["team"] != "petclinic" {
				t.Errorf("silence %v created before the inject: %v", a.created, a.silencedFirst)
			}
			// Inject + 400ms duration + 2s recovery timeout + 1m grace.
			if want := run.Times.Injected.Add(400*time.Millisecond + 2*time.Second + time.Minute); run.Silences[0].EndsAt.Before(want.Add(-50 * time.Millisecond)) {
				t.Errorf("silence ends %s, want about %s", run.Silences[0].EndsAt, want)
			}
		},
	}, {
		name: "expected alert that never fires fails after its deadline", mod: expect(time.Second, false), firesAfter: -1,
		verdict: api.VerdictFail, reason: "expected alert Impaired never fired (within 1s of the first impact)",
		check: func(t *testing.T, _ *alerting, run api.Run) {
			if run.FinishedAt.Before(run.Times.FirstImpact.Add(time.Second)) {
				t.Errorf("gave up at %s, before the alert's deadline", run.FinishedAt)
			}
		},
	}, {
		name: "expected alert that fires late fails", mod: expect(100*time.Millisecond, false), firesAfter: 300 * time.Millisecond,
		verdict: api.VerdictFail, reason: "expected alert Impaired fired 300ms after the first impact, later than 100ms",
	}, {
		name: "forbidden alert that fires fails", mod: expect(time.Second, false), firesAfter: 0, noisy: true,
		verdict: api.VerdictFail, reason: "alert Noisy fired at",
	}, {
		name: "alerts that cannot be read are the tool's error", mod: expect(time.Second, false), readErr: errors.New("prometheus unreachable"),
		verdict: api.VerdictError, reason: "alerts could not be read",
	}, {
		name: "a silence without Alertmanager is refused before inject", mod: expect(time.Second, true), noSilencer: true,
		verdict: api.VerdictError, reason: "no Alertmanager configured",
		check: func(t *testing.T, _ *alerting, run api.Run) {
			if run.Times.Injected != nil {
				t.Errorf("injected without the silence it asked for")
			}
		},
	}, {
		name: "an aborted run expires its silences", mod: expect(time.Second, true), firesAfter: 0, abortAt: 200 * time.Millisecond,
		verdict: api.VerdictAborted, reason: "aborted by user",
		check: func(t *testing.T, a *alerting, run api.Run) {
			if len(a.expired) != 1 || run.Silences[0].ExpiredAt == nil {
				t.Errorf("silences %+v not expired", run.Silences)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				s.scrape = 10 * time.Millisecond
				s.recoverAfter = 300 * time.Millisecond
				a := &alerting{s: s, firesAfter: tc.firesAfter, noisy: tc.noisy, readErr: tc.readErr}
				d := deps(s, nodeInventory{}, nil)
				d.Alerts = a
				if !tc.noSilencer {
					d.Silencer = a
				}
				e := experiment(tc.mod)
				rec := api.Run{ID: "r-1", Experiment: "t", Trigger: api.TriggerManual, CreatedAt: time.Now()}
				rn := New(e, rec, d, zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, AgentTimeout: time.Second})
				if tc.abortAt > 0 {
					time.AfterFunc(tc.abortAt, func() { rn.Abort("test") })
				}
				final := rn.Run(context.Background())
				if final.Verdict != tc.verdict || !strings.Contains(final.Reason, tc.reason) {
					t.Fatalf("verdict %s (%s), want %s containing %q", final.Verdict, final.Reason, tc.verdict, tc.reason)
				}
				if tc.check != nil {
					tc.check(t, a, final)
				}
			})
		})
	}
}
