package agentapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// NetLimits bound the CIDRs and ports of one network fault (after
// duplicates are dropped), so that a fault's kernel state stays small.
type NetLimits struct {
	MaxCIDRs int
	MaxPorts int
}

// Limits of the network fault kinds.
var (
	// PartitionLimits: one nftables set element per CIDR, one port set.
	PartitionLimits = NetLimits{MaxCIDRs: 256, MaxPorts: 64}
	// LatencyLimits: u32 filters are CIDRs × ports × 2 protocols.
	LatencyLimits = NetLimits{MaxCIDRs: 64, MaxPorts: 16}
)

// CanonicalPrefix is the rule every layer applies to a parsed CIDR: it
// must be valid, carry no zone, and an IPv4-mapped IPv6 prefix
// (::ffff:a.b.c.d/N) must be /96 or longer; it is returned as the IPv4
// prefix it maps. Host bits are left as they are (see ParsePrefix).
func CanonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	switch {
	case !p.IsValid():
		return netip.Prefix{}, errors.New("not a valid CIDR")
	case p.Addr().Zone() != "":
		return netip.Prefix{}, fmt.Errorf("%s has a zone; a CIDR cannot", p)
	case p.Addr().Is4In6():
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%s is an IPv4-mapped prefix shorter than /96; write the IPv4 CIDR instead", p)
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// ParsePrefix parses one CIDR of the wire form: a bare address is a single
// host, host bits are cleared, and CanonicalPrefix applies.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	pr, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %v", s, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone; a CIDR cannot", s)
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	pr, err = CanonicalPrefix(pr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
	}
	return pr.Masked(), nil
}

// CheckPort rejects port 0 (the only uint16 that is not a port).
func CheckPort(p uint16) error {
	if p == 0 {
		return errors.New("0 is not a port number (want 1-65535)")
	}
	return nil
}

// NetTarget is the validated traffic selector of a network fault.
type NetTarget struct {
	Prefixes []netip.Prefix // canonical, masked, without duplicates
	Ports    []uint16       // without duplicates; empty: every port
}

// ParseNetTarget validates the CIDRs and ports of a network fault's wire
// form. block names the parameter block in messages ("partition" gives
// "partition.cidrs[2]: ...").
func ParseNetTarget(block string, cidrs []string, ports []uint16, lim NetLimits) (NetTarget, error) {
	var t NetTarget
	if len(cidrs) == 0 {
		return t, fmt.Errorf("%s.cidrs: at least one CIDR is required", block)
	}
	if lim.MaxCIDRs > 0 && len(cidrs) > lim.MaxCIDRs {
		return t, fmt.Errorf("%s.cidrs: %d CIDRs, at most %d", block, len(cidrs), lim.MaxCIDRs)
	}
	seen := map[netip.Prefix]bool{}
	for i, c := range cidrs {
		pr, err := ParsePrefix(c)
		if err != nil {
			return NetTarget{}, fmt.Errorf("%s.cidrs[%d]: %w", block, i, err)
		}
		if !seen[pr] {
			seen[pr] = true
			t.Prefixes = append(t.Prefixes, pr)
		}
	}
	if lim.MaxPorts > 0 && len(ports) > lim.MaxPorts {
		return NetTarget{}, fmt.Errorf("%s.ports: %d ports, at most %d", block, len(ports), lim.MaxPorts)
	}
	seenPort := map[uint16]bool{}
	for i, p := range ports {
		if err := CheckPort(p); err != nil {
			return NetTarget{}, fmt.Errorf("%s.ports[%d]: %w", block, i, err)
		}
		if !seenPort[p] {
			seenPort[p] = true
			t.Ports = append(t.Ports, p)
		}
	}
	return t, nil
}
