package agentapi

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNetTarget(t *testing.T) {
	tests := []struct {
		name    string
		cidrs   []string
		ports   []uint16
		want    []string
		wantErr string
	}{
		{name: "masking, dedup, bare address, mapped v4", cidrs: []string{"10.1.2.3/16", "10.1.0.0/16", "192.0.2.7", "::ffff:198.51.100.0/120"},
			ports: []uint16{80, 80, 443}, want: []string{"10.1.0.0/16", "192.0.2.7/32", "198.51.100.0/24"}},
		{name: "no CIDR", wantErr: "partition.cidrs: at least one"},
		{name: "mapped shorter than /96", cidrs: []string{"10.0.0.0/8", "::ffff:10.0.0.0/8"}, wantErr: "partition.cidrs[1]: \"::ffff:10.0.0.0/8\": ::ffff:10.0.0.0/8 is an IPv4-mapped prefix shorter than /96"},
		{name: "zone", cidrs: []string{"fe80::1%eth0"}, wantErr: "partition.cidrs[0]: \"fe80::1%eth0\" has a zone"},
		{name: "garbage", cidrs: []string{"ten.one"}, wantErr: "partition.cidrs[0]: \"ten.one\" is not a CIDR"},
		{name: "port zero", cidrs: []string{"10.1.0.0/16"}, ports: []uint16{1, 0}, wantErr: "partition.ports[1]: 0 is not a port number"},
		{name: "too many ports", cidrs: []string{"10.1.0.0/16"}, ports: make([]uint16, 3), wantErr: "partition.ports: 3 ports, at most 2"},
		{name: "too many CIDRs", cidrs: []string{"10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"}, wantErr: "partition.cidrs: 3 CIDRs, at most 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetTarget("partition", tt.cidrs, tt.ports, NetLimits{MaxCIDRs: 2, MaxPorts: 2})
			if tt.name == "masking, dedup, bare address, mapped v4" {
				got, err = ParseNetTarget("partition", tt.cidrs, tt.ports, PartitionLimits)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ps []string
			for _, p := range got.Prefixes {
				ps = append(ps, p.String())
			}
			if strings.Join(ps, " ") != strings.Join(tt.want, " ") {
				t.Errorf("prefixes = %v, want %v", ps, tt.want)
			}
			if len(got.Ports) != 2 {
				t.Errorf("ports = %v, want 80 443", got.Ports)
			}
		})
	}
}

func TestCanonicalPrefixKeepsHostBits(t *testing.T) {
	// The spec validator reports host bits itself (with the masked prefix
	// as a hint), so the shared rule must not hide them.
	p := netip.MustParsePrefix("::ffff:10.1.2.3/112")
	got, err := CanonicalPrefix(p)
	if err != nil || got.String() != "10.1.2.3/16" {
		t.Fatalf("CanonicalPrefix(%s) = %s, %v; want 10.1.2.3/16", p, got, err)
	}
}
