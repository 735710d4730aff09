package experiments

import (
	"fmt"
	"net/netip"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// partitionYAML mirrors PartitionParams field for field (a test keeps them
// in step) with CIDRs as prefixValue, so a CIDR that does not parse is
// reported at its own position and the other CIDRs are still checked.
type partitionYAML struct {
	CIDRs     []prefixValue `yaml:"cidrs"`
	Direction Direction     `yaml:"direction,omitempty"`
	Ports     []uint16      `yaml:"ports,omitempty"`
}

// UnmarshalYAML decodes the partition block strictly (unknown fields are
// errors) and keeps the position of every bad CIDR.
func (p *PartitionParams) UnmarshalYAML(node ast.Node) error {
	var raw partitionYAML
	if err := yaml.NodeToValue(node, &raw, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*p = PartitionParams{CIDRs: prefixes(raw.CIDRs), Direction: raw.Direction, Ports: raw.Ports}
	return nil
}

// prefixValue is a netip.Prefix that decodes from a YAML node. Host bits
// are allowed here and rejected by validation, which can suggest the
// masked prefix.
type prefixValue netip.Prefix

// UnmarshalYAML parses a CIDR such as 10.1.0.0/16 or fd00::/8.
func (p *prefixValue) UnmarshalYAML(node ast.Node) error {
	s, ok := scalarText(node)
	if !ok {
		return nodeErrorf(node, nil, "must be a CIDR such as 10.1.0.0/16, not %s", nodeKind(node))
	}
	v, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return nodeErrorf(node, err, "%q is an address, not a CIDR; add the prefix length, e.g. %s", s,
				netip.PrefixFrom(a, a.BitLen()))
		}
		return nodeErrorf(node, err, "%q is not a CIDR (want address/length, e.g. 10.1.0.0/16)", s)
	}
	*p = prefixValue(v)
	return nil
}

// String returns the CIDR.
func (p prefixValue) String() string { return fmt.Sprint(netip.Prefix(p)) }
