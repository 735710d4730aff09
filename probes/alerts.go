package probes

import "time"

// Alert states, as Prometheus' ALERTS series label alertstate says.
const (
	AlertInactive = ""
	AlertPending  = "pending"
	AlertFiring   = "firing"
)

// AlertPoint is an alert's state at one step.
type AlertPoint struct {
	Time  time.Time
	State string
}

// AlertTimeline is what an alert did over a run, read from its points.
type AlertTimeline struct {
	// Pending is the first step at which the rule's condition held
	// (pending, or firing at once for a rule without a for clause).
	Pending *time.Time
	// Fired is the first firing step; Resolved the first step after it
	// at which it no longer fired.
	Fired    *time.Time
	Resolved *time.Time
}

// Timeline reads an alert's points, in time order.
func Timeline(points []AlertPoint) AlertTimeline {
	var tl AlertTimeline
	for _, p := range points {
		t := p.Time
		if p.State != AlertInactive && tl.Pending == nil {
			tl.Pending = &t
		}
		switch {
		case p.State == AlertFiring && tl.Fired == nil:
			tl.Fired = &t
		case p.State != AlertFiring && tl.Fired != nil && tl.Resolved == nil:
			tl.Resolved = &t
		}
	}
	return tl
}
