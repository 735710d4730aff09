package cli

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/api"
)

// junitDoc is the part of a JUnit file the tests read.
type junitDoc struct {
	Name     string `xml:"name,attr"`
	Failures int    `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestRunSuiteWaitJUnit: a game day with a failure in its second
// experiment gives ONE JUnit file (a test suite per experiment, a case
// per experiment and criterion, the third skipped), exit 1, and the
// progress on stderr only.
func TestRunSuiteWaitJUnit(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "run", "suite", "game-day", "--wait", "-o", "junit", "--poll", "100ms")...)
	if got.code != ExitFailed {
		t.Fatalf("exit %d, want %d (the system failed an experiment)\n%s", got.code, ExitFailed, got.stderr)
	}
	var doc junitDoc
	if err := xml.Unmarshal([]byte(got.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JUnit document: %v\n%s", err, got.stdout)
	}
	if doc.Name != "chaosd.suite.game-day" || len(doc.Suites) != 3 {
		t.Fatalf("document %q with %d test suites; want the suite with one per experiment", doc.Name, len(doc.Suites))
	}
	first, second, third := doc.Suites[0], doc.Suites[1], doc.Suites[2]
	if first.Cases[0].Name != "experiment exp-pass passes" || first.Cases[0].Failure != nil || len(first.Cases) < 4 {
		t.Errorf("first test suite %+v: want its verdict case passing and its criteria", first)
	}
	if second.Cases[0].Failure == nil || doc.Failures < 2 {
		t.Errorf("second test suite: verdict case %+v, %d failures in all; want the failure and its criterion", second.Cases[0], doc.Failures)
	}
	if len(third.Cases) != 1 || third.Cases[0].Skipped == nil || third.Cases[0].Skipped.Message != api.SkippedAfterFailure {
		t.Errorf("third test suite %+v: want one skipped case saying why", third)
	}
	for _, want := range []string{
		"suite run s-0001 of game-day started: 3 experiments",
		"[1/3] exp-pass: run r-0001, phase observing",
		"[2/3] pausing before exp-fail",
		"[2/3] exp-fail: run r-0002",
		"suite FAIL — exp-fail (experiments[1], run r-0002)",
	} {
		if !strings.Contains(got.stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, got.stderr)
		}
	}
	if strings.Contains(got.stdout, "pausing") {
		t.Error("progress went to stdout")
	}
}

func TestRunSuiteExitCodesAndOutputs(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"pass", []string{"run", "suite", "all-pass", "--wait", "--poll", "100ms"}, ExitOK,
			[]string{"Suite       all-pass", "PASS — all 2 experiments passed", "1  exp-pass", "2  exp-pass"}, nil},
		{"tool error", []string{"run", "suite", "tool-error", "--wait", "--poll", "100ms"}, ExitTool,
			[]string{"ERROR — exp-error"}, []string{"suite run s-"}},
		{"no wait prints the ID", []string{"run", "suite", "game-day"}, ExitOK, []string{"s-"}, nil},
		{"no wait json", []string{"run", "suite", "all-pass", "-o", "yaml"}, ExitOK, []string{"suite: all-pass", "phase: pending"}, nil},
		{"unknown suite", []string{"run", "suite", "nope"}, ExitUsage, nil, []string{`unknown suite "nope"`}},
		{"junit needs wait", []string{"run", "suite", "game-day", "-o", "junit"}, ExitUsage, nil, []string{"-o junit reports a verdict: add --wait"}},
		{"no name", []string{"run", "suite"}, ExitUsage, nil, []string{"run suite needs exactly one suite NAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chaosctl(t, append(conn, tc.args...)...)
			if got.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tc.code, got.stdout, got.stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(got.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, got.stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
		})
	}
}

// TestGetAndDescribeSuites: get suites, get suite-runs (and --suite),
// describe suite-run in text and JUnit.
func TestGetAndDescribeSuites(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "get", "suites")...)
	for _, want := range []string{"NAME", "game-day   exp-pass,exp-fail,exp-pass   stop", "1m", "0 10 * * 3 (Europe/Berlin)", "auto (baseline)"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("get suites lacks %q:\n%s", want, got.stdout)
		}
	}
	if got := chaosctl(t, append(conn, "run", "suite", "game-day", "--wait", "--poll", "100ms")...); got.code != ExitFailed {
		t.Fatalf("run: exit %d %s", got.code, got.stderr)
	}
	chaosctl(t, append(conn, "run", "suite", "all-pass", "--wait", "--poll", "100ms")...)

	got = chaosctlAt(t, append(conn, "get", "suite-runs")...)
	lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "s-0002   all-pass   manual    done    pass") || !strings.Contains(lines[2], "fail      1/3") {
		t.Errorf("get suite-runs:\n%s", got.stdout)
	}
	got = chaosctl(t, append(conn, "get", "suite-runs", "--suite", "game-day", "-o", "json")...)
	var runs []api.SuiteRun
	if err := json.Unmarshal([]byte(got.stdout), &runs); err != nil || len(runs) != 1 || runs[0].Suite != "game-day" {
		t.Errorf("--suite game-day -o json: %v %s", err, got.stdout)
	}

	got = chaosctl(t, append(conn, "describe", "suite-run", "s-0001")...)
	for _, want := range []string{"Suite run   s-0001 (manual)", "3  exp-pass", "skipped", "stopped at the first failure", "chaosctl describe run RUN"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("describe suite-run lacks %q:\n%s", want, got.stdout)
		}
	}
	if got.code != ExitOK {
		t.Errorf("describe exits %d; a suite's verdict does not change describe's exit code", got.code)
	}
	got = chaosctl(t, append(conn, "describe", "suite-run", "s-0001", "-o", "junit")...)
	var doc junitDoc
	if err := xml.Unmarshal([]byte(got.stdout), &doc); err != nil || len(doc.Suites) != 3 {
		t.Errorf("describe -o junit: %v, %d test suites", err, len(doc.Suites))
	}
	if got := chaosctl(t, append(conn, "describe", "suite-run", "s-9999")...); got.code != ExitUsage || !strings.Contains(got.stderr, "not found") {
		t.Errorf("unknown suite run: exit %d %s", got.code, got.stderr)
	}
}

// TestAbortSuiteRun: abort with a suite run ID aborts the suite (the
// current experiment, and no later one), and --wait on it then reports
// aborted with exit 1.
func TestAbortSuiteRun(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "run", "suite", "forever")...)
	id := strings.TrimSpace(got.stdout)
	if got.code != ExitOK || id != "s-0001" {
		t.Fatalf("run: %d %q %s", got.code, got.stdout, got.stderr)
	}
	got = chaosctl(t, append(conn, "abort", id)...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "suite run s-0001: abort requested") || !strings.Contains(got.stdout, "no further experiment starts") {
		t.Fatalf("abort: exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	if !slices.Equal(f.abortCalls(), []string{"s-0001"}) {
		t.Errorf("abort calls %v: want the suite route", f.abortCalls())
	}
	// The fake serves the state at the abort once, then the end.
	chaosctl(t, append(conn, "describe", "suite-run", id)...)
	got = chaosctl(t, append(conn, "describe", "suite-run", id)...)
	if !strings.Contains(got.stdout, "ABORTED") || !strings.Contains(got.stdout, api.SkippedAborted) {
		t.Errorf("after abort:\n%s", got.stdout)
	}
	if got := chaosctl(t, append(conn, "abort", id)...); got.code != ExitTool || !strings.Contains(got.stderr, "already finished") {
		t.Errorf("second abort: exit %d %s", got.code, got.stderr)
	}
}

// TestValidateSuites: validate takes suites, checks their experiments
// against the files (or the built-in library), and the examples are
// valid.
func TestValidateSuites(t *testing.T) {
	examples, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	got := chaosctl(t, append([]string{"validate"}, examples...)...)
	if got.code != ExitOK {
		t.Fatalf("examples are not valid (exit %d):\n%s", got.code, got.stderr)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "rushed.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: chaosd.io/v1alpha1
kind: Suite
metadata:
  name: rushed
spec:
  experiments:
    - experiment: latency-c1-c2
    - experiment: partition-c1-c3
  pause: 5s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	got = chaosctl(t, "validate", "-f", bad)
	if got.code != ExitUsage {
		t.Fatalf("exit %d, want %d", got.code, ExitUsage)
	}
	for _, want := range []string{
		bad + `:8:19: spec.experiments[1].experiment: unknown experiment "partition-c1-c3"`,
	} {
		if !strings.Contains(got.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, got.stderr)
		}
	}
	// Against the experiments among the files given, not the library.
	got = chaosctl(t, "validate", "-f", bad, "-f", "../experiments/library/latency-c1-c2.yaml")
	if !strings.Contains(got.stderr, `unknown experiment "partition-c1-c3" (the library has latency-c1-c2)`) {
		t.Errorf("against the files: %s", got.stderr)
	}
}
