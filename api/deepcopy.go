package api

import (
	"slices"
	"time"
)

// DeepCopy returns a copy of r that shares no memory with it: a record
// handed to a store, a client or another goroutine can then be changed by
// neither side behind the other's back.
func (r Run) DeepCopy() Run {
	cp := r
	cp.FinishedAt = clonePtr(r.FinishedAt)
	cp.AdHoc = clonePtr(r.AdHoc)
	cp.ScheduledAt = clonePtr(r.ScheduledAt)
	cp.Times = r.Times.DeepCopy()
	cp.RTO.MeasuredSeconds = clonePtr(r.RTO.MeasuredSeconds)
	if r.Faults != nil {
		cp.Faults = make([]FaultRecord, len(r.Faults))
		for i, f := range r.Faults {
			cp.Faults[i] = f.DeepCopy()
		}
	}
	if r.Phases != nil {
		cp.Phases = make([]PhaseResult, len(r.Phases))
		for i, p := range r.Phases {
			cp.Phases[i] = p.DeepCopy()
		}
	}
	if r.Alerts != nil {
		cp.Alerts = make([]AlertCheck, len(r.Alerts))
		for i, a := range r.Alerts {
			cp.Alerts[i] = a.DeepCopy()
		}
	}
	if r.Silences != nil {
		cp.Silences = make([]Silence, len(r.Silences))
		for i, s := range r.Silences {
			cp.Silences[i] = s.DeepCopy()
		}
	}
	cp.DataLoss = r.DataLoss.DeepCopy()
	cp.Current = cloneResults(r.Current)
	cp.Events = slices.Clone(r.Events)
	return cp
}

// DeepCopy returns a copy of t that shares no memory with it.
func (t Times) DeepCopy() Times {
	return Times{
		Started:     clonePtr(t.Started),
		Injected:    clonePtr(t.Injected),
		FirstImpact: clonePtr(t.FirstImpact),
		Reverted:    clonePtr(t.Reverted),
		Recovered:   clonePtr(t.Recovered),
	}
}

// DeepCopy returns a copy of f that shares no memory with it.
func (f FaultRecord) DeepCopy() FaultRecord {
	f.InjectedAt = clonePtr(f.InjectedAt)
	f.RevertedAt = clonePtr(f.RevertedAt)
	f.SelfExpiresAt = clonePtr(f.SelfExpiresAt)
	if f.Undo != nil {
		f.Undo = slices.Clone(f.Undo)
	}
	return f
}

// DeepCopy returns a copy of p that shares no memory with it.
func (p PhaseResult) DeepCopy() PhaseResult {
	if p.Probes != nil {
		ps := make([]ProbeSummary, len(p.Probes))
		for i, s := range p.Probes {
			s.FirstFailure = clonePtr(s.FirstFailure)
			s.Last = s.Last.DeepCopy()
			ps[i] = s
		}
		p.Probes = ps
	}
	return p
}

func cloneResults(in []ProbeResult) []ProbeResult {
	if in == nil {
		return nil
	}
	out := make([]ProbeResult, len(in))
	for i, r := range in {
		out[i] = r.DeepCopy()
	}
	return out
}

func clonePtr[T float64 | time.Time | AdHoc](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
