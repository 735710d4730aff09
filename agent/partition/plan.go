// Package partition is the node agent's partition fault driver (Driver):
// it turns a partition fault into nftables state. A pure planner (Parse
// and PlanFault, unit-tested without root) describes one inet table per
// fault; a thin Linux applier (Applier) installs, refreshes, removes and
// lists it through netlink in a chosen network namespace; Fake stands in
// for the applier in tests without root.
//
// Kernel-side expiry. The fault's CIDRs are elements of interval sets
// (cidrs4, cidrs6) and its ports of a set (remote_ports), all with
// `flags timeout` (agent/nftexpiry); the drop rules look the packet up in
// them. Every element times out one lease (plus nftexpiry.Margin) after
// the apply or the last renewal (Driver.Renew refreshes them), so the cut
// ends by itself even when the agent is dead; the empty table left
// behind drops nothing and is removed at the next start-up.
//
// Semantics. A partition drops traffic between this network namespace (and
// whatever it forwards for, e.g. pods behind a node) and the fault's CIDRs:
//
//   - egress:  packets whose destination is in a CIDR (output and forward hooks);
//   - ingress: packets whose source is in a CIDR (input and forward hooks);
//   - both:    the two together (the default).
//
// With Ports set, only TCP and UDP traffic whose REMOTE port (the port on
// the CIDR side) is listed is cut: the destination port for egress, the
// source port for ingress. So ports=[8082] toward 10.1.0.0/16 cuts calls to
// a service listening on 8082 over there, in both directions of the flow.
// Without Ports every protocol is cut.
//
// Exempt local TCP ports (the agent's own API listener, given to New as
// Config.ExemptTCP) are accepted before any drop, so the control channel
// survives even when its peer lies inside a faulted CIDR.
package partition

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// TablePrefix tags every table the agent creates; leftovers are found by it.
const TablePrefix = "chaosd_"

// Priority of the chains: before the usual filter priority (0) and
// before most other tables' chains.
const Priority = -200

// Directions.
const (
	Egress  = "egress"
	Ingress = "ingress"
	Both    = "both"
)

// Limits keep a plan small enough to apply in one netlink batch (shared
// with the spec validator through agentapi.PartitionLimits).
var (
	MaxCIDRs = agentapi.PartitionLimits.MaxCIDRs
	MaxPorts = agentapi.PartitionLimits.MaxPorts
)

// Hook is a netfilter hook.
type Hook string

// Hooks a plan uses.
const (
	HookInput   Hook = "input"
	HookOutput  Hook = "output"
	HookForward Hook = "forward"
)

// Field selects which side of a packet a rule looks at.
type Field int

// Fields.
const (
	Any Field = iota
	Src
	Dst
)

func (f Field) word() string {
	switch f {
	case Src:
		return "saddr"
	case Dst:
		return "daddr"
	}
	return "?"
}

func (f Field) port() string {
	switch f {
	case Src:
		return "sport"
	case Dst:
		return "dport"
	}
	return "?"
}

// Verdict of a rule.
type Verdict string

// Verdicts.
const (
	Accept Verdict = "accept"
	Drop   Verdict = "drop"
)

// L4 protocols.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Family is an IP version, of a rule's address match.
type Family int

// Families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Names of the plan's match sets. Their elements time out (see the
// package comment).
const (
	AddrSet4Name = "cidrs4"       // the IPv4 CIDRs, as ranges
	AddrSet6Name = "cidrs6"       // the IPv6 CIDRs, as ranges
	PortSetName  = "remote_ports" // the remote ports
)

// AddrSetName is the name of a family's CIDR set.
func AddrSetName(f Family) string {
	if f == IPv6 {
		return AddrSet6Name
	}
	return AddrSet4Name
}

// Rule matches: [family + address field in the family's CIDR set] [l4
// proto] [port field equal to Port or in the port set] → Verdict.
type Rule struct {
	AddrField Field  // Any: no address match
	Family    Family // when AddrField != Any: looked up in AddrSetName(Family)
	Proto     uint8  // 0: any protocol
	PortField Field  // Any: no port match
	Port      uint16 // exact port, when PortSet is false
	PortSet   bool   // match the port set
	Verdict   Verdict
}

// String renders the rule in nft syntax.
func (r Rule) String() string {
	var parts []string
	if r.AddrField != Any {
		fam := "ip"
		if r.Family == IPv6 {
			fam = "ip6"
		}
		parts = append(parts, fmt.Sprintf("%s %s @%s", fam, r.AddrField.word(), AddrSetName(r.Family)))
	}
	proto := ""
	switch r.Proto {
	case ProtoTCP:
		proto = "tcp"
	case ProtoUDP:
		proto = "udp"
	}
	if r.PortField != Any {
		if r.PortSet {
			parts = append(parts, fmt.Sprintf("%s %s @%s", proto, r.PortField.port(), PortSetName))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s %d", proto, r.PortField.port(), r.Port))
		}
	} else if proto != "" {
		parts = append(parts, "meta l4proto "+proto)
	}
	parts = append(parts, string(r.Verdict))
	return strings.Join(parts, " ")
}

// Chain is one base chain of the table.
type Chain struct {
	Name     string
	Hook     Hook
	Priority int
	Rules    []Rule
}

// Plan is the complete nftables state of one partition fault.
type Plan struct {
	Table string // family inet
	// Sets are the match sets, in this order: cidrs4 and cidrs6 (each only
	// with CIDRs of its family), remote_ports (only with ports). Their
	// elements get a timeout when applied or refreshed.
	Sets   []nftexpiry.Set
	Chains []Chain
}

// String renders the plan roughly as `nft list table` would (without
// the elements' timeouts).
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", p.Table)
	for _, s := range p.Sets {
		fmt.Fprintf(&b, "\t%s\n", s)
	}
	for _, c := range p.Chains {
		fmt.Fprintf(&b, "\tchain %s { type filter hook %s priority %d; policy accept;\n", c.Name, c.Hook, c.Priority)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// ChainRules is how many rules each chain holds (what a renewal checks is
// still there).
func (p Plan) ChainRules() []nftexpiry.ChainRules {
	out := make([]nftexpiry.ChainRules, len(p.Chains))
	for i, c := range p.Chains {
		out[i] = nftexpiry.ChainRules{Chain: c.Name, Rules: len(c.Rules)}
	}
	return out
}

// TableName returns the tagged table name for a fault ID: the prefix, the
// ID with every character outside [A-Za-z0-9_] replaced by '_' (cut to 40),
// and a short hash of the raw ID so distinct IDs never share a table.
func TableName(faultID string) string { return nftexpiry.TableName(TablePrefix, faultID) }

// Spec is a validated partition.
type Spec struct {
	Prefixes  []netip.Prefix
	Direction string
	Ports     []uint16
}

// Parse validates the wire form. Errors name the offending field.
func Parse(p *agentapi.Partition) (Spec, error) {
	if p == nil {
		return Spec{}, errors.New("partition: required for kind partition")
	}
	var s Spec
	switch p.Direction {
	case "":
		s.Direction = Both
	case Egress, Ingress, Both:
		s.Direction = p.Direction
	default:
		return Spec{}, fmt.Errorf("partition.direction: %q is not egress, ingress or both", p.Direction)
	}
	nt, err := agentapi.ParseNetTarget("partition", p.CIDRs, p.Ports, agentapi.PartitionLimits)
	if err != nil {
		return Spec{}, err
	}
	s.Prefixes, s.Ports = nt.Prefixes, nt.Ports
	return s, nil
}

// PlanFault builds the table for a fault. exemptTCP lists local TCP ports (the
// agent's API listener) whose traffic is accepted before any drop.
func PlanFault(faultID string, s Spec, exemptTCP []uint16) Plan {
	p := Plan{Table: TableName(faultID), Sets: nftexpiry.AddrSets(s.Prefixes, AddrSet4Name, AddrSet6Name)}
	var fams []Family
	for _, set := range p.Sets {
		if set.Key == nftexpiry.KeyIPv4 {
			fams = append(fams, IPv4)
		} else {
			fams = append(fams, IPv6)
		}
	}
	if len(s.Ports) > 0 {
		p.Sets = append(p.Sets, nftexpiry.PortSet(PortSetName, s.Ports))
	}
	egress := s.Direction == Egress || s.Direction == Both || s.Direction == ""
	ingress := s.Direction == Ingress || s.Direction == Both || s.Direction == ""

	// drops returns the drop rules for traffic whose addr field is in a
	// CIDR set; the remote port is then the port on that same side.
	drops := func(side Field) []Rule {
		var rs []Rule
		for _, fam := range fams {
			if len(s.Ports) == 0 {
				rs = append(rs, Rule{AddrField: side, Family: fam, Verdict: Drop})
				continue
			}
			for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
				rs = append(rs, Rule{AddrField: side, Family: fam, Proto: proto, PortField: side, PortSet: true, Verdict: Drop})
			}
		}
		return rs
	}
	exempt := func(local Field) []Rule {
		var rs []Rule
		for _, port := range exemptTCP {
			if port != 0 {
				rs = append(rs, Rule{Proto: ProtoTCP, PortField: local, Port: port, Verdict: Accept})
			}
		}
		return rs
	}
	if ingress {
		// Inbound: the local port is the destination port.
		p.Chains = append(p.Chains, Chain{Name: "input", Hook: HookInput, Priority: Priority,
			Rules: append(exempt(Dst), drops(Src)...)})
	}
	if egress {
		p.Chains = append(p.Chains, Chain{Name: "output", Hook: HookOutput, Priority: Priority,
			Rules: append(exempt(Src), drops(Dst)...)})
	}
	var fwd []Rule
	if egress {
		fwd = append(fwd, drops(Dst)...)
	}
	if ingress {
		fwd = append(fwd, drops(Src)...)
	}
	p.Chains = append(p.Chains, Chain{Name: "forward", Hook: HookForward, Priority: Priority, Rules: fwd})
	return p
}
