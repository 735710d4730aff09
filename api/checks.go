package api

import "time"

// AlertCheck is one alert the experiment declared: expected to fire
// (expectAlerts) or forbidden (forbidAlerts), as seen in Prometheus'
// ALERTS series during the run.
type AlertCheck struct {
	Name string `json:"name"`
	// Labels the ALERTS series must carry (besides alertname).
	Labels map[string]string `json:"labels,omitempty"`
	// Expected: the alert must fire within WithinSeconds of the first
	// impact. Not expected: it must not fire at all during the run.
	Expected      bool    `json:"expected"`
	WithinSeconds float64 `json:"withinSeconds,omitempty"`
	// PendingAt is when the rule's condition first held (alertstate
	// pending, or firing at once for rules without a for clause).
	PendingAt *time.Time `json:"pendingAt,omitempty"`
	// FiredAt is when it first fired; ResolvedAt when it stopped firing.
	FiredAt    *time.Time `json:"firedAt,omitempty"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	// TTASeconds = FiredAt - first impact (time to alert);
	// TTRSeconds = ResolvedAt - FiredAt (how long it fired).
	TTASeconds *float64 `json:"ttaSeconds,omitempty"`
	TTRSeconds *float64 `json:"ttrSeconds,omitempty"`
	// Silenced: chaosd silenced it in Alertmanager for the run.
	Silenced bool `json:"silenced,omitempty"`
	// OK says whether the check passed; Reason why (or why not).
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Silence is an Alertmanager silence chaosd created for a run, so the
// on-call team is not paged for what the run planned.
type Silence struct {
	ID       string   `json:"id"`
	Matchers []string `json:"matchers"` // e.g. alertname="VisitsDown"
	// EndsAt is the silence's own end (the run's expected end plus a
	// grace), so it lapses by itself even if chaosd dies.
	EndsAt    time.Time  `json:"endsAt"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiredAt *time.Time `json:"expiredAt,omitempty"`
	// ExpiredBy says who ended it: the run, or a restarted chaosd for an
	// interrupted run.
	ExpiredBy string `json:"expiredBy,omitempty"`
	Error     string `json:"error,omitempty"`
}

// DataLoss is the RPO check: writes acknowledged before and during the
// fault, read back after recovery.
type DataLoss struct {
	// TargetSeconds is recovery.rpo.
	TargetSeconds float64 `json:"targetSeconds"`
	// Writes attempted, Acknowledged by the system, Lost: acknowledged
	// but not found when read back.
	Writes       int `json:"writes"`
	Acknowledged int `json:"acknowledged"`
	Lost         int `json:"lost"`
	// FirstLost and LastLost are the acknowledgement times of the
	// earliest and latest lost writes.
	FirstLost *time.Time `json:"firstLost,omitempty"`
	LastLost  *time.Time `json:"lastLost,omitempty"`
	// MeasuredSeconds is the RPO measured: the span of acknowledged writes
	// that were lost (0 when none was); nil when it could not be measured.
	MeasuredSeconds *float64 `json:"measuredSeconds,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// DeepCopy returns a copy of a that shares no memory with it.
func (a AlertCheck) DeepCopy() AlertCheck {
	if a.Labels != nil {
		m := make(map[string]string, len(a.Labels))
		for k, v := range a.Labels {
			m[k] = v
		}
		a.Labels = m
	}
	a.PendingAt, a.FiredAt, a.ResolvedAt = clonePtr(a.PendingAt), clonePtr(a.FiredAt), clonePtr(a.ResolvedAt)
	a.TTASeconds, a.TTRSeconds = clonePtr(a.TTASeconds), clonePtr(a.TTRSeconds)
	return a
}

// DeepCopy returns a copy of s that shares no memory with it.
func (s Silence) DeepCopy() Silence {
	if s.Matchers != nil {
		s.Matchers = append([]string(nil), s.Matchers...)
	}
	s.ExpiredAt = clonePtr(s.ExpiredAt)
	return s
}

// DeepCopy returns a copy of d that shares no memory with it.
func (d *DataLoss) DeepCopy() *DataLoss {
	if d == nil {
		return nil
	}
	cp := *d
	cp.FirstLost, cp.LastLost = clonePtr(d.FirstLost), clonePtr(d.LastLost)
	cp.MeasuredSeconds = clonePtr(d.MeasuredSeconds)
	return &cp
}
