package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
)

// fakeSuites are the fake chaosd's suites: name → experiments (their
// verdicts are the fake's experiments'), stopping at the first failure.
var fakeSuites = map[string][]string{
	"game-day":   {"exp-pass", "exp-fail", "exp-pass"},
	"all-pass":   {"exp-pass", "exp-pass"},
	"tool-error": {"exp-error"},
	"forever":    {"exp-forever", "exp-pass"},
}

// fakeSuiteRun is a suite run that advances one scripted state per GET.
type fakeSuiteRun struct {
	states  []api.SuiteRun
	next    int
	aborted bool
}

var _ httpapi.SuiteService = (*fakeChaosd)(nil)

func (f *fakeChaosd) Suites(context.Context) ([]api.SuiteInfo, error) {
	if err := f.forced(); err != nil {
		return nil, err
	}
	return []api.SuiteInfo{
		{Name: "all-pass", Experiments: fakeSuites["all-pass"], StopOnFailure: true},
		{Name: "game-day", Description: "latency, exceptions, partition", Experiments: fakeSuites["game-day"], StopOnFailure: true, Pause: "1m",
			Schedule: "0 10 * * 3", TimeZone: "Europe/Berlin", NextRun: ptr(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))},
	}, nil
}

// StartSuiteRun scripts the whole suite run at once: each experiment's
// run is recorded with its final record (so describe run and JUnit find
// it), and the suite run's states walk through them with a pause.
func (f *fakeChaosd) StartSuiteRun(_ context.Context, req api.SuiteStartRequest) (api.SuiteRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.SuiteRun{}, err
	}
	exps, ok := fakeSuites[req.Suite]
	if !ok {
		return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "unknown suite %q", req.Suite)
	}
	if f.suiteRuns == nil {
		f.suiteRuns = map[string]*fakeSuiteRun{}
	}
	id := fmt.Sprintf("s-%04d", len(f.suiteRuns)+1)
	cur := api.SuiteRun{ID: id, Suite: req.Suite, Trigger: api.TriggerManual, DryRun: req.DryRun, StopOnFailure: true,
		Phase: api.SuitePending, Current: -1, CreatedAt: t0}
	for _, e := range exps {
		cur.Entries = append(cur.Entries, api.SuiteEntryResult{Experiment: e})
	}
	states := []api.SuiteRun{cur.DeepCopy()}
	stopped := false
	for i, e := range exps {
		if stopped {
			cur.Entries[i].Skipped = api.SkippedAfterFailure
			continue
		}
		if i > 0 {
			nb := t0.Add(time.Duration(i) * time.Minute)
			cur.Phase, cur.Current, cur.Entries[i].NotBefore = api.SuitePausing, i, &nb
			states = append(states, cur.DeepCopy())
		}
		runID := fmt.Sprintf("r-%04d", len(f.order)+1)
		verdict := f.experiments[e]
		run := script(runID, e, verdict, req.DryRun)
		for j := range run {
			run[j].SuiteRun = id
		}
		f.runs[runID] = &fakeRun{states: run[len(run)-1:]}
		f.order = append(f.order, runID)
		started := t0.Add(time.Duration(i) * time.Minute)
		cur.Phase, cur.Current = api.SuiteRunning, i
		cur.Entries[i].RunID, cur.Entries[i].StartedAt, cur.Entries[i].Phase = runID, &started, api.PhaseObserving
		states = append(states, cur.DeepCopy())
		if verdict == "" {
			f.suiteRuns[id] = &fakeSuiteRun{states: states}
			return states[0], nil // never ends; abort ends it
		}
		final := run[len(run)-1]
		cur.Entries[i].Phase, cur.Entries[i].Verdict, cur.Entries[i].Reason, cur.Entries[i].FinishedAt = final.Phase, final.Verdict, final.Reason, final.FinishedAt
		if final.Verdict != api.VerdictPass {
			stopped = true
		}
	}
	end := t0.Add(10 * time.Minute)
	cur.Phase, cur.Current, cur.FinishedAt = api.SuiteDone, -1, &end
	cur.Verdict, cur.Reason = api.VerdictPass, fmt.Sprintf("all %d experiments passed", len(exps))
	for i, e := range cur.Entries {
		if e.Verdict != "" && e.Verdict != api.VerdictPass {
			cur.Verdict, cur.Reason = e.Verdict, fmt.Sprintf("%s (experiments[%d], run %s): %s", e.Experiment, i, e.RunID, e.Reason)
			break
		}
	}
	states = append(states, cur)
	f.suiteRuns[id] = &fakeSuiteRun{states: states}
	return states[0], nil
}

func (f *fakeChaosd) SuiteRuns(context.Context) ([]api.SuiteRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.SuiteRun
	for i := len(f.suiteRuns); i >= 1; i-- {
		sr := f.suiteRuns[fmt.Sprintf("s-%04d", i)]
		out = append(out, sr.states[sr.next])
	}
	return out, f.forced()
}

func (f *fakeChaosd) SuiteRun(_ context.Context, id string) (api.SuiteRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.SuiteRun{}, err
	}
	sr, ok := f.suiteRuns[id]
	if !ok {
		return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "suite run %q not found", id)
	}
	cur := sr.states[sr.next]
	if sr.next < len(sr.states)-1 {
		sr.next++
	}
	return cur.DeepCopy(), nil
}

func (f *fakeChaosd) AbortSuiteRun(_ context.Context, id string) (api.SuiteRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sr, ok := f.suiteRuns[id]
	if !ok {
		return api.SuiteRun{}, httpapi.Errorf(http.StatusNotFound, "suite run %q not found", id)
	}
	cur := sr.states[sr.next]
	if cur.Phase == api.SuiteDone {
		return api.SuiteRun{}, httpapi.Errorf(http.StatusConflict, "suite run %s already finished (%s)", id, cur.Verdict)
	}
	f.aborts = append(f.aborts, id)
	last := cur.DeepCopy()
	for i := range last.Entries {
		if last.Entries[i].RunID == "" {
			last.Entries[i].Skipped = api.SkippedAborted
		} else if last.Entries[i].Verdict == "" {
			last.Entries[i].Verdict = api.VerdictAborted
		}
	}
	last.Phase, last.Current, last.Verdict, last.Reason = api.SuiteDone, -1, api.VerdictAborted, "suite run aborted (chaosctl abort)"
	sr.states = append(sr.states[:sr.next+1], last)
	sr.aborted = true
	return cur, nil
}
