package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// JUnit writes a run as a JUnit XML test suite, for CI systems that gate
// on test reports: one test case per criterion of the verdict (steady
// state before inject, effects proven, no abort, faults reverted and
// verified, recovered, RTO within target, RPO within target when the run
// has a data-loss check, one case per expected or forbidden alert),
// failed or errored as the run decided, with
// the human report as the suite's output.
func JUnit(w io.Writer, r api.Run) error {
	suite, err := runSuite(r)
	if err != nil {
		return err
	}
	return writeSuites(w, junitSuites{Suites: []junitSuite{suite}})
}

// runSuite is the JUnit test suite of one run (see JUnit).
func runSuite(r api.Run) (junitSuite, error) {
	suite := junitSuite{Name: "chaosd." + r.Experiment, Timestamp: r.CreatedAt.UTC().Format("2006-01-02T15:04:05")}
	if r.FinishedAt != nil {
		suite.Time = fmt.Sprintf("%.3f", r.FinishedAt.Sub(r.CreatedAt).Seconds())
	}
	add := func(name string, fail, errored string) {
		tc := junitCase{Name: name, Classname: "chaosd." + r.Experiment}
		switch {
		case errored != "":
			tc.Error = &junitProblem{Message: errored, Type: "error", Text: errored}
			suite.Errors++
		case fail != "":
			tc.Failure = &junitProblem{Message: fail, Type: "failure", Text: fail}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	toolErr := ""
	if r.Verdict == api.VerdictError || r.Interrupted {
		toolErr = r.Reason
	}
	skipped := func(name, why string) {
		suite.Cases = append(suite.Cases, junitCase{Name: name, Classname: "chaosd." + r.Experiment, Skipped: &junitProblem{Message: why}})
		suite.Skipped++
	}

	steady := ""
	if r.Times.Injected == nil && r.Verdict == api.VerdictFail {
		steady = r.Reason
	}
	add("steady state holds before inject", steady, errIf(toolErr, r.Times.Injected == nil && steady == ""))
	if r.Times.Injected == nil {
		for _, name := range []string{"no abort condition fired", "faults reverted and verified", "recovered", "RTO within target"} {
			skipped(name, "nothing was injected")
		}
		if r.DataLoss != nil {
			skipped(rpoCase, "nothing was injected")
		}
		return finishSuite(suite, r)
	}
	if hasPhase(r, api.PhaseEffects) {
		eff := ""
		if strings.Contains(r.Reason, "no provable effect") || strings.Contains(r.Reason, "effects were never proven") {
			eff = r.Reason
		}
		add("faults took effect", "", eff)
	}
	abort := ""
	if r.Verdict == api.VerdictAborted {
		abort = r.Reason
	}
	add("no abort condition fired", abort, "")
	var notReverted []string
	for _, f := range r.Faults {
		if f.InjectedAt != nil && (f.RevertedAt == nil || !f.Verified) {
			notReverted = append(notReverted, fmt.Sprintf("%s on %s", f.Name, f.Node))
		}
	}
	rev := ""
	if len(notReverted) > 0 {
		rev = "not verified reverted: " + strings.Join(notReverted, ", ")
	}
	add("faults reverted and verified", "", rev)
	if r.Verdict == api.VerdictAborted {
		skipped("recovered", "the run was aborted")
		skipped("RTO within target", "the run was aborted")
		if r.DataLoss != nil {
			skipped(rpoCase, "the run was aborted")
		}
		return finishSuite(suite, r)
	}
	rec := ""
	if r.Times.Recovered == nil && r.Verdict == api.VerdictFail {
		rec = r.Reason
	}
	add("recovered", rec, errIf(toolErr, r.Times.Recovered == nil && rec == ""))
	rpo, rpoErr, dataLost := dataLossCase(r)
	alertFailed := false
	for _, a := range r.Alerts {
		alertFailed = alertFailed || !a.OK
	}
	rto := ""
	if m := r.RTO.MeasuredSeconds; m != nil && *m > r.RTO.TargetSeconds {
		rto = fmt.Sprintf("measured RTO %.3fs exceeds the target %.0fs", *m, r.RTO.TargetSeconds)
	} else if r.Verdict == api.VerdictFail && r.Times.Recovered != nil && !dataLost && !alertFailed {
		rto = r.Reason // e.g. the steady state did not hold during the fault
	}
	add("RTO within target", rto, "")
	if r.DataLoss != nil {
		add(rpoCase, rpo, rpoErr)
	}
	for _, a := range r.Alerts {
		name := "alert " + a.Name + " does not fire"
		if a.Expected {
			name = fmt.Sprintf("alert %s fires within %s", a.Name, secondsDuration(a.WithinSeconds))
		}
		add(name, errIf(a.Reason, !a.OK), "")
	}
	return finishSuite(suite, r)
}

// rpoCase is the test case of the data-loss check.
const rpoCase = "RPO within target"

// dataLossCase judges the data-loss check: failed when the measured RPO
// is over its target, errored when it could not be measured.
func dataLossCase(r api.Run) (fail, errored string, lost bool) {
	d := r.DataLoss
	switch {
	case d == nil:
		return "", "", false
	case d.MeasuredSeconds == nil:
		msg := d.Error
		if msg == "" {
			msg = "not measured"
		}
		return "", "data-loss check: " + msg, false
	case *d.MeasuredSeconds > d.TargetSeconds:
		return fmt.Sprintf("measured RPO %.3fs exceeds the target %gs: %d of %d acknowledged writes lost",
			*d.MeasuredSeconds, d.TargetSeconds, d.Lost, d.Acknowledged), "", true
	}
	return "", "", false
}

func errIf(msg string, cond bool) string {
	if cond {
		return msg
	}
	return ""
}

func hasPhase(r api.Run, phase api.Phase) bool {
	for _, p := range r.Phases {
		if p.Phase == phase {
			return true
		}
	}
	return false
}

// finishSuite counts the cases and adds the human report as the suite's
// output.
func finishSuite(s junitSuite, r api.Run) (junitSuite, error) {
	s.Tests = len(s.Cases)
	var out strings.Builder
	if err := Text(&out, r); err != nil {
		return s, err
	}
	s.SystemOut = out.String()
	return s, nil
}

// writeSuites writes a JUnit XML document.
func writeSuites(w io.Writer, doc junitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

type junitSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	// Name and the counts are set for a suite run's document.
	Name     string       `xml:"name,attr,omitempty"`
	Tests    int          `xml:"tests,attr,omitempty"`
	Failures int          `xml:"failures,attr,omitempty"`
	Errors   int          `xml:"errors,attr,omitempty"`
	Skipped  int          `xml:"skipped,attr,omitempty"`
	Time     string       `xml:"time,attr,omitempty"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr,omitempty"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
	SystemOut string      `xml:"system-out,omitempty"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}
