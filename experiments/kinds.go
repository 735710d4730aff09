package experiments

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// kind is one fault kind as the spec knows it: its parameter block, its
// defaults, its validation and its conversion to the agent's wire form.
// Each kind lives in its own file (kind_*.go).
type kind struct {
	name  agentapi.Kind
	field string // YAML key of the parameter block in a fault
	// needsService: the fault acts on the instances of a service, so its
	// target must name one.
	needsService bool
	// set reports whether f holds this kind's parameter block.
	set func(f *Fault) bool
	// defaults (optional) fills the block's fields left out; written says
	// whether a field of the block (by its YAML key) was written.
	defaults func(f *Fault, written func(field string) bool)
	// validate checks the block, at path (e.g. spec.faults[0].latency).
	validate func(v *validator, path string, f *Fault, s *Spec)
	// toAgent fills out's parameter block for the fault placed at p.
	toAgent func(f *Fault, p Placement, out *agentapi.Fault) error
}

// kinds is every fault kind, in the order messages list them. Which block
// a fault must and may hold, defaults, validation and the conversion to
// the agent's wire form all read this table (strict decoding itself goes
// by the block's field in Fault): a new kind is one file, one line here
// and its field in Fault.
var kinds = []kind{
	partitionKind,
	latencyKind,
	memoryKind,
	exceptionKind,
	appLatencyKind,
}

// kindOf returns the table entry of a kind name.
func kindOf(name agentapi.Kind) *kind {
	for i := range kinds {
		if kinds[i].name == name {
			return &kinds[i]
		}
	}
	return nil
}

// Kinds lists every fault kind the spec knows.
func Kinds() []agentapi.Kind {
	out := make([]agentapi.Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.name
	}
	return out
}

// kindNames lists the kinds for messages ("partition, latency, ...").
func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k.name)
	}
	return strings.Join(names, ", ")
}

// Placement is where one fault lands, as far as a kind's conversion needs
// to know: the service instance (zero for a node target).
type Placement struct {
	Node string
	// Instance names the service instance ("" for node targets); URL is its
	// base URL and Cgroup its cgroup path below the cgroup root.
	Instance string
	URL      string
	Cgroup   string
	// Pod is the instance's pod in Kubernetes mode (nil otherwise): the
	// agent scopes the fault to it.
	Pod *agentapi.Pod
}

// ToAgent converts a validated fault placed at p into what the agent is
// asked to apply: the kind and its parameter block. The caller sets the
// identity, deadline and lease.
func (f *Fault) ToAgent(p Placement) (agentapi.Fault, error) {
	out := agentapi.Fault{Kind: f.Kind}
	kd := kindOf(f.Kind)
	switch {
	case kd == nil:
		return out, fmt.Errorf("fault %s: kind %q is not supported by this chaosd (known kinds: %s)", f.Name, f.Kind, kindNames())
	case !kd.set(f):
		return out, fmt.Errorf("fault %s: %s: required for kind %s", f.Name, kd.field, f.Kind)
	case kd.needsService && (p.Instance == "" || p.URL == ""):
		return out, fmt.Errorf("fault %s: kind %s needs a service instance with a URL on node %s", f.Name, f.Kind, p.Node)
	}
	if err := kd.toAgent(f, p, &out); err != nil {
		return out, fmt.Errorf("fault %s: %w", f.Name, err)
	}
	out.Pod = p.Pod
	return out, nil
}

// prefixStrings renders CIDRs for the wire.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
