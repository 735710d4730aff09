package experiments

import (
	"fmt"
	"slices"
	"time"

	"github.com/chaosd/chaosd/probes"
)

// applyDefaults fills every field left out of the spec. written reports
// whether a path was set explicitly (in YAML: present and not null); a
// field that was written keeps its value, even a zero one, so that
// validation can reject it ("rto: 0s" is an error, not a request for 15m).
func applyDefaults(e *Experiment, written func(path string) bool) {
	if e.Metadata.Description == "" {
		e.Metadata.Description = e.Metadata.Annotations[DescriptionAnnotation]
	}
	s := &e.Spec
	if s.ProbeInterval == 0 && !written("spec.probeInterval") {
		s.ProbeInterval = Duration(DefaultProbeInterval * time.Second)
	}
	for i := range s.Targets {
		t := &s.Targets[i]
		if t.Mode.Kind == "" && !written(fmt.Sprintf("spec.targets[%d].mode", i)) {
			t.Mode = BlastRadius{Kind: BlastAll}
		}
	}
	for i := range s.Faults {
		f := &s.Faults[i]
		path := fmt.Sprintf("spec.faults[%d]", i)
		if kd := kindOf(f.Kind); kd != nil && kd.defaults != nil && kd.set(f) {
			block := path + "." + kd.field + "."
			kd.defaults(f, func(field string) bool { return written(block + field) })
		}
	}
	if s.SteadyState.Baseline == 0 && !written("spec.steadyState.baseline") {
		s.SteadyState.Baseline = Duration(DefaultBaseline * time.Second)
	}
	if ef := s.Effects; ef != nil && ef.Within == 0 && !written("spec.effects.within") {
		ef.Within = Duration(DefaultEffectsWithin * time.Second)
	}
	r := &s.Recovery
	if r.RTO == 0 && !written("spec.recovery.rto") {
		r.RTO = Duration(DefaultRTO * time.Second)
	}
	if r.RPO == 0 && !written("spec.recovery.rpo") {
		r.RPO = Duration(DefaultRPO * time.Second)
	}
	if r.HoldFor == 0 && !written("spec.recovery.holdFor") {
		r.HoldFor = DefaultHoldForProbeIntervals * s.ProbeInterval
	}
	if r.Timeout == 0 && !written("spec.recovery.timeout") {
		r.Timeout = r.RTO + r.HoldFor
	}
	if len(r.Probes) == 0 && !written("spec.recovery.probes") {
		r.Probes = cloneProbes(s.SteadyState.Probes)
	}
	for i := range s.ExpectAlerts {
		if s.ExpectAlerts[i].Within == 0 && !written(fmt.Sprintf("spec.expectAlerts[%d].within", i)) {
			s.ExpectAlerts[i].Within = Duration(DefaultAlertWithin * time.Second)
		}
	}
	if sl := s.Silence; sl != nil && sl.Grace == 0 && !written("spec.silence.grace") {
		sl.Grace = Duration(DefaultSilenceGrace * time.Second)
	}
	if d := s.DataLoss; d != nil {
		dataLossDefaults(d, func(field string) bool { return written("spec.dataLoss." + field) })
	}
	if sc := s.Schedule; sc != nil {
		scheduleDefaults(sc, written)
	}
}

// scheduleDefaults fills spec.schedule (of an experiment or a suite).
func scheduleDefaults(sc *Schedule, written func(path string) bool) {
	if sc.TimeZone == "" && !written("spec.schedule.timeZone") {
		sc.TimeZone = DefaultTimeZone
	}
	if sc.MissedRuns == "" && !written("spec.schedule.missedRuns") {
		sc.MissedRuns = MissedRunsSkip
	}
	for i := range sc.FreezeWindows {
		w := &sc.FreezeWindows[i]
		if w.TimeZone == "" && !written(fmt.Sprintf("spec.schedule.freezeWindows[%d].timeZone", i)) {
			w.TimeZone = sc.TimeZone
		}
	}
}

// SetDefaults fills the fields of an experiment built in Go that are left
// at their zero value, the way loading a file does for fields left out.
// Loading already applies defaults; call this only for values built in code.
func (e *Experiment) SetDefaults() {
	applyDefaults(e, func(string) bool { return false })
}

// cloneProbes deep-copies a probe list, so that changing recovery probes
// never changes the steady-state probes they were copied from.
func cloneProbes(in []probes.Probe) []probes.Probe {
	if in == nil {
		return nil
	}
	out := slices.Clone(in)
	for i := range out {
		out[i].Threshold = cloneFloat(out[i].Threshold)
		out[i].Min = cloneFloat(out[i].Min)
		out[i].Max = cloneFloat(out[i].Max)
	}
	return out
}

func cloneFloat(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
