package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chaosd/chaosd/api"
)

// document is what the HTML and Markdown reports show, worked out once
// from the run record and its timeline.
type document struct {
	Experiment   string
	RunID        string
	RunNotes     string // "manual, dry run"
	Verdict      string // PASS, FAIL, ABORTED, ERROR, RUNNING
	VerdictClass string
	Reason       string
	RTOLine      string
	Facts        []fact
	RTO          rtoBar
	Chart        *chart
	Criteria     []criterionRow
	Times        []timeRow
	RefName      string
	Faults       []faultRow
	FaultNotes   []string
	Series       []seriesRow
	SeriesNote   string // why there are no curves
	SeriesWindow string // "10:00:00Z to 10:01:40Z, one point every 1s"
	Probes       []probeRow
	Alerts       []alertRow
	Silences     []silenceRow
	DataLoss     *dataLossRow
	Events       []eventRow
}

type fact struct {
	Label, Value, Detail, Class string
}

type criterionRow struct {
	Criterion
	Class string
}

type timeRow struct {
	Name, At, Offset string
}

type faultRow struct {
	Name, Kind, Node, Injected, Reverted, Verified string
	VerifiedClass                                  string
}

type seriesRow struct {
	Name, Condition, Phases, Query string
	Points, Values                 int
	Min, Max                       string
	Unhealthy                      string // "+2.0s to +30.0s (28.0s)" or "never"
	UnhealthyClass                 string
	Error                          string
}

type probeRow struct {
	Phase, Probe, Condition, Last, LastClass string
	Evaluations, Failures                    int
}

type alertRow struct {
	Name, Kind, Pending, Fired, Resolved, TTA, Silenced, Result, ResultClass, Reason string
}

type silenceRow struct {
	ID, Matchers, Created, Ends, Expired, Error string
}

type dataLossRow struct {
	Target, Writes, Acknowledged, Lost, FirstLost, LastLost, Measured, Error string
}

type eventRow struct {
	At, Offset, Phase, Message string
}

// rtoBar is the measured RTO against its target, as a bar.
type rtoBar struct {
	Width, Height  float64
	X0, X1         float64
	Measured       bool
	MeasuredW      float64
	Class          string
	TargetX        float64
	MeasuredLabel  string
	MeasuredLabelX float64
	MeasuredInside bool // the label sits on the bar
	TargetLabel    string
	TargetLabelX   float64
}

var statusClass = map[Status]string{
	StatusOK: "ok", StatusFail: "fail", StatusError: "error", StatusAborted: "aborted",
	StatusSkipped: "muted", StatusPending: "pending", StatusNA: "muted",
}

func newDocument(r api.Run, tl *api.Timeline) *document {
	d := &document{Experiment: r.Experiment, RunID: r.ID, Reason: r.Reason, RTOLine: RTOLine(r)}
	var notes []string
	if r.Trigger != "" {
		notes = append(notes, string(r.Trigger))
	}
	if r.DryRun {
		notes = append(notes, "dry run")
	}
	d.RunNotes = strings.Join(notes, ", ")
	d.Verdict = strings.ToUpper(string(r.Verdict))
	d.VerdictClass = string(r.Verdict)
	if r.Verdict == "" {
		d.Verdict, d.VerdictClass = "RUNNING", "running"
		d.Reason = "phase " + string(r.Phase)
	}
	if r.Interrupted {
		d.Reason = strings.TrimPrefix(d.Reason+"; interrupted: chaosd restarted while the run was going", "; ")
	}

	ref, refName := reference(r)
	d.RefName = refName
	d.Facts = facts(r, ref)
	d.RTO = newRTOBar(r)
	d.Chart = newChart(r, tl)
	for _, c := range Criteria(r) {
		d.Criteria = append(d.Criteria, criterionRow{Criterion: c, Class: statusClass[c.Status]})
	}
	row := func(name string, t *time.Time) {
		if t == nil {
			d.Times = append(d.Times, timeRow{Name: name, At: "-", Offset: ""})
			return
		}
		d.Times = append(d.Times, timeRow{Name: name, At: stamp(*t), Offset: offset(*t, ref)})
	}
	row("started", r.Times.Started)
	row("injected", r.Times.Injected)
	row("first impact", r.Times.FirstImpact)
	row("reverted", r.Times.Reverted)
	row("recovered", r.Times.Recovered)
	if r.FinishedAt != nil {
		row("finished", r.FinishedAt)
	}
	d.Faults, d.FaultNotes = faultRows(r, ref)
	d.Series, d.SeriesNote, d.SeriesWindow = seriesRows(r, tl, ref)
	d.Probes = probeRows(r)
	d.Alerts = alertRows(r, ref)
	for _, s := range r.Silences {
		row := silenceRow{ID: s.ID, Matchers: strings.Join(s.Matchers, ", "), Created: atOffset(&s.CreatedAt, ref),
			Ends: atOffset(&s.EndsAt, ref), Expired: atOffset(s.ExpiredAt, ref), Error: s.Error}
		if s.ExpiredBy != "" && s.ExpiredAt != nil {
			row.Expired += " by the " + s.ExpiredBy
		}
		d.Silences = append(d.Silences, row)
	}
	if dl := r.DataLoss; dl != nil {
		d.DataLoss = &dataLossRow{Target: secondsDuration(dl.TargetSeconds), Writes: fmt.Sprint(dl.Writes),
			Acknowledged: fmt.Sprint(dl.Acknowledged), Lost: fmt.Sprint(dl.Lost),
			FirstLost: atOffset(dl.FirstLost, ref), LastLost: atOffset(dl.LastLost, ref), Measured: "-", Error: dl.Error}
		if dl.MeasuredSeconds != nil {
			d.DataLoss.Measured = Seconds(*dl.MeasuredSeconds)
		}
	}
	for _, e := range r.Events {
		d.Events = append(d.Events, eventRow{At: stamp(e.Time), Offset: offset(e.Time, ref), Phase: string(e.Phase), Message: e.Message})
	}
	return d
}

// stamp is a time as the reports print it: RFC 3339 in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// atOffset is "+12.0s", or "-" for no time.
func atOffset(t *time.Time, ref *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return offset(*t, ref)
}

func facts(r api.Run, ref *time.Time) []fact {
	var out []fact
	rto := fact{Label: "RTO", Value: "-", Detail: "target " + secondsDuration(r.RTO.TargetSeconds)}
	switch m := r.RTO.MeasuredSeconds; {
	case m != nil:
		rto.Value = Seconds(*m)
		rto.Class = "ok"
		if *m > r.RTO.TargetSeconds {
			rto.Class = "fail"
		}
	case r.Verdict == "":
		rto.Value = "not yet"
	case r.Times.Injected != nil && r.Times.Recovered == nil:
		rto.Value, rto.Class = "not recovered", "fail"
	}
	if r.RTO.ResolutionSeconds > 0 {
		rto.Detail += " · ±" + secondsDuration(r.RTO.ResolutionSeconds)
	}
	out = append(out, rto)
	t := r.Times
	if t.Injected != nil {
		f := fact{Label: "Fault window", Value: "-", Detail: "injected " + stamp(*t.Injected)}
		if t.Reverted != nil {
			f.Value = Seconds(t.Reverted.Sub(*t.Injected).Seconds())
		} else {
			f.Value = "in place"
		}
		out = append(out, f)
	}
	impact := fact{Label: "First impact", Value: "none seen"}
	if t.FirstImpact != nil {
		impact.Value = offset(*t.FirstImpact, ref)
		impact.Detail = "after the inject"
		impact.Class = "fail"
	} else if t.Injected == nil {
		impact.Value = "-"
	}
	out = append(out, impact)
	rec := fact{Label: "Recovered", Value: "-"}
	switch {
	case t.Recovered != nil:
		rec.Value, rec.Class = offset(*t.Recovered, ref), "ok"
		if t.Reverted != nil {
			rec.Detail = Seconds(t.Recovered.Sub(*t.Reverted).Seconds()) + " after the revert"
		}
	case t.Injected != nil && r.Verdict != "":
		rec.Value, rec.Class = "no", "fail"
	}
	out = append(out, rec)
	if r.BlindSeconds > 0 {
		out = append(out, fact{Label: "Blind", Value: secondsDuration(r.BlindSeconds), Detail: "probes could not be evaluated", Class: "error"})
	}
	return out
}

func newRTOBar(r api.Run) rtoBar {
	b := rtoBar{Width: chartW, Height: 50, X0: chartX0, X1: chartX1}
	target := r.RTO.TargetSeconds
	m := r.RTO.MeasuredSeconds
	scale := target
	if m != nil {
		scale = math.Max(scale, *m*1.04)
	}
	if scale <= 0 {
		scale = 1
	}
	xOf := func(s float64) float64 { return chartX0 + s/scale*(chartX1-chartX0) }
	b.TargetX = xOf(target)
	b.TargetLabel = "target " + secondsDuration(target)
	b.TargetLabelX = b.TargetX - 4
	if m == nil {
		b.MeasuredLabel = measuredRTO(r)
		b.MeasuredLabelX = chartX0 + 6
		return b
	}
	b.Measured = true
	b.MeasuredW = math.Max(xOf(*m)-chartX0, 2)
	b.Class = "ok"
	if *m > target {
		b.Class = "fail"
	}
	b.MeasuredLabel = "measured " + Seconds(*m)
	if r.RTO.ResolutionSeconds > 0 {
		b.MeasuredLabel += " ±" + secondsDuration(r.RTO.ResolutionSeconds)
	}
	if target > 0 {
		b.MeasuredLabel += " · " + percent(*m/target) + " of the target"
	}
	w := float64(len([]rune(b.MeasuredLabel))) * charW
	b.MeasuredLabelX = chartX0 + b.MeasuredW + 6
	if b.MeasuredLabelX+w > b.TargetX-90 && b.MeasuredW > w+12 {
		b.MeasuredLabelX, b.MeasuredInside = chartX0+6, true
	}
	return b
}

func faultRows(r api.Run, ref *time.Time) ([]faultRow, []string) {
	var rows []faultRow
	var notes []string
	for _, f := range r.Faults {
		node := f.Node
		if f.Cluster != "" {
			node = f.Cluster + "/" + f.Node
		}
		if f.Instance != "" {
			node += " " + f.Instance
		}
		row := faultRow{Name: f.Name, Kind: f.Kind, Node: node, Injected: atOffset(f.InjectedAt, ref), Reverted: "no",
			Verified: yesNo(f.Verified), VerifiedClass: "ok"}
		if f.RevertedAt != nil {
			row.Reverted = offset(*f.RevertedAt, ref)
			if f.RevertReason != "" {
				row.Reverted += " (" + f.RevertReason + ")"
			}
		}
		if !f.Verified {
			row.VerifiedClass = "fail"
		}
		rows = append(rows, row)
		if f.Error != "" {
			notes = append(notes, fmt.Sprintf("%s on %s: %s", f.Name, node, f.Error))
		}
		if f.TargetChanged != "" {
			notes = append(notes, fmt.Sprintf("%s on %s: target changed: %s", f.Name, node, f.TargetChanged))
		}
	}
	return rows, notes
}

func seriesRows(r api.Run, tl *api.Timeline, ref *time.Time) (rows []seriesRow, note, window string) {
	switch {
	case tl == nil:
		return nil, "Probe curves not requested: this report was made from the run record alone.", ""
	case tl.Error != "":
		return nil, tl.Error, ""
	case len(tl.Series) == 0:
		note = "The run has no probes to draw."
	}
	if !tl.Start.IsZero() {
		window = fmt.Sprintf("Prometheus range queries from %s to %s, one point every %s",
			stamp(tl.Start), stamp(tl.End), secondsDuration(tl.StepSeconds))
	}
	step := time.Duration(tl.StepSeconds * float64(time.Second))
	for _, s := range tl.Series {
		row := seriesRow{Name: s.Name, Condition: s.Condition, Phases: seriesPhases(s), Query: s.Query,
			Points: len(s.Points), Min: "-", Max: "-", Unhealthy: "-", Error: s.Error}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range s.Points {
			if !math.IsNaN(p.Value) {
				row.Values++
				lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
			}
		}
		if row.Values > 0 {
			row.Min, row.Max = FormatValue(lo), FormatValue(hi)
		}
		if tl.Error == "" && s.Error == "" {
			from, to := runSpan(r, tl.End)
			row.Unhealthy, row.UnhealthyClass = unhealthySpans(s.Points, step, from, to, ref)
		}
		rows = append(rows, row)
	}
	return rows, note, window
}

// unhealthySpans lists when, during the run (from..to), a probe was not
// healthy: "+2.0s to +30.0s (29.0s)", at most three spans and a count of
// the rest.
func unhealthySpans(pts []api.Point, step time.Duration, from, to time.Time, ref *time.Time) (string, string) {
	type span struct{ from, to time.Time }
	var spans []span
	bad := func(p api.Point) bool { return !p.OK && !p.Time.Before(from) && !p.Time.After(to) }
	for i, p := range pts {
		if !bad(p) {
			continue
		}
		if n := len(spans); n > 0 && i > 0 && bad(pts[i-1]) {
			spans[n-1].to = p.Time
			continue
		}
		spans = append(spans, span{p.Time, p.Time})
	}
	if len(spans) == 0 {
		return "never", "ok"
	}
	var parts []string
	for i, s := range spans {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(spans)-3))
			break
		}
		if s.from.Equal(s.to) {
			parts = append(parts, "at "+offset(s.from, ref))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s to %s (%s)", offset(s.from, ref), offset(s.to, ref),
			Seconds(s.to.Sub(s.from).Seconds()+step.Seconds())))
	}
	return strings.Join(parts, ", "), "fail"
}

func probeRows(r api.Run) []probeRow {
	var rows []probeRow
	for _, ph := range r.Phases {
		for _, s := range ph.Probes {
			row := probeRow{Phase: string(ph.Phase), Probe: s.Name, Condition: s.Condition,
				Evaluations: s.Evaluations, Failures: s.Failures, Last: ProbeValue(s.Last), LastClass: "ok"}
			if ph.Phase == api.PhaseAbort {
				row.Last = AbortValue(s.Last)
				if strings.Contains(row.Last, "firing") {
					row.LastClass = "fail"
				}
			} else if strings.Contains(row.Last, "FAIL") {
				row.LastClass = "fail"
			}
			if row.Last == "-" {
				row.LastClass = "muted"
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func alertRows(r api.Run, ref *time.Time) []alertRow {
	var rows []alertRow
	for _, a := range r.Alerts {
		row := alertRow{Name: alertName(a), Kind: "forbidden", Pending: atOffset(a.PendingAt, ref),
			Fired: atOffset(a.FiredAt, ref), Resolved: atOffset(a.ResolvedAt, ref), TTA: "-", Silenced: yesNo(a.Silenced),
			Result: string(StatusOK), ResultClass: "ok", Reason: a.Reason}
		if a.Expected {
			row.Kind = "expected"
			if a.WithinSeconds > 0 {
				row.Kind += " within " + secondsDuration(a.WithinSeconds)
			}
		}
		if a.TTASeconds != nil {
			row.TTA = Seconds(*a.TTASeconds)
		}
		if !a.OK {
			row.Result, row.ResultClass = string(StatusFail), "fail"
		}
		rows = append(rows, row)
	}
	return rows
}
