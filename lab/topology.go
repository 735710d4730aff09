package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// Namespace roles (the suffix of each network namespace's name).
const (
	RoleC1N1  = "c1n1"
	RoleC1N2  = "c1n2"
	RoleC2N1  = "c2n1"
	RoleC2N2  = "c2n2"
	RoleC1VPC = "c1vpc"
	RoleC2VPC = "c2vpc"
	RoleTGW   = "tgw"
	RoleMgmt  = "mgmt"
)

// Roles lists every namespace role, in creation order.
var Roles = []string{RoleC1N1, RoleC1N2, RoleC2N1, RoleC2N2, RoleC1VPC, RoleC2VPC, RoleTGW, RoleMgmt}

// Node is one lab node: a network namespace standing in for a Kubernetes
// node of one of the two clusters.
type Node struct {
	Name    string // chaosd's node name, e.g. "c1-n1"
	Role    string // namespace role, e.g. "c1n1"
	Cluster string // "c1" or "c2"
	Zone    string
	IP      netip.Addr // VPC address
	Gateway netip.Addr // VPC router side of the node's link
	MgmtIP  netip.Addr
}

// The lab's fixed addressing (production CIDRs).
var (
	C1CIDR   = netip.MustParsePrefix("10.0.0.0/16")
	C2CIDR   = netip.MustParsePrefix("10.1.0.0/16")
	MgmtCIDR = netip.MustParsePrefix("10.254.0.0/24")
	MgmtIP   = netip.MustParseAddr("10.254.0.2") // the mgmt namespace (Prometheus, chaosd, loadgen)

	// TGW attachment links: tgw side .1, VPC router side .2 (/30).
	c1Attach = [2]string{"10.0.255.1", "10.0.255.2"}
	c2Attach = [2]string{"10.1.255.1", "10.1.255.2"}
)

// Nodes are the four lab nodes.
var Nodes = []Node{
	{"c1-n1", RoleC1N1, "c1", "us-west-2a", netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.254.0.11")},
	{"c1-n2", RoleC1N2, "c1", "us-west-2b", netip.MustParseAddr("10.0.2.10"), netip.MustParseAddr("10.0.2.1"), netip.MustParseAddr("10.254.0.12")},
	{"c2-n1", RoleC2N1, "c2", "us-east-1a", netip.MustParseAddr("10.1.1.10"), netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.254.0.13")},
	{"c2-n2", RoleC2N2, "c2", "us-east-1b", netip.MustParseAddr("10.1.2.10"), netip.MustParseAddr("10.1.2.1"), netip.MustParseAddr("10.254.0.14")},
}

// NodeByName returns the node called name ("c1-n1") or with role name ("c1n1").
func NodeByName(name string) (Node, bool) {
	for _, n := range Nodes {
		if n.Name == name || n.Role == name {
			return n, true
		}
	}
	return Node{}, false
}

// NetnsName is the namespace name of role under prefix.
func NetnsName(prefix, role string) string { return prefix + "-" + role }

// command is one iproute2 invocation (argv without the leading "ip").
type command []string

func (c command) String() string { return "ip " + strings.Join(c, " ") }

// plan returns the ip commands that build the topology, in order. It is
// pure, so the isolation rule can be checked without root: every command
// is "netns add", or runs inside a lab namespace (-n NS / netns exec NS).
func plan(prefix string) []command {
	ns := func(role string) string { return NetnsName(prefix, role) }
	var cmds []command
	in := func(role string, args ...string) { cmds = append(cmds, append(command{"-n", ns(role)}, args...)) }
	sysctl := func(role, kv string) {
		cmds = append(cmds, command{"netns", "exec", ns(role), "sysctl", "-qw", kv})
	}
	for _, r := range Roles {
		cmds = append(cmds, command{"netns", "add", ns(r)})
	}
	for _, r := range Roles {
		in(r, "link", "set", "lo", "up")
		fwd := "0"
		if r == RoleTGW || r == RoleC1VPC || r == RoleC2VPC {
			fwd = "1"
		}
		sysctl(r, "net.ipv4.ip_forward="+fwd)
	}
	// Node ↔ VPC router links. Veths are created inside the VPC namespace
	// with the peer placed straight into the node namespace: no interface
	// ever exists in the host namespace, not even for a moment.
	for i, n := range Nodes {
		vpc := RoleC1VPC
		if n.Cluster == "c2" {
			vpc = RoleC2VPC
		}
		dev := fmt.Sprintf("n%d", i%2+1)
		in(vpc, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns(n.Role))
		in(vpc, "addr", "add", n.Gateway.String()+"/24", "dev", dev)
		in(vpc, "link", "set", dev, "up")
		in(n.Role, "addr", "add", n.IP.String()+"/24", "dev", "eth0")
		in(n.Role, "link", "set", "eth0", "up")
		// Nodes route both VPC CIDRs via their VPC router; no default route.
		in(n.Role, "route", "add", C1CIDR.String(), "via", n.Gateway.String(), "dev", "eth0")
		in(n.Role, "route", "add", C2CIDR.String(), "via", n.Gateway.String(), "dev", "eth0")
	}
	// VPC routers ↔ TGW attachments.
	for _, a := range []struct {
		vpc, dev string
		ip       [2]string
		peer     string
	}{
		{RoleC1VPC, "c1", c1Attach, C2CIDR.String()},
		{RoleC2VPC, "c2", c2Attach, C1CIDR.String()},
	} {
		in(RoleTGW, "link", "add", a.dev, "type", "veth", "peer", "name", "tgw0", "netns", ns(a.vpc))
		in(RoleTGW, "addr", "add", a.ip[0]+"/30", "dev", a.dev)
		in(RoleTGW, "link", "set", a.dev, "up")
		in(a.vpc, "addr", "add", a.ip[1]+"/30", "dev", "tgw0")
		in(a.vpc, "link", "set", "tgw0", "up")
		// The VPC route table sends the other cluster's CIDR to the TGW.
		in(a.vpc, "route", "add", a.peer, "via", a.ip[0], "dev", "tgw0")
	}
	// The TGW route table: one route per VPC attachment.
	in(RoleTGW, "route", "add", C1CIDR.String(), "via", c1Attach[1], "dev", "c1")
	in(RoleTGW, "route", "add", C2CIDR.String(), "via", c2Attach[1], "dev", "c2")
	// Management network: a bridge in the mgmt namespace, one veth per node.
	// mgmt does not forward and has no route to either cluster CIDR.
	in(RoleMgmt, "link", "add", "br0", "type", "bridge")
	in(RoleMgmt, "addr", "add", MgmtIP.String()+"/24", "dev", "br0")
	in(RoleMgmt, "link", "set", "br0", "up")
	for _, n := range Nodes {
		in(RoleMgmt, "link", "add", n.Role, "type", "veth", "peer", "name", "mgmt0", "netns", ns(n.Role))
		in(RoleMgmt, "link", "set", n.Role, "master", "br0")
		in(RoleMgmt, "link", "set", n.Role, "up")
		in(n.Role, "addr", "add", n.MgmtIP.String()+"/24", "dev", "mgmt0")
		in(n.Role, "link", "set", "mgmt0", "up")
	}
	return cmds
}
