package partition

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/agent/agentapi"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      *agentapi.Partition
		want    Spec
		wantErr string
	}{
		{name: "nil", in: nil, wantErr: "partition:"},
		{name: "no cidrs", in: &agentapi.Partition{}, wantErr: "partition.cidrs"},
		{name: "bad cidr", in: &agentapi.Partition{CIDRs: []string{"10.0.0.0/8", "nope"}}, wantErr: "partition.cidrs[1]"},
		{name: "bad direction", in: &agentapi.Partition{CIDRs: []string{"10.0.0.0/8"}, Direction: "up"}, wantErr: "partition.direction"},
		{name: "port zero", in: &agentapi.Partition{CIDRs: []string{"10.0.0.0/8"}, Ports: []uint16{80, 0}}, wantErr: "partition.ports[1]"},
		{
			name: "defaults, masking, dedup, bare address",
			in:   &agentapi.Partition{CIDRs: []string{"10.1.2.3/16", "10.1.0.0/16", "192.0.2.7", "2001:db8::1/32"}},
			want: Spec{Direction: Both, Prefixes: []netip.Prefix{
				netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}},
		},
		{
			name: "ports dedup",
			in:   &agentapi.Partition{CIDRs: []string{"10.1.0.0/16"}, Direction: "egress", Ports: []uint16{8082, 8082, 8084}},
			want: Spec{Direction: Egress, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Ports: []uint16{8082, 8084}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Direction != tt.want.Direction || !equal(got.Prefixes, tt.want.Prefixes) || !equal(got.Ports, tt.want.Ports) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanFault(t *testing.T) {
	v4 := netip.MustParsePrefix("10.1.0.0/16")
	v6 := netip.MustParsePrefix("2001:db8::/32")
	tests := []struct {
		name   string
		spec   Spec
		exempt []uint16
		want   string
	}{
		{
			name: "both, v4 and v6, no ports",
			spec: Spec{Direction: Both, Prefixes: []netip.Prefix{v4, v6}},
			want: `table inet chaosd_f1_TABLE {
	set cidrs4 { type ipv4_addr; flags interval, timeout; elements = { 10.1.0.0/16 } }
	set cidrs6 { type ipv6_addr; flags interval, timeout; elements = { 2001:db8::/32 } }
	chain input { type filter hook input priority -200; policy accept;
		ip saddr @cidrs4 drop
		ip6 saddr @cidrs6 drop
	}
	chain output { type filter hook output priority -200; policy accept;
		ip daddr @cidrs4 drop
		ip6 daddr @cidrs6 drop
	}
	chain forward { type filter hook forward priority -200; policy accept;
		ip daddr @cidrs4 drop
		ip6 daddr @cidrs6 drop
		ip saddr @cidrs4 drop
		ip6 saddr @cidrs6 drop
	}
}
`,
		},
		{
			name:   "egress with ports and control exemption",
			spec:   Spec{Direction: Egress, Prefixes: []netip.Prefix{v4}, Ports: []uint16{8084, 8082}},
			exempt: []uint16{7070},
			want: `table inet chaosd_f1_TABLE {
	set cidrs4 { type ipv4_addr; flags interval, timeout; elements = { 10.1.0.0/16 } }
	set remote_ports { type inet_service; flags timeout; elements = { 8082, 8084 } }
	chain output { type filter hook output priority -200; policy accept;
		tcp sport 7070 accept
		ip daddr @cidrs4 tcp dport @remote_ports drop
		ip daddr @cidrs4 udp dport @remote_ports drop
	}
	chain forward { type filter hook forward priority -200; policy accept;
		ip daddr @cidrs4 tcp dport @remote_ports drop
		ip daddr @cidrs4 udp dport @remote_ports drop
	}
}
`,
		},
		{
			name:   "ingress",
			spec:   Spec{Direction: Ingress, Prefixes: []netip.Prefix{v4}, Ports: []uint16{53}},
			exempt: []uint16{7070},
			want: `table inet chaosd_f1_TABLE {
	set cidrs4 { type ipv4_addr; flags interval, timeout; elements = { 10.1.0.0/16 } }
	set remote_ports { type inet_service; flags timeout; elements = { 53 } }
	chain input { type filter hook input priority -200; policy accept;
		tcp dport 7070 accept
		ip saddr @cidrs4 tcp sport @remote_ports drop
		ip saddr @cidrs4 udp sport @remote_ports drop
	}
	chain forward { type filter hook forward priority -200; policy accept;
		ip saddr @cidrs4 tcp sport @remote_ports drop
		ip saddr @cidrs4 udp sport @remote_ports drop
	}
}
`,
		},
		{
			// An interval set refuses overlapping elements: overlapping and
			// adjacent CIDRs become one range.
			name: "overlapping and adjacent CIDRs, IPv6 only",
			spec: Spec{Direction: Egress, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/33"),
				netip.MustParsePrefix("2001:db8:8000::/33"), netip.MustParsePrefix("2001:db8:1::/48")}},
			want: `table inet chaosd_f1_TABLE {
	set cidrs6 { type ipv6_addr; flags interval, timeout; elements = { 2001:db8::/32 } }
	chain output { type filter hook output priority -200; policy accept;
		ip6 daddr @cidrs6 drop
	}
	chain forward { type filter hook forward priority -200; policy accept;
		ip6 daddr @cidrs6 drop
	}
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanFault("f1", tt.spec, tt.exempt)
			want := strings.Replace(tt.want, "chaosd_f1_TABLE", TableName("f1"), 1)
			if got := p.String(); got != want {
				t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestTableName(t *testing.T) {
	tests := []struct{ id, prefix string }{
		{"run1.partition-c1-c2", "chaosd_run1_partition_c1_c2_"},
		{"a/b c", "chaosd_a_b_c_"},
		{strings.Repeat("x", 300), "chaosd_" + strings.Repeat("x", 40) + "_"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		n := TableName(tt.id)
		if !strings.HasPrefix(n, tt.prefix) || len(n) != len(tt.prefix)+8 {
			t.Errorf("TableName(%q) = %q, want prefix %q + 8 hex", tt.id, n, tt.prefix)
		}
		seen[n] = true
	}
	if TableName("a.b") == TableName("a_b") {
		t.Error("distinct IDs share a table name")
	}
}
