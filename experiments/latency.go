package experiments

import (
	"net/netip"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// latencyYAML mirrors LatencyParams field for field (a test keeps them in
// step) with CIDRs as prefixValue, so a CIDR that does not parse is
// reported at its own position and the other CIDRs are still checked.
type latencyYAML struct {
	CIDRs       []prefixValue `yaml:"cidrs"`
	Ports       []uint16      `yaml:"ports,omitempty"`
	Delay       Duration      `yaml:"delay"`
	Jitter      Duration      `yaml:"jitter,omitempty"`
	Correlation float64       `yaml:"correlation,omitempty"`
	Loss        float64       `yaml:"loss,omitempty"`
	Rate        ByteRate      `yaml:"rate,omitempty"`
	Interface   string        `yaml:"interface,omitempty"`
}

// UnmarshalYAML decodes the latency block strictly (unknown fields are
// errors) and keeps the position of every bad CIDR.
func (p *LatencyParams) UnmarshalYAML(node ast.Node) error {
	var raw latencyYAML
	if err := yaml.NodeToValue(node, &raw, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*p = LatencyParams{
		CIDRs:       prefixes(raw.CIDRs),
		Ports:       raw.Ports,
		Delay:       raw.Delay,
		Jitter:      raw.Jitter,
		Correlation: raw.Correlation,
		Loss:        raw.Loss,
		Rate:        raw.Rate,
		Interface:   raw.Interface,
	}
	return nil
}

// prefixes converts decoded CIDRs, keeping nil as nil.
func prefixes(in []prefixValue) []netip.Prefix {
	if in == nil {
		return nil
	}
	out := make([]netip.Prefix, len(in))
	for i, c := range in {
		out[i] = netip.Prefix(c)
	}
	return out
}
