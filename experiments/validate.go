package experiments

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/chaosd/chaosd/experiments/calendar"

	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/promql"
)

// dns1123Label is a Kubernetes DNS-1123 label (length checked apart).
var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

const dns1123Help = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"

// validator collects every problem of one experiment.
type validator struct {
	issues []issue
	// written reports whether a field was set explicitly; used only for
	// fields whose zero value is valid but which must be written (for).
	// For values built in Go it reports true: every field counts as written.
	written func(path string) bool
	// present reports whether a field was written in the file, even with a
	// value that did not decode. For values built in Go it reports false: a
	// zero value there means left out. It tells "size: 0" (an error) from a
	// size left out (fine with fraction).
	present func(path string) bool
}

func (v *validator) addf(path, format string, args ...any) {
	v.issues = append(v.issues, issue{path: path, msg: fmt.Sprintf(format, args...)})
}

// Validate checks an experiment built in Go (after [Experiment.SetDefaults])
// against every rule the loader applies. It returns an [ErrorList] without
// positions, or nil. Loaded experiments are already validated.
func (e *Experiment) Validate() error {
	issues := validateExperiment(e, func(string) bool { return true }, func(string) bool { return false })
	list := make(ErrorList, 0, len(issues))
	for _, is := range issues {
		list = append(list, FieldError{File: e.Source, Path: is.path, Msg: is.msg, Err: is.err})
	}
	list.Sort()
	return list.Err()
}

func validateExperiment(e *Experiment, written, present func(string) bool) []issue {
	v := &validator{written: written, present: present}
	switch e.APIVersion {
	case APIVersion:
	case "":
		v.addf("apiVersion", "required; want %s", APIVersion)
	default:
		v.addf("apiVersion", "%q is not supported; want %s", e.APIVersion, APIVersion)
	}
	switch e.Kind {
	case Kind:
	case "":
		v.addf("kind", "required; want %s", Kind)
	default:
		v.addf("kind", "must be %s, not %q", Kind, e.Kind)
	}
	v.dnsName("metadata.name", e.Metadata.Name)
	v.spec(&e.Spec)
	return v.issues
}

func (v *validator) dnsName(path, name string) {
	switch {
	case name == "":
		v.addf(path, "required")
	case len(name) > 63 || !dns1123Label.MatchString(name):
		v.addf(path, "%q is not a DNS-1123 label (%s)", name, dns1123Help)
	}
}

func (v *validator) spec(s *Spec) {
	targets := map[string]int{}
	if len(s.Targets) == 0 {
		v.addf("spec.targets", "at least one target is required")
	}
	for i := range s.Targets {
		v.target(fmt.Sprintf("spec.targets[%d]", i), &s.Targets[i], targets, i)
	}
	if len(s.Faults) == 0 {
		v.addf("spec.faults", "at least one fault is required")
	}
	faults := map[string]int{}
	for i := range s.Faults {
		v.fault(fmt.Sprintf("spec.faults[%d]", i), &s.Faults[i], faults, i, targets, s)
	}
	switch {
	case s.Duration < 0:
		v.addf("spec.duration", "must be > 0, not %s", s.Duration)
	case s.Duration == 0 && v.written("spec.duration"):
		v.addf("spec.duration", "must be > 0")
	case s.Duration == 0:
		v.addf("spec.duration", "required: how long to hold the faults, e.g. 30s")
	}
	if s.ProbeInterval.D() < MinProbeInterval {
		v.addf("spec.probeInterval", "must be at least %s, not %s", Duration(MinProbeInterval), s.ProbeInterval)
	}
	if len(s.SteadyState.Probes) == 0 {
		v.addf("spec.steadyState.probes", "at least one probe is required")
	}
	v.probeList("spec.steadyState.probes", s.SteadyState.Probes, true)
	if s.SteadyState.Baseline < s.ProbeInterval {
		v.addf("spec.steadyState.baseline", "must be at least probeInterval (%s), not %s", s.ProbeInterval, s.SteadyState.Baseline)
	}
	if s.Effects != nil {
		v.effects(s.Effects, s.Duration)
	}

	abortNames := map[string]int{}
	for i := range s.AbortWhen {
		a := &s.AbortWhen[i]
		path := fmt.Sprintf("spec.abortWhen[%d]", i)
		v.probe(path, &a.Probe, abortNames, i, false)
		switch {
		case !v.written(path + ".for"):
			v.addf(path+".for", "required: how long the condition must hold before the abort fires (0s fires at once)")
		case a.For < 0:
			v.addf(path+".for", "must be >= 0, not %s", a.For)
		}
	}
	v.recovery(&s.Recovery, s.ProbeInterval)
	v.alerts(s)
	if s.Schedule != nil {
		v.schedule(s.Schedule)
	}
	if s.DataLoss != nil {
		v.dataLoss(s.DataLoss)
	}
}

func (v *validator) target(path string, t *Target, seen map[string]int, i int) {
	switch j, dup := seen[t.Name]; {
	case t.Name == "":
		v.addf(path+".name", "required")
	case dup:
		v.addf(path+".name", "duplicate target name %q (also spec.targets[%d])", t.Name, j)
	default:
		seen[t.Name] = i
	}
	if strings.TrimSpace(t.Cluster) == "" {
		v.addf(path+".cluster", "required")
	}
	if t.Service != "" && (len(t.Service) > 63 || !dns1123Label.MatchString(t.Service)) {
		v.addf(path+".service", "%q is not a DNS-1123 label (%s)", t.Service, dns1123Help)
	}
	for j, n := range t.Nodes {
		if strings.TrimSpace(n) == "" {
			v.addf(fmt.Sprintf("%s.nodes[%d]", path, j), "must be a node name, not empty")
		}
	}
	for k := range t.Selector {
		if strings.TrimSpace(k) == "" {
			v.addf(path+".selector", "label keys must not be empty")
		}
	}
	if t.Mode.Kind != "" {
		if err := t.Mode.Validate(); err != nil {
			v.addf(path+".mode", "%s", err)
		}
	}
}

// probeList checks a list of probes; slo marks the probes that judge what
// users saw (steady state, recovery), held to the rules of coverage.
func (v *validator) probeList(path string, list []probes.Probe, slo bool) {
	seen := map[string]int{}
	for i := range list {
		v.probe(fmt.Sprintf("%s[%d]", path, i), &list[i], seen, i, slo)
	}
}

// sampleFunctions judge only the last two samples of their window: at any
// evaluation they skip every request before those two.
var sampleFunctions = []string{"irate", "idelta"}

// query checks that a probe's query is PromQL and, for an SLO probe, that
// it cannot skip requests by construction.
func (v *validator) query(path, q string, slo bool) {
	info, err := promql.Analyze(q)
	if err != nil {
		v.addf(path, "not a PromQL expression: %v", err)
		return
	}
	if !slo {
		return
	}
	for _, fn := range sampleFunctions {
		if info.Calls(fn) {
			v.addf(path, "%s() looks only at the last two samples of its window, so an SLO probe built on it skips the requests "+
				"between evaluations; use rate(...[%s]) (or increase) so every request is judged", fn, promql.RateInterval)
		}
	}
}

var knownOps = []probes.Op{probes.OpLT, probes.OpLE, probes.OpGT, probes.OpGE, probes.OpEQ, probes.OpNE, probes.OpBetween}

func (v *validator) probe(path string, p *probes.Probe, seen map[string]int, i int, slo bool) {
	switch j, dup := seen[p.Name]; {
	case p.Name == "":
		v.addf(path+".name", "required")
	case dup:
		v.addf(path+".name", "duplicate probe name %q (also %s[%d])", p.Name, parentPath(path), j)
	default:
		seen[p.Name] = i
	}
	if strings.TrimSpace(p.Query) == "" {
		v.addf(path+".query", "required: a PromQL expression")
	} else {
		v.query(path+".query", p.Query, slo)
	}
	known := false
	for _, op := range knownOps {
		known = known || p.Op == op
	}
	switch {
	case p.Op == "":
		v.addf(path+".op", "required (one of < <= > >= == != between)")
	case !known:
		v.addf(path+".op", "unknown op %q (want one of < <= > >= == != between)", p.Op)
	case p.Op == probes.OpBetween:
		if p.Threshold != nil {
			v.addf(path+".threshold", "not allowed for op between; use min and max")
		}
		if p.Min == nil {
			v.addf(path+".min", "required for op between")
		}
		if p.Max == nil {
			v.addf(path+".max", "required for op between")
		}
		if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			v.addf(path+".min", "must be <= max (%g), not %g", *p.Max, *p.Min)
		}
	default:
		if p.Threshold == nil {
			v.addf(path+".threshold", "required for op %s", p.Op)
		}
		if p.Min != nil {
			v.addf(path+".min", "only allowed for op between")
		}
		if p.Max != nil {
			v.addf(path+".max", "only allowed for op between")
		}
	}
	for name, f := range map[string]*float64{"threshold": p.Threshold, "min": p.Min, "max": p.Max} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			v.addf(path+"."+name, "must be a finite number, not %g", *f)
		}
	}
	switch p.Match {
	case probes.MatchSingle, probes.MatchAll, probes.MatchAny:
	default:
		v.addf(path+".match", "must be all or any (or left out for a single series), not %q", p.Match)
	}
	switch p.OnEmpty {
	case "", probes.OnEmptyFail, probes.OnEmptyPass:
	default:
		v.addf(path+".onEmpty", "must be fail or pass, not %q", p.OnEmpty)
	}
}

func (v *validator) effects(ef *Effects, duration Duration) {
	if len(ef.Probes) == 0 {
		v.addf("spec.effects.probes", "at least one probe is required: what shows the faults took hold")
	}
	v.probeList("spec.effects.probes", ef.Probes, false)
	switch {
	case ef.Within <= 0:
		v.addf("spec.effects.within", "must be > 0, not %s", ef.Within)
	case duration > 0 && ef.Within >= duration:
		def := ""
		if !v.present("spec.effects.within") {
			def = " (the default)"
		}
		v.addf("spec.effects.within", "must be less than spec.duration (%s), not %s%s: effects must be proven while the fault is still in place",
			duration, ef.Within, def)
	}
}

func (v *validator) recovery(r *Recovery, interval Duration) {
	if r.RTO <= 0 {
		v.addf("spec.recovery.rto", "must be > 0, not %s", r.RTO)
	}
	if r.RPO <= 0 {
		v.addf("spec.recovery.rpo", "must be > 0, not %s", r.RPO)
	}
	if r.HoldFor < interval {
		v.addf("spec.recovery.holdFor", "must be at least probeInterval (%s), not %s", interval, r.HoldFor)
	}
	if r.Timeout < r.HoldFor {
		v.addf("spec.recovery.timeout", "must be at least holdFor (%s), not %s", r.HoldFor, r.Timeout)
	}
	// Left out, the list is a copy of the steady-state probes, which are
	// checked (and reported) there.
	if !v.written("spec.recovery.probes") {
		return
	}
	if len(r.Probes) == 0 {
		v.addf("spec.recovery.probes", "must not be empty; leave it out to use the steady-state probes")
	}
	v.probeList("spec.recovery.probes", r.Probes, true)
}

// alertName is Prometheus' metric and label name syntax, which alert
// names follow.
var alertName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (v *validator) alerts(s *Spec) {
	seen := map[string]string{}
	check := func(list string, rules []AlertRule, expected bool) {
		for i, a := range rules {
			path := fmt.Sprintf("spec.%s[%d]", list, i)
			if !alertName.MatchString(a.Name) {
				v.addf(path+".name", "%q is not an alert name (letters, digits and _, not starting with a digit)", a.Name)
			}
			for k := range a.Labels {
				if !alertName.MatchString(k) || k == "alertname" || k == "alertstate" {
					v.addf(path+".labels", "%q is not a label to match (a label name other than alertname and alertstate)", k)
				}
			}
			key := a.Name + fmt.Sprint(a.Labels)
			if other, dup := seen[key]; dup {
				v.addf(path, "the same alert is already listed at %s", other)
			}
			seen[key] = path
			switch {
			case !expected && a.Within != 0:
				v.addf(path+".within", "only expected alerts have a deadline")
			case expected && a.Within <= 0:
				v.addf(path+".within", "must be > 0, not %s", a.Within)
			}
		}
	}
	check("expectAlerts", s.ExpectAlerts, true)
	check("forbidAlerts", s.ForbidAlerts, false)
	if sl := s.Silence; sl != nil {
		if len(s.ExpectAlerts) == 0 {
			v.addf("spec.silence", "silences the expected alerts, and spec.expectAlerts is empty")
		}
		if sl.Grace < 0 {
			v.addf("spec.silence.grace", "must be >= 0, not %s", sl.Grace)
		}
	}
}

func (v *validator) schedule(s *Schedule) {
	if _, err := calendar.LoadZone(s.TimeZone); err != nil || s.TimeZone == "" {
		switch {
		case s.TimeZone == "":
			v.addf("spec.schedule.timeZone", "required (an IANA zone such as UTC)")
		default:
			v.addf("spec.schedule.timeZone", "%v", err)
		}
	}
	if _, err := calendar.ParseCron(s.Cron, time.UTC); err != nil {
		if strings.Contains(err.Error(), "timeZone field") {
			v.addf("spec.schedule.cron", "set the time zone in spec.schedule.timeZone, not in cron")
		} else {
			v.addf("spec.schedule.cron", "%v", err)
		}
	}
	switch s.MissedRuns {
	case MissedRunsSkip:
		if s.StartingDeadline != 0 {
			v.addf("spec.schedule.startingDeadline", "only applies with missedRuns: runOnce (missedRuns is skip)")
		}
	case MissedRunsRunOnce:
		if s.StartingDeadline <= 0 {
			v.addf("spec.schedule.startingDeadline", "required with missedRuns: runOnce: how late a missed trigger may still start, e.g. 1h")
		}
	default:
		v.addf("spec.schedule.missedRuns", "%q: want skip or runOnce", s.MissedRuns)
	}
	names := map[string]int{}
	for i, w := range s.FreezeWindows {
		path := fmt.Sprintf("spec.schedule.freezeWindows[%d]", i)
		if j, dup := names[w.Name]; dup && w.Name != "" {
			v.addf(path+".name", "duplicate freeze window name %q (also freezeWindows[%d])", w.Name, j)
		}
		names[w.Name] = i
		for _, p := range w.Check() {
			v.addf(path+"."+p.Field, "%s", p.Msg)
		}
	}
}
