// Package report renders a run record (api.Run) as the human report that
// chaosctl prints: verdict, measured times, RTO against its target, faults
// per node, probe summaries per phase and the events timeline. It fits in
// 100 columns.
package report

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chaosd/chaosd/api"
)

// Width is the number of columns the report is written for.
const Width = 100

// Text writes the human report of r to w.
func Text(w io.Writer, r api.Run) error {
	p := &printer{w: w}
	p.header(r)
	p.times(r)
	p.faults(r)
	p.alerts(r)
	p.phases(r)
	p.events(r)
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format, args...)
}

// table returns a tabwriter whose output goes through p (so errors are kept).
func (p *printer) table() *tabwriter.Writer {
	return tabwriter.NewWriter(writerFunc(func(b []byte) (int, error) {
		p.printf("%s", b)
		return len(b), p.err
	}), 0, 0, 2, ' ', 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *printer) header(r api.Run) {
	run := r.ID
	var notes []string
	if r.Trigger != "" {
		notes = append(notes, string(r.Trigger))
	}
	if r.DryRun {
		notes = append(notes, "dry run")
	}
	if len(notes) > 0 {
		run += " (" + strings.Join(notes, ", ") + ")"
	}
	p.printf("Experiment  %s\n", r.Experiment)
	p.printf("Run         %s\n", run)
	p.printf("%s\n", wrap("Verdict     ", Verdict(r), Width))
	p.printf("RTO         %s\n", RTOLine(r))
	if r.DataLoss != nil {
		p.printf("%s\n", wrap("RPO         ", RPOLine(*r.DataLoss), Width))
	}
	if r.BlindSeconds > 0 {
		p.printf("Blind       %s: the probes could not be evaluated (counted neither for nor against the system)\n",
			secondsDuration(r.BlindSeconds))
	}
}

// Verdict is the one-line verdict: the verdict in capitals, then the reason.
func Verdict(r api.Run) string {
	v := strings.ToUpper(string(r.Verdict))
	if v == "" {
		v = "RUNNING (phase " + string(r.Phase) + ")"
	}
	reason := r.Reason
	if r.Interrupted {
		if reason != "" {
			reason += "; "
		}
		reason += "interrupted: chaosd restarted while the run was going"
	}
	if reason != "" {
		v += " — " + reason
	}
	return v
}

// RTOLine is "14.0s (target 15m0s) — resolution ±250ms" (the probe
// interval, or Prometheus' scrape interval when changes between rounds
// were placed by range queries).
func RTOLine(r api.Run) string {
	rto := r.RTO
	s := fmt.Sprintf("%s (target %s)", measuredRTO(r), secondsDuration(rto.TargetSeconds))
	if rto.ResolutionSeconds > 0 {
		s += fmt.Sprintf(" — resolution ±%s", secondsDuration(rto.ResolutionSeconds))
	}
	return s
}

// RPOLine is the data-loss check: "4.5s (target 1m0s) — 9 of 31
// acknowledged writes lost (62 writes)".
func RPOLine(d api.DataLoss) string {
	measured := "not measured"
	if d.MeasuredSeconds != nil {
		measured = Seconds(*d.MeasuredSeconds)
	}
	s := fmt.Sprintf("%s (target %s) — %d of %d acknowledged writes lost (%d writes)",
		measured, secondsDuration(d.TargetSeconds), d.Lost, d.Acknowledged, d.Writes)
	if d.Error != "" {
		s += "; " + d.Error
	}
	return s
}

// measuredRTO is "14.0s", "not recovered", "not measured (yet)".
func measuredRTO(r api.Run) string {
	switch {
	case r.RTO.MeasuredSeconds != nil:
		return Seconds(*r.RTO.MeasuredSeconds)
	case r.Verdict == "":
		return "not measured yet"
	case r.Times.Injected != nil && r.Times.Recovered == nil:
		return "not recovered"
	default:
		return "not measured"
	}
}

func (p *printer) times(r api.Run) {
	ref, refName := reference(r)
	p.printf("\nTimes (offsets from %s)\n", refName)
	tw := p.table()
	row := func(name string, t *time.Time) {
		if t == nil {
			fmt.Fprintf(tw, "  %s\t-\n", name)
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, t.Format(time.RFC3339), offset(*t, ref))
	}
	row("started", r.Times.Started)
	row("injected", r.Times.Injected)
	row("first impact", r.Times.FirstImpact)
	row("reverted", r.Times.Reverted)
	row("recovered", r.Times.Recovered)
	if r.FinishedAt != nil {
		row("finished", r.FinishedAt)
	}
	tw.Flush()
}

// reference is the moment offsets are measured from: the injection, or
// when there was none the start of the run.
func reference(r api.Run) (*time.Time, string) {
	switch {
	case r.Times.Injected != nil:
		return r.Times.Injected, "injected"
	case r.Times.Started != nil:
		return r.Times.Started, "started"
	default:
		return &r.CreatedAt, "created"
	}
}

func (p *printer) faults(r api.Run) {
	p.printf("\nFaults\n")
	if len(r.Faults) == 0 {
		p.printf("  none injected\n")
		return
	}
	ref, _ := reference(r)
	tw := p.table()
	fmt.Fprintf(tw, "  NAME\tKIND\tNODE\tINJECTED\tREVERTED\tVERIFIED\n")
	var notes []string
	for _, f := range r.Faults {
		node := f.Node
		if f.Cluster != "" {
			node = f.Cluster + "/" + f.Node
		}
		if f.Instance != "" {
			node += " " + f.Instance
		}
		reverted := "no"
		if f.RevertedAt != nil {
			reverted = "yes " + offset(*f.RevertedAt, ref)
			if f.RevertReason != "" {
				reverted += " (" + f.RevertReason + ")"
			}
		}
		injected := "-"
		if f.InjectedAt != nil {
			injected = offset(*f.InjectedAt, ref)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, node, injected, reverted, yesNo(f.Verified))
		if f.Error != "" {
			notes = append(notes, fmt.Sprintf("%s on %s: %s", f.Name, node, f.Error))
		}
	}
	tw.Flush()
	for _, n := range notes {
		p.printf("%s\n", wrap("  error: ", n, Width))
	}
}

// alerts lists the alert checks (what each alert did, relative to the
// same reference as the faults) and the run's silences.
func (p *printer) alerts(r api.Run) {
	if len(r.Alerts) == 0 && len(r.Silences) == 0 {
		return
	}
	ref, _ := reference(r)
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return offset(*t, ref)
	}
	p.printf("\nAlerts\n")
	tw := p.table()
	fmt.Fprintf(tw, "  ALERT\tFIRE\tPENDING\tFIRED\tRESOLVED\tTTA\tRESULT\n")
	for _, a := range r.Alerts {
		name := a.Name
		for _, k := range sortedKeys(a.Labels) {
			name += fmt.Sprintf(" %s=%s", k, a.Labels[k])
		}
		want := "never"
		if a.Expected {
			want = "<= " + secondsDuration(a.WithinSeconds)
		}
		tta := "-"
		if a.TTASeconds != nil {
			tta = Seconds(*a.TTASeconds)
		}
		result := "ok"
		if !a.OK {
			result = "FAIL"
		}
		if a.Silenced {
			result += " (silenced)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, want, at(a.PendingAt), at(a.FiredAt), at(a.ResolvedAt), tta, result)
	}
	tw.Flush()
	for _, s := range r.Silences {
		state := "not expired: it lapses at " + s.EndsAt.UTC().Format(time.RFC3339)
		if s.ExpiredAt != nil {
			state = "expired " + offset(*s.ExpiredAt, ref) + " by the " + s.ExpiredBy
		}
		line := fmt.Sprintf("%s {%s}, %s", s.ID, strings.Join(s.Matchers, ", "), state)
		if s.Error != "" {
			line += "; " + s.Error
		}
		p.printf("%s\n", wrap("  silence: ", line, Width))
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *printer) phases(r api.Run) {
	p.printf("\nProbes\n")
	if len(r.Phases) == 0 {
		p.printf("  none evaluated\n")
		return
	}
	tw := p.table()
	fmt.Fprintf(tw, "  PHASE\tPROBE\tCONDITION\tEVALS\tFAILS\tLAST\n")
	for _, ph := range r.Phases {
		if len(ph.Probes) == 0 {
			fmt.Fprintf(tw, "  %s\t-\n", ph.Phase)
		}
		for i, s := range ph.Probes {
			phase := ph.Phase
			if i > 0 {
				phase = ""
			}
			last := ProbeValue(s.Last)
			if ph.Phase == api.PhaseAbort {
				// An abort condition describes the bad state: FAILS counts
				// firing rounds, and the last round fired or stayed quiet.
				last = AbortValue(s.Last)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%s\n", phase, s.Name, s.Condition, s.Evaluations, s.Failures, last)
		}
	}
	tw.Flush()
}

func (p *printer) events(r api.Run) {
	p.printf("\nEvents\n")
	if len(r.Events) == 0 {
		p.printf("  none\n")
		return
	}
	// Time, offset and phase have fixed widths so the message column can
	// be wrapped to the report width.
	ref, _ := reference(r)
	phaseW := 0
	for _, e := range r.Events {
		phaseW = max(phaseW, len(e.Phase))
	}
	for _, e := range r.Events {
		prefix := fmt.Sprintf("  %s  %8s  %-*s  ", e.Time.Format(time.RFC3339), offset(e.Time, ref), phaseW, e.Phase)
		p.printf("%s\n", wrap(prefix, e.Message, Width))
	}
}

// AbortValue is an abort condition's last round: "0.62 firing", "0.01
// quiet", "firing (prometheus unreachable …)" — it fires when its
// condition (the bad state) holds or cannot be judged.
func AbortValue(res api.ProbeResult) string {
	if res.Time.IsZero() && res.Probe == "" {
		return "-"
	}
	switch {
	case res.Error != "":
		return "firing (" + res.Error + ")"
	case len(res.Series) == 0 || math.IsNaN(res.Value):
		return "quiet (empty)"
	case res.OK:
		return FormatValue(res.Value) + " firing"
	}
	return FormatValue(res.Value) + " quiet"
}

// ProbeValue is "0.998 ok", "0.41 FAIL" or "FAIL (empty result)".
func ProbeValue(res api.ProbeResult) string {
	if res.Time.IsZero() && res.Probe == "" {
		return "-"
	}
	state := "ok"
	if !res.OK {
		state = "FAIL"
	}
	if math.IsNaN(res.Value) || res.Error != "" {
		if res.Error != "" {
			return state + " (" + res.Error + ")"
		}
		return state + " (NaN)"
	}
	return fmt.Sprintf("%s %s", FormatValue(res.Value), state)
}

// FormatValue prints a probe value compactly (up to 4 significant digits
// after the point for small numbers).
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.4g", v)
	}
}

// offset is t - ref as "+12.0s" / "-3.0s", or "" without a reference.
func offset(t time.Time, ref *time.Time) string {
	if ref == nil {
		return ""
	}
	d := t.Sub(*ref).Seconds()
	sign := "+"
	if d < 0 {
		d = -d
		if Seconds(d) != "0.0s" { // no "-0.0s"
			sign = "-"
		}
	}
	return sign + Seconds(d)
}

// Seconds formats a number of seconds as "14.0s", "2m04.0s" or "1h02m03.0s".
func Seconds(s float64) string {
	neg := s < 0
	s = math.Abs(math.Round(s*10) / 10)
	h := int(s / 3600)
	s -= float64(h) * 3600
	m := int(s / 60)
	s -= float64(m) * 60
	var out string
	switch {
	case h > 0:
		out = fmt.Sprintf("%dh%02dm%04.1fs", h, m, s)
	case m > 0:
		out = fmt.Sprintf("%dm%04.1fs", m, s)
	default:
		out = fmt.Sprintf("%.1fs", s)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// secondsDuration formats whole-ish seconds the way Go prints durations
// ("15m0s", "1s", "500ms").
func secondsDuration(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// wrap writes prefix+text, wrapping text at word boundaries to width; the
// continuation lines are indented by len(prefix).
func wrap(prefix, text string, width int) string {
	indent := strings.Repeat(" ", len([]rune(prefix)))
	avail := width - len([]rune(prefix))
	if avail < 20 {
		avail = 20
	}
	var b strings.Builder
	b.WriteString(prefix)
	line := 0
	for i, word := range strings.Fields(text) {
		n := len([]rune(word))
		if i > 0 {
			if line+1+n > avail {
				b.WriteString("\n")
				b.WriteString(indent)
				line = 0
			} else {
				b.WriteString(" ")
				line++
			}
		}
		b.WriteString(word)
		line += n
	}
	return strings.TrimRight(b.String(), " ")
}
