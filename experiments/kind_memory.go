package experiments

import (
	"github.com/chaosd/chaosd/agent/agentapi"
)

// The memory kind: a stressor fills the target's cgroup (the agent's
// agent/memory driver). With a service target it acts on each instance's
// cgroup, else on the node.
var memoryKind = kind{
	name:     agentapi.KindMemory,
	field:    "memory",
	set:      func(f *Fault) bool { return f.Memory != nil },
	validate: func(v *validator, path string, f *Fault, s *Spec) { v.memory(path, f.Memory, s.Duration) },
	toAgent: func(f *Fault, p Placement, out *agentapi.Fault) error {
		m := f.Memory
		out.Memory = &agentapi.Memory{Cgroup: p.Cgroup, SizeBytes: uint64(m.Size), Fraction: m.Fraction, RampSeconds: m.Ramp.D().Seconds()}
		return nil
	},
}

// MemoryParams fill memory in the target's cgroup (the service instance's,
// or the node's when the target has no service) with a stressor process.
type MemoryParams struct {
	// Size to allocate, e.g. "256Mi", "1Gi" (exactly one of Size and Fraction).
	Size ByteSize `yaml:"size,omitempty" json:"size,omitempty"`
	// Fraction of the cgroup's memory limit (or of node memory), in (0, 1].
	Fraction float64 `yaml:"fraction,omitempty" json:"fraction,omitempty"`
	// Ramp spreads the allocation over this long (default 0: at once).
	Ramp Duration `yaml:"ramp,omitempty" json:"ramp,omitempty"`
}

func (v *validator) memory(path string, m *MemoryParams, duration Duration) {
	sizeSet := m.Size != 0 || v.present(path+".size")
	fracSet := m.Fraction != 0 || v.present(path+".fraction")
	switch {
	case sizeSet && fracSet:
		v.addf(path, "set size or fraction, not both")
	case !sizeSet && !fracSet:
		v.addf(path, "one of size or fraction is required (e.g. size: 256Mi or fraction: 0.5)")
	case sizeSet && m.Size == 0:
		v.addf(path+".size", "must be > 0")
	case fracSet && !(m.Fraction > 0 && m.Fraction <= 1):
		v.addf(path+".fraction", "must be in (0, 1] (a fraction of the memory limit), not %g", m.Fraction)
	}
	switch {
	case m.Ramp < 0:
		v.addf(path+".ramp", "must be >= 0, not %s", m.Ramp)
	case duration > 0 && m.Ramp >= duration:
		v.addf(path+".ramp", "must be less than spec.duration (%s), not %s: the ramp must end before the fault does", duration, m.Ramp)
	}
}
