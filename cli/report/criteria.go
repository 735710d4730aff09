package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// Status is how one criterion of the verdict came out.
type Status string

// Statuses of a criterion.
const (
	StatusOK      Status = "ok"
	StatusFail    Status = "FAIL"    // the system under test failed it
	StatusError   Status = "error"   // the tool could not judge it
	StatusAborted Status = "aborted" // the run was aborted (by a user)
	StatusSkipped Status = "skipped" // not reached (e.g. nothing was injected)
	StatusPending Status = "pending" // the run has not got there yet
	StatusNA      Status = "n/a"     // the experiment does not ask for it
)

// Criterion is one thing the verdict judged: what was required, what was
// measured and how it came out.
type Criterion struct {
	Name     string
	Required string
	Measured string
	Status   Status
}

// Criteria lists the criteria of a run's verdict, in the run's order:
// steady state before inject, effects, abort conditions, faults reverted,
// recovery, RTO, alerts, RPO (named as JUnit names its cases where both
// have them). A failed (or errored) verdict whose reason
// none of them carries gets a last row with that reason, so the table
// never reads "all ok" under a FAIL.
func Criteria(r api.Run) []Criterion {
	c := criteria{r: r, running: r.Verdict == "", injected: r.Times.Injected != nil}
	out := []Criterion{
		c.steadyState(),
		c.effects(),
		c.abort(),
		c.reverted(),
		c.recovered(),
		c.rto(),
	}
	out = append(out, c.alerts()...)
	out = append(out, c.rpo())
	if r.Verdict == api.VerdictFail || r.Verdict == api.VerdictError || r.Verdict == api.VerdictAborted {
		explained := false
		for _, cr := range out {
			if cr.Status == StatusFail || cr.Status == StatusError || cr.Status == StatusAborted {
				explained = true
			}
		}
		if !explained {
			st := map[api.Verdict]Status{api.VerdictFail: StatusFail, api.VerdictError: StatusError, api.VerdictAborted: StatusAborted}[r.Verdict]
			out = append(out, Criterion{Name: "Verdict", Required: "every criterion holds", Measured: r.Reason, Status: st})
		}
	}
	return out
}

type criteria struct {
	r                 api.Run
	running, injected bool
}

// notReached is the status of a criterion the run did not get to.
func (c criteria) notReached() Status {
	if c.running {
		return StatusPending
	}
	return StatusSkipped
}

func (c criteria) steadyState() Criterion {
	probes := phaseProbes(c.r, api.PhaseSteadyState)
	cr := Criterion{Name: "Steady state before inject", Required: "the steady-state probes hold"}
	if len(probes) > 0 {
		cr.Required = fmt.Sprintf("every steady-state probe (%d) holds", len(probes))
	}
	switch {
	case c.injected:
		cr.Status = StatusOK
		cr.Measured = fmt.Sprintf("held (%s); faults injected", rounds(probes))
	case c.r.DryRun && c.r.Verdict == api.VerdictPass:
		cr.Status = StatusOK
		cr.Measured = fmt.Sprintf("held (%s); dry run: nothing injected", rounds(probes))
	case c.running:
		cr.Status, cr.Measured = StatusPending, "phase "+string(c.r.Phase)
	case c.r.Verdict == api.VerdictFail:
		cr.Status, cr.Measured = StatusFail, c.r.Reason
	case c.r.Verdict == api.VerdictError:
		cr.Status, cr.Measured = StatusError, c.r.Reason
	case c.r.Verdict == api.VerdictAborted:
		cr.Status, cr.Measured = StatusAborted, c.r.Reason
	default:
		cr.Status, cr.Measured = StatusSkipped, "nothing injected"
	}
	return cr
}

func (c criteria) effects() Criterion {
	probes := phaseProbes(c.r, api.PhaseEffects)
	cr := Criterion{Name: "Faults took effect", Required: "the effect probes hold while the faults are in place"}
	switch {
	case len(probes) == 0:
		cr.Status, cr.Measured = StatusNA, "no effect probes evaluated"
		if !c.injected {
			cr.Status = c.notReached()
		}
	case strings.Contains(c.r.Reason, "no provable effect") || strings.Contains(c.r.Reason, "effects were never proven"):
		cr.Status, cr.Measured = StatusError, c.r.Reason
	default:
		held := true
		for _, p := range probes {
			held = held && p.Last.OK
		}
		if held {
			cr.Status, cr.Measured = StatusOK, fmt.Sprintf("%s held (%s)", count(len(probes), "probe"), rounds(probes))
		} else {
			cr.Status, cr.Measured = c.notReached(), fmt.Sprintf("not proven yet (%s)", rounds(probes))
		}
	}
	return cr
}

func (c criteria) abort() Criterion {
	probes := phaseProbes(c.r, api.PhaseAbort)
	cr := Criterion{Name: "No abort condition fired", Required: "no abort condition holds for its hold time"}
	if len(probes) > 0 {
		var conds []string
		for _, p := range probes {
			conds = append(conds, p.Name+" "+p.Condition)
		}
		cr.Required = "none of " + strings.Join(conds, ", ") + " holds for its hold time"
	}
	switch {
	case c.r.Verdict == api.VerdictAborted && strings.HasPrefix(c.r.Reason, "abort condition"):
		cr.Status, cr.Measured = StatusFail, c.r.Reason
	case c.r.Verdict == api.VerdictAborted:
		cr.Status, cr.Measured = StatusAborted, c.r.Reason
	case len(probes) == 0 && !c.injected:
		cr.Status, cr.Measured = c.notReached(), "nothing injected"
	case len(probes) == 0:
		cr.Status, cr.Measured = StatusNA, "no abort conditions evaluated"
	default:
		firing := 0
		for _, p := range probes {
			firing += p.Failures
		}
		cr.Status = StatusOK
		cr.Measured = fmt.Sprintf("none fired (%s)", rounds(probes))
		if firing > 0 {
			cr.Measured = fmt.Sprintf("held in %d of %s, never for its hold time", firing, rounds(probes))
		}
		if c.running {
			cr.Status = StatusPending
		}
	}
	return cr
}

func (c criteria) reverted() Criterion {
	cr := Criterion{Name: "Faults reverted and verified", Required: "every fault removed, and the agent found no state left"}
	var injected, done int
	var left []string
	for _, f := range c.r.Faults {
		if f.InjectedAt == nil {
			continue
		}
		injected++
		if f.RevertedAt != nil && f.Verified {
			done++
			continue
		}
		left = append(left, fmt.Sprintf("%s on %s", f.Name, f.Node))
	}
	switch {
	case injected == 0:
		cr.Status, cr.Measured = c.notReached(), "nothing injected"
		if c.injected && !c.running {
			cr.Status = StatusError // injected by the times, but no fault recorded
		}
	case len(left) == 0:
		cr.Status, cr.Measured = StatusOK, fmt.Sprintf("%d of %d reverted and verified", done, injected)
	case c.running:
		cr.Status, cr.Measured = StatusPending, fmt.Sprintf("%d of %d reverted and verified", done, injected)
	default:
		cr.Status, cr.Measured = StatusError, "not verified reverted: "+strings.Join(left, ", ")
	}
	return cr
}

func (c criteria) recovered() Criterion {
	cr := Criterion{Name: "Recovered", Required: "the recovery probes hold continuously again after the revert"}
	if n := len(phaseProbes(c.r, api.PhaseRecovering)); n > 0 {
		cr.Required = fmt.Sprintf("every recovery probe (%d) holds continuously again after the revert", n)
	}
	ref, _ := reference(c.r)
	t := c.r.Times
	switch {
	case t.Recovered != nil:
		cr.Status = StatusOK
		cr.Measured = "recovered at " + offset(*t.Recovered, ref)
		if t.Reverted != nil {
			cr.Measured += fmt.Sprintf(", %s after the revert", Seconds(t.Recovered.Sub(*t.Reverted).Seconds()))
		}
	case !c.injected:
		cr.Status, cr.Measured = c.notReached(), "nothing injected"
	case c.r.Verdict == api.VerdictAborted:
		cr.Status, cr.Measured = StatusSkipped, "the run was aborted"
	case c.running:
		cr.Status, cr.Measured = StatusPending, "phase "+string(c.r.Phase)
	case c.r.Verdict == api.VerdictFail && strings.HasPrefix(c.r.Reason, "not recovered"):
		cr.Status, cr.Measured = StatusFail, c.r.Reason
	case c.r.Verdict == api.VerdictError:
		cr.Status, cr.Measured = StatusError, c.r.Reason
	default:
		cr.Status, cr.Measured = StatusSkipped, "not judged"
	}
	return cr
}

func (c criteria) rto() Criterion {
	rto := c.r.RTO
	cr := Criterion{Name: "RTO within target",
		Required: fmt.Sprintf("recovered − first impact ≤ %s", secondsDuration(rto.TargetSeconds))}
	switch {
	case rto.MeasuredSeconds != nil:
		m := *rto.MeasuredSeconds
		cr.Measured = Seconds(m)
		if rto.ResolutionSeconds > 0 {
			cr.Measured += " ±" + secondsDuration(rto.ResolutionSeconds)
		}
		if c.r.Times.FirstImpact == nil {
			cr.Measured += " (no impact seen)"
		} else if rto.TargetSeconds > 0 {
			cr.Measured += fmt.Sprintf(" (%s of the target)", percent(m/rto.TargetSeconds))
		}
		cr.Status = StatusOK
		if m > rto.TargetSeconds {
			cr.Status = StatusFail
		}
	case !c.injected:
		cr.Status, cr.Measured = c.notReached(), "nothing injected"
	case c.r.Verdict == api.VerdictAborted:
		cr.Status, cr.Measured = StatusSkipped, "the run was aborted"
	case c.running:
		cr.Status, cr.Measured = StatusPending, "not measured yet"
	case c.r.Times.Recovered == nil && c.r.Verdict == api.VerdictFail:
		cr.Status, cr.Measured = StatusFail, "not recovered"
	default:
		cr.Status, cr.Measured = StatusSkipped, "not measured"
	}
	return cr
}

func (c criteria) alerts() []Criterion {
	if len(c.r.Alerts) == 0 {
		return []Criterion{{Name: "Alerts", Required: "expected alerts fire, forbidden ones do not", Measured: "none declared", Status: StatusNA}}
	}
	ref, _ := reference(c.r)
	var out []Criterion
	for _, a := range c.r.Alerts {
		cr := Criterion{Name: "Alert " + alertName(a)}
		if a.Expected {
			cr.Required = "fires"
			if a.WithinSeconds > 0 {
				cr.Required += " within " + secondsDuration(a.WithinSeconds) + " of the first impact"
			}
		} else {
			cr.Required = "does not fire during the run"
		}
		var m []string
		switch {
		case a.FiredAt != nil:
			s := "fired at " + offset(*a.FiredAt, ref)
			if a.TTASeconds != nil {
				s += " (time to alert " + Seconds(*a.TTASeconds) + ")"
			}
			m = append(m, s)
			if a.ResolvedAt != nil {
				m = append(m, "resolved at "+offset(*a.ResolvedAt, ref))
			}
		case a.PendingAt != nil:
			m = append(m, "pending at "+offset(*a.PendingAt, ref)+", never fired")
		default:
			m = append(m, "never fired")
		}
		if a.Silenced {
			m = append(m, "silenced")
		}
		if a.Reason != "" && !a.OK {
			m = append(m, a.Reason)
		}
		cr.Measured = strings.Join(m, "; ")
		cr.Status = StatusOK
		if !a.OK {
			cr.Status = StatusFail
			if c.running {
				cr.Status = StatusPending
			}
		}
		out = append(out, cr)
	}
	return out
}

// alertName is the alert's name with its labels: VisitsDown{cluster="c2"}.
func alertName(a api.AlertCheck) string {
	if len(a.Labels) == 0 {
		return a.Name
	}
	var kv []string
	for _, k := range sortedKeys(a.Labels) {
		kv = append(kv, fmt.Sprintf("%s=%q", k, a.Labels[k]))
	}
	return a.Name + "{" + strings.Join(kv, ",") + "}"
}

func (c criteria) rpo() Criterion {
	d := c.r.DataLoss
	cr := Criterion{Name: "RPO within target"}
	if d == nil {
		cr.Required, cr.Measured, cr.Status = "acknowledged writes survive (data-loss check)", "not checked", StatusNA
		return cr
	}
	cr.Required = fmt.Sprintf("lost acknowledged writes span ≤ %s", secondsDuration(d.TargetSeconds))
	cr.Measured = RPOLine(*d)
	switch {
	case d.Error != "" || d.MeasuredSeconds == nil:
		cr.Status = StatusError
		if c.running {
			cr.Status = StatusPending
		}
	case *d.MeasuredSeconds > d.TargetSeconds:
		cr.Status = StatusFail
	default:
		cr.Status = StatusOK
	}
	return cr
}

// phaseProbes returns the probe summaries of one phase of the record.
func phaseProbes(r api.Run, phase api.Phase) []api.ProbeSummary {
	for _, p := range r.Phases {
		if p.Phase == phase {
			return p.Probes
		}
	}
	return nil
}

// rounds is "3 rounds": the most evaluations of any of the probes.
func rounds(ps []api.ProbeSummary) string {
	n := 0
	for _, p := range ps {
		n = max(n, p.Evaluations)
	}
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds", n)
}

// count is "1 probe", "3 probes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// percent is "4.7%", "<0.1%", "120%".
func percent(f float64) string {
	switch p := f * 100; {
	case p > 0 && p < 0.1:
		return "<0.1%"
	case p >= 100:
		return fmt.Sprintf("%.0f%%", math.Round(p))
	default:
		return fmt.Sprintf("%.1f%%", p)
	}
}
