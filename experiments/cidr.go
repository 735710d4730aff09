package experiments

import (
	"fmt"
	"net/netip"

	"github.com/goccy/go-yaml/ast"
)

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
