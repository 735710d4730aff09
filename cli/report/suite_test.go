package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

// gameDay is a finished suite run: latency passed, exceptions failed,
// the partition was skipped (stopOnFailure); with the member runs.
func gameDay() (api.SuiteRun, map[string]api.Run) {
	pass := passRun()
	pass.ID, pass.Experiment = "r-lat", "latency-c1-c2"
	fail := failRun()
	fail.ID, fail.Experiment = "r-exc", "exceptions-visits"
	s := api.SuiteRun{ID: "s-1", Suite: "game-day", Trigger: api.TriggerSchedule, StopOnFailure: true, Phase: api.SuiteDone,
		Verdict: api.VerdictFail, Current: -1, CreatedAt: t0, FinishedAt: at(400),
		Reason: "exceptions-visits (experiments[1], run r-exc): fail: " + fail.Reason + "; 1 later experiments skipped (stopOnFailure)",
		Entries: []api.SuiteEntryResult{
			{Experiment: "latency-c1-c2", RunID: "r-lat", Phase: api.PhaseDone, Verdict: api.VerdictPass, Reason: pass.Reason, StartedAt: at(0), FinishedAt: at(120)},
			{Experiment: "exceptions-visits", RunID: "r-exc", Phase: api.PhaseDone, Verdict: api.VerdictFail, Reason: fail.Reason, StartedAt: at(151), FinishedAt: at(400)},
			{Experiment: "partition-c1-c2", Skipped: api.SkippedAfterFailure},
		}}
	return s, map[string]api.Run{pass.ID: pass, fail.ID: fail}
}

func TestSuiteTextGolden(t *testing.T) {
	s, _ := gameDay()
	var buf bytes.Buffer
	if err := SuiteText(&buf, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "suite.golden", buf.Bytes())

	running := s
	running.Phase, running.Verdict, running.Reason, running.FinishedAt, running.Current = api.SuitePausing, "", "", nil, 1
	nb := *at(151)
	running.Entries = []api.SuiteEntryResult{s.Entries[0], {Experiment: "exceptions-visits", NotBefore: &nb}, {Experiment: "partition-c1-c2"}}
	buf.Reset()
	if err := SuiteText(&buf, running); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RUNNING (pausing)", "pausing", "starts at " + nb.UTC().Format(time.RFC3339), "pending"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("running suite report lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestSuiteJUnit: one document, a test suite per experiment with a case
// for its verdict and the criteria cases of its run, the skipped one
// skipped with why; the golden keeps the whole file.
func TestSuiteJUnit(t *testing.T) {
	s, runs := gameDay()
	var buf bytes.Buffer
	if err := SuiteJUnit(&buf, s, runs); err != nil {
		t.Fatal(err)
	}
	golden(t, "suite.junit.golden", buf.Bytes())

	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if len(doc.Suites) != 3 {
		t.Fatalf("%d test suites, want one per experiment", len(doc.Suites))
	}
	lat, exc, part := doc.Suites[0], doc.Suites[1], doc.Suites[2]
	if lat.Failures+lat.Errors != 0 || lat.Cases[0].Name != "experiment latency-c1-c2 passes" || len(lat.Cases) < 5 {
		t.Errorf("latency suite %+v: want its verdict case and criteria, all passing", lat)
	}
	if exc.Failures < 2 || exc.Cases[0].Failure == nil {
		t.Errorf("exceptions suite: %d failures, verdict case %+v; want the verdict and a criterion failing", exc.Failures, exc.Cases[0])
	}
	if part.Tests != 1 || part.Skipped != 1 || part.Cases[0].Skipped == nil || part.Cases[0].Skipped.Message != api.SkippedAfterFailure {
		t.Errorf("partition suite %+v: want one skipped case saying why", part)
	}
	if doc.Tests != lat.Tests+exc.Tests+part.Tests || doc.Failures != exc.Failures || doc.Skipped != lat.Skipped+exc.Skipped+1 {
		t.Errorf("document counts %d/%d/%d do not add up", doc.Tests, doc.Failures, doc.Skipped)
	}
}
