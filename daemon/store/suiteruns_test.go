package store

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

func TestSuiteRunsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if runs, err := s.ListSuiteRuns(); err != nil || len(runs) != 0 {
		t.Fatalf("fresh store: %v, %v", runs, err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	older := api.SuiteRun{ID: "s-1", Suite: "game-day", CreatedAt: t0, Phase: api.SuiteRunning,
		Entries: []api.SuiteEntryResult{{Experiment: "latency-c1-c2", RunID: "r-1"}}}
	newer := api.SuiteRun{ID: "s-2", Suite: "game-day", CreatedAt: t0.Add(time.Hour), Phase: api.SuiteDone, Verdict: api.VerdictPass}
	for _, r := range []api.SuiteRun{older, newer} {
		if err := s.SaveSuiteRun(r); err != nil {
			t.Fatal(err)
		}
	}
	older.Phase = api.SuiteDone
	if err := s.SaveSuiteRun(older); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir)
	runs, err := s2.ListSuiteRuns()
	if err != nil || len(runs) != 2 || runs[0].ID != "s-2" || runs[1].Phase != api.SuiteDone || runs[1].Entries[0].RunID != "r-1" {
		t.Fatalf("after reopen: %+v, %v; want both, newest first, the latest save of each", runs, err)
	}
	if _, err := s2.GetSuiteRun("s-404"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown: %v, want ErrNotExist", err)
	}
	if err := s2.SaveSuiteRun(api.SuiteRun{ID: "../x"}); err == nil {
		t.Error("an ID with a slash was saved")
	}
	// Run records are not mixed with suite runs.
	if rs, _ := s2.List(); len(rs) != 0 {
		t.Errorf("List shows %d runs; suite runs are apart", len(rs))
	}
}
