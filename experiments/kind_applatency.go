package experiments

import (
	"github.com/chaosd/chaosd/agent/agentapi"
)

// The app-latency kind: Chaos Monkey for Spring Boot delays 1 of level
// requests of each instance of the target service (the agent's
// agent/springboot driver).
var appLatencyKind = kind{
	name:         agentapi.KindAppLatency,
	field:        "appLatency",
	needsService: true,
	set:          func(f *Fault) bool { return f.AppLatency != nil },
	defaults: func(f *Fault, written func(string) bool) {
		if a := f.AppLatency; a.Level == 0 && !written("level") {
			a.Level = DefaultLevel
		}
	},
	validate: func(v *validator, path string, f *Fault, _ *Spec) { v.appLatency(path, f.AppLatency) },
	toAgent: func(f *Fault, p Placement, out *agentapi.Fault) error {
		a := f.AppLatency
		out.SpringBoot = &agentapi.SpringBoot{URL: p.URL, Level: a.Level, Deterministic: a.Deterministic, Watchers: a.Watchers,
			LatencyRangeStartMs: int(a.Range.Start.D().Milliseconds()), LatencyRangeEndMs: int(a.Range.End.D().Milliseconds())}
		return nil
	},
}

// AppLatencyParams make Chaos Monkey for Spring Boot delay 1 of Level
// requests of the target service by a random time in Range.
type AppLatencyParams struct {
	Level         int          `yaml:"level,omitempty" json:"level"`
	Deterministic bool         `yaml:"deterministic,omitempty" json:"deterministic,omitempty"`
	Range         LatencyRange `yaml:"latencyRange" json:"latencyRange"`
	Watchers      []string     `yaml:"watchers,omitempty" json:"watchers,omitempty"`
}

// LatencyRange bounds an app-latency assault's delay (0 < start <= end).
type LatencyRange struct {
	Start Duration `yaml:"start" json:"start"`
	End   Duration `yaml:"end" json:"end"`
}

func (v *validator) appLatency(path string, a *AppLatencyParams) {
	v.level(path+".level", a.Level)
	v.watchers(path+".watchers", a.Watchers)
	rp := path + ".latencyRange"
	r := a.Range
	if r.Start == 0 && r.End == 0 && !v.present(rp) {
		v.addf(rp, "required: the range of the delay, e.g. {start: 100ms, end: 1s}")
		return
	}
	for _, b := range []struct {
		name string
		d    Duration
	}{{"start", r.Start}, {"end", r.End}} {
		switch {
		case b.d == 0 && !v.present(rp+"."+b.name):
			v.addf(rp+"."+b.name, "required")
		case b.d <= 0:
			v.addf(rp+"."+b.name, "must be > 0")
		}
	}
	if r.End.D() > MaxDelay {
		v.addf(rp+".end", "must be at most %s, not %s", Duration(MaxDelay), r.End)
	}
	if r.Start > 0 && r.End > 0 && r.Start > r.End {
		v.addf(rp+".start", "must be at most end (%s), not %s", r.End, r.Start)
	}
}
