package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes/promtest"
)

const testSuite = `apiVersion: chaosd.io/v1alpha1
kind: Suite
metadata:
  name: %s
spec:
  experiments:
%s
  pause: 2s
%s`

func suiteEntries(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "    - experiment: %s\n", n)
	}
	return strings.TrimRight(b.String(), "\n")
}

// writeSuite adds a suite file to the harness's experiments directory.
func (h *harness) writeSuite(name, body string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.cfg.ExperimentsDir, "suite-"+name+".yaml"), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitSuite(id string, timeout time.Duration, done func(api.SuiteRun) bool) api.SuiteRun {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := h.client.SuiteRun(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		if done(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("suite run %s: condition not met after %s: %+v", id, timeout, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func suiteDone(r api.SuiteRun) bool { return r.Phase == api.SuiteDone }

// TestIntegrationDaemonSuiteStopsAtFirstFailure runs a suite of three
// experiments against fake agents and a real Prometheus: the first
// passes, the second must hold its steady state during the fault (it
// cannot: the fault makes sut_healthy 0) and fails, the third never
// starts. One record holds each run's verdict; each run names its suite
// run; the suite's verdict is the failure.
func TestIntegrationDaemonSuiteStopsAtFirstFailure(t *testing.T) {
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	h := newHarness(t, prom, healthy, map[string]string{
		"cut":       fmt.Sprintf(testExperiment, "cut", "2s", ""),
		"must-hold": strings.Replace(fmt.Sprintf(testExperiment, "must-hold", "2s", ""), "    baseline: 1s\n", "    baseline: 1s\n    mustHoldDuringFault: true\n", 1),
		"later":     fmt.Sprintf(testExperiment, "later", "2s", ""),
	})
	h.writeSuite("game-day", fmt.Sprintf(testSuite, "game-day", suiteEntries("cut", "must-hold", "later"), ""))
	h.start()
	ctx := context.Background()

	suites, err := h.client.Suites(ctx)
	if err != nil || len(suites) != 1 || strings.Join(suites[0].Experiments, ",") != "cut,must-hold,later" || !suites[0].StopOnFailure || suites[0].Pause != "2s" {
		t.Fatalf("suites %+v (%v)", suites, err)
	}
	first, err := h.client.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "game-day"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.ID, "s-") || len(first.Entries) != 3 {
		t.Fatalf("first record %+v", first)
	}
	if _, err := h.client.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "game-day"}); !isStatus(err, 409) {
		t.Errorf("second run of a suite in progress: %v, want 409", err)
	}
	if _, err := h.client.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "nope"}); !isStatus(err, 404) {
		t.Errorf("unknown suite: %v, want 404", err)
	}

	final := h.waitSuite(first.ID, 2*time.Minute, suiteDone)
	if final.Verdict != api.VerdictFail || !strings.Contains(final.Reason, "must-hold") {
		t.Errorf("suite verdict %s (%s), want fail naming must-hold", final.Verdict, final.Reason)
	}
	e := final.Entries
	if e[0].Verdict != api.VerdictPass || e[1].Verdict != api.VerdictFail || e[2].RunID != "" || e[2].Skipped != api.SkippedAfterFailure {
		t.Fatalf("entries %+v: want pass, fail, skipped after the failure", e)
	}
	// The pause: the second started no sooner than 2s after the first ended.
	if e[1].StartedAt.Sub(*e[0].FinishedAt) < 2*time.Second {
		t.Errorf("second started %s after the first ended; the pause is 2s", e[1].StartedAt.Sub(*e[0].FinishedAt))
	}
	for _, en := range e[:2] {
		run, err := h.client.Run(ctx, en.RunID)
		if err != nil || run.SuiteRun != first.ID || run.Verdict != en.Verdict {
			t.Errorf("run %s: suiteRun %q verdict %s (%v); want it to name %s and match the entry", en.RunID, run.SuiteRun, run.Verdict, err, first.ID)
		}
	}
	list, err := h.client.SuiteRuns(ctx)
	if err != nil || len(list) != 1 || list[0].ID != first.ID || list[0].Verdict != api.VerdictFail {
		t.Errorf("suite runs %+v (%v)", list, err)
	}
	for _, n := range h.nodes {
		if n.activeCount() != 0 {
			t.Errorf("node %s has faults left", n.name)
		}
	}
}

// TestIntegrationDaemonHaltAndAbortStopTheSuite: a halt during a suite's
// experiment aborts it and no later experiment starts, even with
// stopOnFailure false; aborting a suite run by its ID (through the runs'
// route, as chaosctl abort may) does the same.
func TestIntegrationDaemonHaltAndAbortStopTheSuite(t *testing.T) {
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	h := newHarness(t, prom, healthy, map[string]string{
		"long":  fmt.Sprintf(testExperiment, "long", "60s", ""),
		"later": fmt.Sprintf(testExperiment, "later", "2s", ""),
	})
	h.writeSuite("keep-going", fmt.Sprintf(testSuite, "keep-going", suiteEntries("long", "later"), "  stopOnFailure: false\n"))
	h.start()
	ctx := context.Background()

	for _, stop := range []string{"halt", "abort"} {
		t.Run(stop, func(t *testing.T) {
			sr, err := h.client.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "keep-going"})
			if err != nil {
				t.Fatal(err)
			}
			observing := h.waitSuite(sr.ID, 30*time.Second, func(r api.SuiteRun) bool {
				return r.Current == 0 && r.Entries[0].Phase == api.PhaseObserving
			})
			if stop == "halt" {
				res, err := h.client.Halt(ctx, "")
				if err != nil || len(res.AbortedSuiteRuns) != 1 || res.AbortedSuiteRuns[0] != sr.ID {
					t.Fatalf("halt %+v (%v); want the suite run among the aborted", res, err)
				}
			} else if _, err := h.client.Abort(ctx, sr.ID); err != nil {
				t.Fatal(err)
			}
			final := h.waitSuite(sr.ID, 30*time.Second, suiteDone)
			if final.Verdict != api.VerdictAborted || final.Entries[0].Verdict != api.VerdictAborted ||
				final.Entries[1].RunID != "" || final.Entries[1].Skipped != api.SkippedAborted {
				t.Errorf("after %s: %s (%s), entries %+v; want aborted, the rest never started", stop, final.Verdict, final.Reason, final.Entries)
			}
			run, _ := h.client.Run(ctx, observing.Entries[0].RunID)
			if run.Verdict != api.VerdictAborted {
				t.Errorf("the current run: %s (%s), want aborted", run.Verdict, run.Reason)
			}
			for _, n := range h.nodes {
				if n.activeCount() != 0 {
					t.Errorf("node %s has faults left after %s", n.name, stop)
				}
			}
			if _, err := h.client.AbortSuiteRun(ctx, sr.ID); !isStatus(err, 409) {
				t.Errorf("abort of a finished suite run: %v, want 409", err)
			}
		})
	}
}

// TestDaemonRestartMarksInterruptedSuiteRun: chaosd died during a suite's
// second experiment; after the restart the run is interrupted (its fault
// reverted by the runs' recovery), the suite run is interrupted with the
// run's verdict in its entry, and the third never starts.
func TestDaemonRestartMarksInterruptedSuiteRun(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{
		"cut":   fmt.Sprintf(testExperiment, "cut", "4s", ""),
		"later": fmt.Sprintf(testExperiment, "later", "4s", ""),
	})
	h.writeSuite("gd", fmt.Sprintf(testSuite, "gd", suiteEntries("cut", "cut", "later"), ""))
	st, err := store.Open(h.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	h.nodes[0].active["r-mid.cut"] = agentapi.Fault{ID: "r-mid.cut"}
	mid := api.Run{ID: "r-mid", Experiment: "cut", Trigger: api.TriggerManual, SuiteRun: "s-old", Phase: api.PhaseObserving, CreatedAt: at,
		Times:  api.Times{Injected: &at},
		Faults: []api.FaultRecord{{Name: "cut", Kind: "partition", Cluster: "c1", Node: "c1-n1", AgentFaultID: "r-mid.cut", InjectedAt: &at}}}
	done := at.Add(-time.Minute)
	old := api.SuiteRun{ID: "s-old", Suite: "gd", Trigger: api.TriggerManual, StopOnFailure: true, Phase: api.SuiteRunning, Current: 1, CreatedAt: at.Add(-2 * time.Minute),
		Entries: []api.SuiteEntryResult{
			{Experiment: "cut", RunID: "r-first", Phase: api.PhaseDone, Verdict: api.VerdictPass, StartedAt: &done, FinishedAt: &done},
			{Experiment: "cut", RunID: "r-mid", Phase: api.PhaseObserving, StartedAt: &at},
			{Experiment: "later"},
		}}
	if err := st.Save(mid); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSuiteRun(old); err != nil {
		t.Fatal(err)
	}
	h.start()
	got, err := h.client.SuiteRun(context.Background(), "s-old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Phase != api.SuiteDone || !got.Interrupted || got.Verdict != api.VerdictError {
		t.Errorf("suite run after restart: %s %s interrupted=%v (%s)", got.Phase, got.Verdict, got.Interrupted, got.Reason)
	}
	if e := got.Entries[1]; e.Verdict != api.VerdictError || !e.Interrupted {
		t.Errorf("the interrupted experiment's entry %+v: want the run's recovered verdict", e)
	}
	if e := got.Entries[2]; e.RunID != "" || e.Skipped != api.SkippedInterrupted {
		t.Errorf("the later entry %+v: want skipped, never started", e)
	}
	if h.nodes[0].activeCount() != 0 {
		t.Error("the interrupted experiment's fault is still active after the restart")
	}
}

func isStatus(err error, status int) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == status
}

// TestDaemonSuiteScheduleWithRealStore: a suite's schedule runs on
// chaosd's scheduler like an experiment's ("suite/NAME"): a trigger
// inside its freeze window is skipped with the window's name, a paused
// one is skipped, a resumed one starts a suite run recorded as
// scheduled; GET /v1/schedules shows it with its last suite run; a suite
// started on request inside chaosd's freeze needs force and its record
// names the window.
func TestDaemonSuiteScheduleWithRealStore(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{
		"cut":   fmt.Sprintf(testExperiment, "cut", "1s", ""),
		"later": fmt.Sprintf(testExperiment, "later", "1s", ""),
	})
	h.writeSuite("gd", fmt.Sprintf(testSuite, "gd", suiteEntries("cut", "later"), `  schedule:
    cron: "0 * * * *"
    freezeWindows:
      - name: maintenance
        start: "2026-06-01T04:30"
        end: "2026-06-01T05:30"
`))
	h.cfg.FreezeWindows = []experiments.FreezeWindow{{Name: "christmas", Start: "2026-12-24", End: "2026-12-26", TimeZone: "Europe/Berlin"}}
	clock := &setClock{now: utc("2026-06-01T04:00:00Z")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := New(h.cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.initSchedules(clock); err != nil {
		t.Fatal(err)
	}
	d.runs.setContext(ctx)
	d.syncSchedules()
	svc := service{d}
	tick := func(at string) {
		clock.set(utc(at))
		d.sched.s.Tick(utc(at))
	}
	tick("2026-06-01T04:00:00Z")
	tick("2026-06-01T05:00:00Z") // inside maintenance
	if _, err := svc.PauseSchedule(ctx, "suite/gd", true); err != nil {
		t.Fatal(err)
	}
	tick("2026-06-01T06:00:00Z") // paused
	if _, err := svc.PauseSchedule(ctx, "suite/gd", false); err != nil {
		t.Fatal(err)
	}
	tick("2026-06-01T07:00:00Z") // fires
	if !d.runs.wait(60 * time.Second) {
		t.Fatal("suite run did not end")
	}
	runs, err := d.suiteStore.ListSuiteRuns()
	if err != nil || len(runs) != 1 {
		t.Fatalf("suite runs %+v (%v): want the 07:00 one", runs, err)
	}
	sr := runs[0]
	if sr.Trigger != api.TriggerSchedule || sr.ScheduledAt == nil || !sr.ScheduledAt.Equal(utc("2026-06-01T07:00:00Z")) || sr.Phase != api.SuiteDone {
		t.Errorf("scheduled suite run: trigger %s scheduledAt %v phase %s", sr.Trigger, sr.ScheduledAt, sr.Phase)
	}
	// No Prometheus: the first experiment errs at preflight, the second is skipped.
	if sr.Verdict != api.VerdictError || sr.Entries[1].Skipped != api.SkippedAfterFailure {
		t.Errorf("suite run %s (%s) entries %+v", sr.Verdict, sr.Reason, sr.Entries)
	}
	st, _ := store.Open(h.cfg.DataDir)
	skips, _ := st.Skips()
	var got []string
	for _, k := range skips {
		got = append(got, k.Experiment+" "+k.Trigger.Format(time.RFC3339)+" "+k.Cause+" "+k.Window)
	}
	if want := "suite/gd 2026-06-01T05:00:00Z freeze maintenance|suite/gd 2026-06-01T06:00:00Z paused "; strings.Join(got, "|") != want {
		t.Errorf("skips:\n got %q\nwant %q", strings.Join(got, "|"), want)
	}
	infos, err := svc.Schedules(ctx)
	if err != nil || len(infos) != 1 || infos[0].Experiment != "suite/gd" || infos[0].Suite != "gd" || infos[0].LastRun == nil ||
		infos[0].LastRun.ID != sr.ID || len(infos[0].Next) != 3 || strings.Join(infos[0].FreezeWindows, ",") != "christmas,maintenance" {
		t.Errorf("schedules %+v (%v)", infos, err)
	}

	clock.set(utc("2026-12-24T12:00:00Z"))
	if _, err := svc.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "gd"}); !isStatusErr(err, http.StatusConflict) ||
		!strings.Contains(err.Error(), `inside freeze window "christmas"`) {
		t.Errorf("suite inside a freeze: %v, want 409 naming the window", err)
	}
	forced, err := svc.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "gd", Force: true})
	if err != nil || forced.ForcedFreeze != "christmas" {
		t.Fatalf("forced suite run %+v (%v)", forced, err)
	}
	if !d.runs.wait(60 * time.Second) {
		t.Fatal("forced suite run did not end")
	}
	if got, _ := d.suiteStore.GetSuiteRun(forced.ID); got.Entries[0].RunID == "" {
		t.Errorf("forced suite run did not start its experiment: %+v", got.Entries[0])
	} else if run, _ := d.store.Get(got.Entries[0].RunID); run.ForcedFreeze != "christmas" || run.SuiteRun != forced.ID {
		t.Errorf("its run: forcedFreeze %q suiteRun %q", run.ForcedFreeze, run.SuiteRun)
	}
}

func isStatusErr(err error, status int) bool {
	var se *httpapi.StatusError
	return errors.As(err, &se) && se.Status == status
}
