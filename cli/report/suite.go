package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// SuiteVerdict is the one-line verdict of a suite run: the verdict in
// capitals, then the reason.
func SuiteVerdict(s api.SuiteRun) string {
	v := strings.ToUpper(string(s.Verdict))
	if v == "" {
		v = "RUNNING (" + string(s.Phase) + ")"
	}
	if s.Reason != "" {
		v += " — " + s.Reason
	}
	return v
}

// SuiteText writes the human report of a suite run: the verdict, then one
// row per experiment (its run, verdict and time, or why it was skipped).
// Each run's own report is "chaosctl describe run ID".
func SuiteText(w io.Writer, s api.SuiteRun) error {
	p := &printer{w: w}
	run := s.ID
	notes := []string{string(s.Trigger)}
	if s.DryRun {
		notes = append(notes, "dry run")
	}
	if s.ForcedFreeze != "" {
		notes = append(notes, "forced through freeze window "+s.ForcedFreeze)
	}
	run += " (" + strings.Join(notes, ", ") + ")"
	p.printf("Suite       %s\n", s.Suite)
	p.printf("Suite run   %s\n", run)
	p.printf("%s\n", wrap("Verdict     ", SuiteVerdict(s), Width))
	span := stamp(s.CreatedAt)
	if s.FinishedAt != nil {
		span += " → " + stamp(*s.FinishedAt) + " (" + Seconds(s.FinishedAt.Sub(s.CreatedAt).Seconds()) + ")"
	}
	p.printf("Time        %s\n", span)
	p.printf("On failure  %s\n", map[bool]string{true: "stop (stopOnFailure)", false: "go on (stopOnFailure: false)"}[s.StopOnFailure])
	p.printf("\n")
	tw := p.table()
	fmt.Fprintln(tw, "#\tEXPERIMENT\tRUN\tVERDICT\tTIME\tNOTE")
	for i, e := range s.Entries {
		id, verdict, took, note := orDash(e.RunID), entryStatus(s, i), "-", e.Reason
		if e.StartedAt != nil && e.FinishedAt != nil {
			took = Seconds(e.FinishedAt.Sub(*e.StartedAt).Seconds())
		}
		if e.Skipped != "" {
			note = e.Skipped
		}
		if e.Interrupted {
			note = strings.TrimPrefix(note+"; interrupted", "; ")
		}
		if i == s.Current && s.Phase == api.SuitePausing && e.NotBefore != nil {
			note = "starts at " + stamp(*e.NotBefore) + " (pause)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, e.Experiment, id, verdict, took, oneLineText(note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p.printf("\nEach run's report: chaosctl describe run RUN\n")
	return p.err
}

// entryStatus is what the VERDICT column shows for entry i.
func entryStatus(s api.SuiteRun, i int) string {
	e := s.Entries[i]
	switch {
	case e.Verdict == api.VerdictPass:
		return "pass"
	case e.Verdict != "":
		return strings.ToUpper(string(e.Verdict))
	case e.Skipped != "":
		return "skipped"
	case i == s.Current && s.Phase == api.SuitePausing:
		return "pausing"
	case e.RunID != "":
		return "running (" + string(e.Phase) + ")"
	}
	return "pending"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

// SuiteJUnit writes a finished suite run as ONE JUnit XML document, for
// CI: a test suite per experiment (in the suite's order), each with a
// test case for the experiment's verdict and the test cases JUnit makes
// for that run's criteria; an experiment that did not run is a test
// suite with its verdict case skipped, saying why. runs holds the
// experiments' run records by ID.
func SuiteJUnit(w io.Writer, s api.SuiteRun, runs map[string]api.Run) error {
	doc := junitSuites{Name: "chaosd.suite." + s.Suite}
	if s.FinishedAt != nil {
		doc.Time = fmt.Sprintf("%.3f", s.FinishedAt.Sub(s.CreatedAt).Seconds())
	}
	for i, e := range s.Entries {
		name := fmt.Sprintf("chaosd.%s.%d.%s", s.Suite, i+1, e.Experiment)
		verdictCase := junitCase{Name: "experiment " + e.Experiment + " passes", Classname: "chaosd." + e.Experiment}
		var js junitSuite
		run, ok := runs[e.RunID]
		switch {
		case e.RunID != "" && ok:
			var err error
			if js, err = runSuite(run); err != nil {
				return err
			}
			switch {
			case run.Verdict == api.VerdictError || run.Interrupted:
				verdictCase.Error = &junitProblem{Message: Verdict(run), Type: "error", Text: Verdict(run)}
				js.Errors++
			case run.Verdict != api.VerdictPass:
				verdictCase.Failure = &junitProblem{Message: Verdict(run), Type: "failure", Text: Verdict(run)}
				js.Failures++
			}
		case e.RunID != "":
			// The run's record could not be read: the entry says what it can.
			msg := fmt.Sprintf("run %s: its record could not be read (verdict %s)", e.RunID, orDash(string(e.Verdict)))
			verdictCase.Error = &junitProblem{Message: msg, Type: "error", Text: msg}
			js = junitSuite{Errors: 1}
		default:
			why := e.Skipped
			if why == "" {
				why = "not run"
			}
			if strings.HasPrefix(why, "not started:") {
				verdictCase.Error = &junitProblem{Message: why, Type: "error", Text: why}
				js.Errors++
			} else {
				verdictCase.Skipped = &junitProblem{Message: why}
				js.Skipped++
			}
		}
		js.Name = name
		js.Cases = append([]junitCase{verdictCase}, js.Cases...)
		js.Tests = len(js.Cases)
		if e.StartedAt != nil {
			js.Timestamp = e.StartedAt.UTC().Format("2006-01-02T15:04:05")
		}
		doc.Tests += js.Tests
		doc.Failures += js.Failures
		doc.Errors += js.Errors
		doc.Skipped += js.Skipped
		doc.Suites = append(doc.Suites, js)
	}
	return writeSuites(w, doc)
}
