package e2e

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/lab"
)

// TestIntegrationSuiteGameDayInTheLab runs a game day in the lab, end to
// end: chaosctl run suite --wait -o junit against chaosd, real agents,
// kernel and Prometheus. e2e/testdata/suites/e2e-game-day.yaml is a
// partition that passes, one that must hold its steady state during the
// cut and fails, and a third the suite never starts (stopOnFailure).
// Then a second run of it is aborted during its first experiment: that
// run is aborted, no later one starts, no fault is left.
func TestIntegrationSuiteGameDayInTheLab(t *testing.T) {
	requireRoot(t)
	l := startLab(t, "e2e-suites", "ces", repoPath(t, "e2e/testdata/suites"), nil)

	code, stdout, stderr := chaosctl(t, l, "run", "suite", "e2e-game-day", "--wait", "-o", "junit")
	t.Logf("chaosctl stderr:\n%s", stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the second experiment fails)\n%s", code, stdout)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("stdout is not one JUnit document: %v\n%s", err, stdout)
	}
	if len(doc.Suites) != 3 || doc.Suites[0].Failures != 0 || len(doc.Suites[0].Cases) < 5 || doc.Suites[1].Failures == 0 || doc.Suites[2].Skipped != 1 {
		t.Errorf("JUnit test suites %+v: want the first passing with its criteria, the second failing, the third skipped", doc.Suites)
	}
	for _, want := range []string{"[1/3] partition-short", "[2/3] pausing before partition-must-hold", "[2/3] partition-must-hold: run r-", "suite FAIL"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress on stderr lacks %q", want)
		}
	}

	sr := lastSuiteRun(t, l)
	e := sr.Entries
	if sr.Verdict != api.VerdictFail || e[0].Verdict != api.VerdictPass || e[1].Verdict != api.VerdictFail ||
		e[2].RunID != "" || e[2].Skipped != api.SkippedAfterFailure {
		t.Fatalf("suite run %s (%s), entries %+v", sr.Verdict, sr.Reason, e)
	}
	// The pause: the second experiment's 10s baseline began after the
	// first experiment's end.
	if gap := e[1].StartedAt.Sub(*e[0].FinishedAt); gap < 10*time.Second {
		t.Errorf("second experiment started %s after the first ended; its baseline is 10s", gap)
	}
	for _, en := range e[:2] {
		_, out, _ := chaosctl(t, l, "describe", "run", en.RunID, "-o", "json")
		var run api.Run
		if err := json.Unmarshal(out, &run); err != nil || run.SuiteRun != sr.ID || run.Verdict != en.Verdict {
			t.Errorf("run %s: %v, suiteRun %q verdict %s; want it to name %s with the entry's verdict", en.RunID, err, run.SuiteRun, run.Verdict, sr.ID)
		}
	}
	assertNoFaultLeft(t, l)

	// Abort stops the whole suite.
	settle(api.Run{FinishedAt: sr.FinishedAt})
	code, out, errOut := chaosctl(t, l, "run", "suite", "e2e-game-day")
	id := strings.TrimSpace(string(out))
	if code != 0 || !strings.HasPrefix(id, api.SuiteRunPrefix) {
		t.Fatalf("run suite: exit %d %q %s", code, out, errOut)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cur := describeSuiteRun(t, l, id)
		if cur.Current == 0 && cur.Entries[0].Phase == api.PhaseObserving {
			break
		}
		if cur.Phase == api.SuiteDone || time.Now().After(deadline) {
			t.Fatalf("the first experiment never got to observing: %+v", cur)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code, out, errOut := chaosctl(t, l, "abort", id); code != 0 || !strings.Contains(string(out), "abort requested") {
		t.Fatalf("abort: exit %d %s %s", code, out, errOut)
	}
	var final api.SuiteRun
	for final = describeSuiteRun(t, l, id); final.Phase != api.SuiteDone; final = describeSuiteRun(t, l, id) {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("aborted suite run did not end: %+v", final)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if final.Verdict != api.VerdictAborted || final.Entries[0].Verdict != api.VerdictAborted ||
		final.Entries[1].Skipped != api.SkippedAborted || final.Entries[2].Skipped != api.SkippedAborted {
		t.Errorf("after abort: %s (%s), entries %+v", final.Verdict, final.Reason, final.Entries)
	}
	assertNoFaultLeft(t, l)
}

func describeSuiteRun(t *testing.T, l *lab.Lab, id string) api.SuiteRun {
	t.Helper()
	code, out, errOut := chaosctl(t, l, "describe", "suite-run", id, "-o", "json")
	var sr api.SuiteRun
	if err := json.Unmarshal(out, &sr); err != nil {
		t.Fatalf("describe suite-run %s: exit %d %v %s", id, code, err, errOut)
	}
	return sr
}

func lastSuiteRun(t *testing.T, l *lab.Lab) api.SuiteRun {
	t.Helper()
	_, out, errOut := chaosctl(t, l, "get", "suite-runs", "-o", "json")
	var runs []api.SuiteRun
	if err := json.Unmarshal(out, &runs); err != nil || len(runs) == 0 {
		t.Fatalf("get suite-runs: %v %s %s", err, out, errOut)
	}
	return runs[0]
}
