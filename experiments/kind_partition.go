package experiments

import (
	"fmt"
	"net/netip"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// The partition kind: drop traffic to and from CIDRs (the agent's
// agent/partition driver, nftables).
var partitionKind = kind{
	name:  agentapi.KindPartition,
	field: "partition",
	set:   func(f *Fault) bool { return f.Partition != nil },
	defaults: func(f *Fault, written func(string) bool) {
		if p := f.Partition; p.Direction == "" && !written("direction") {
			p.Direction = DirectionBoth
		}
	},
	validate: func(v *validator, path string, f *Fault, _ *Spec) { v.partition(path, f.Partition) },
	toAgent: func(f *Fault, _ Placement, out *agentapi.Fault) error {
		p := f.Partition
		out.Partition = &agentapi.Partition{Direction: string(p.Direction), Ports: p.Ports, CIDRs: prefixStrings(p.CIDRs), AllowWide: p.AllowWide}
		return nil
	},
}

// Direction of a partition.
type Direction string

const (
	DirectionBoth    Direction = "both"    // drop both ways (default)
	DirectionEgress  Direction = "egress"  // drop packets to the CIDRs
	DirectionIngress Direction = "ingress" // drop packets from the CIDRs
)

// PartitionParams drop traffic to and from CIDRs.
type PartitionParams struct {
	CIDRs     []netip.Prefix `yaml:"cidrs" json:"cidrs"`
	Direction Direction      `yaml:"direction,omitempty" json:"direction"` // default both
	Ports     []uint16       `yaml:"ports,omitempty" json:"ports,omitempty"`
	// AllowWide lets the partition cut what would cut a node off (every
	// address, or a network the agent protects); the agent refuses such a
	// partition without it.
	AllowWide bool `yaml:"allowWide,omitempty" json:"allowWide,omitempty"`
}

// partitionYAML mirrors PartitionParams field for field (a test keeps them
// in step) with CIDRs as prefixValue, so a CIDR that does not parse is
// reported at its own position and the other CIDRs are still checked.
type partitionYAML struct {
	CIDRs     []prefixValue `yaml:"cidrs"`
	Direction Direction     `yaml:"direction,omitempty"`
	Ports     []uint16      `yaml:"ports,omitempty"`
	AllowWide bool          `yaml:"allowWide,omitempty"`
}

// UnmarshalYAML decodes the partition block strictly (unknown fields are
// errors) and keeps the position of every bad CIDR.
func (p *PartitionParams) UnmarshalYAML(node ast.Node) error {
	var raw partitionYAML
	if err := yaml.NodeToValue(node, &raw, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*p = PartitionParams{CIDRs: prefixes(raw.CIDRs), Direction: raw.Direction, Ports: raw.Ports, AllowWide: raw.AllowWide}
	return nil
}

func (v *validator) partition(path string, p *PartitionParams) {
	v.netTarget(path, p.CIDRs, p.Ports, agentapi.PartitionLimits)
	switch p.Direction {
	case DirectionBoth, DirectionEgress, DirectionIngress:
	default:
		v.addf(path+".direction", "must be egress, ingress or both, not %q", p.Direction)
	}
}

// netTarget checks the CIDRs and ports of a network fault with the rules
// the agent applies (agentapi), plus what only a hand-written spec gets
// wrong: host bits (with the masked prefix as a hint) and duplicates.
func (v *validator) netTarget(path string, list []netip.Prefix, ports []uint16, lim agentapi.NetLimits) {
	cp := path + ".cidrs"
	switch {
	case len(list) == 0:
		v.addf(cp, "at least one CIDR is required")
	case len(list) > lim.MaxCIDRs:
		v.addf(cp, "%d CIDRs, at most %d", len(list), lim.MaxCIDRs)
	}
	seen := map[netip.Prefix]int{}
	for i, c := range list {
		ip := fmt.Sprintf("%s[%d]", cp, i)
		canon, err := agentapi.CanonicalPrefix(c)
		if err != nil {
			if !c.IsValid() {
				v.addf(ip, "must be a CIDR such as 10.1.0.0/16")
			} else {
				v.addf(ip, "%v", err)
			}
			continue
		}
		switch j, dup := seen[canon]; {
		case c != c.Masked():
			v.addf(ip, "%q has host bits set; did you mean %s?", c.String(), c.Masked())
		case dup:
			v.addf(ip, "duplicate CIDR %s (also cidrs[%d])", c, j)
		default:
			seen[canon] = i
		}
	}
	if len(ports) > lim.MaxPorts {
		v.addf(path+".ports", "%d ports, at most %d", len(ports), lim.MaxPorts)
	}
	for i, port := range ports {
		if err := agentapi.CheckPort(port); err != nil {
			v.addf(fmt.Sprintf("%s.ports[%d]", path, i), "%v", err)
		}
	}
}
