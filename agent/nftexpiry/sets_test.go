package nftexpiry

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestRanges(t *testing.T) {
	tests := []struct {
		name   string
		in     []netip.Prefix
		v4, v6 string
	}{
		{name: "one each", in: prefixes("10.1.0.0/16", "fd00::/64"), v4: "[10.1.0.0/16]", v6: "[fd00::/64]"},
		{name: "sorted, disjoint", in: prefixes("10.3.0.0/16", "10.1.0.0/16"), v4: "[10.1.0.0/16 10.3.0.0/16]"},
		{name: "nested", in: prefixes("10.1.2.0/24", "10.0.0.0/8", "10.200.0.0/16"), v4: "[10.0.0.0/8]"},
		{name: "adjacent merge", in: prefixes("10.0.0.0/16", "10.1.0.0/16"), v4: "[10.0.0.0/15]"},
		{name: "adjacent, not a prefix", in: prefixes("10.1.0.0/16", "10.2.0.0/16"), v4: "[10.1.0.0-10.2.255.255]"},
		{name: "host", in: prefixes("192.0.2.7/32", "2001:db8::1/128"), v4: "[192.0.2.7]", v6: "[2001:db8::1]"},
		{name: "top of the space", in: prefixes("255.255.255.255/32", "255.0.0.0/8"), v4: "[255.0.0.0/8]"},
		{name: "everything", in: prefixes("0.0.0.0/0", "10.0.0.0/8", "::/0"), v4: "[0.0.0.0/0]", v6: "[::/0]"},
		{name: "host bits ignored", in: prefixes("10.1.2.3/16"), v4: "[10.1.0.0/16]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4, v6 := Ranges(tt.in)
			if got := fmt.Sprint(v4); tt.v4 != "" && got != tt.v4 || tt.v4 == "" && len(v4) != 0 {
				t.Errorf("v4 = %s, want %s", got, tt.v4)
			}
			if got := fmt.Sprint(v6); tt.v6 != "" && got != tt.v6 || tt.v6 == "" && len(v6) != 0 {
				t.Errorf("v6 = %s, want %s", got, tt.v6)
			}
		})
	}
}

func TestRangeEnds(t *testing.T) {
	v4, _ := Ranges(prefixes("10.1.0.0/16", "255.255.255.0/24"))
	if v4[0].End != netip.MustParseAddr("10.2.0.0") {
		t.Errorf("end of 10.1.0.0/16 = %v, want 10.2.0.0 (exclusive)", v4[0].End)
	}
	if v4[1].End.IsValid() {
		t.Errorf("a range reaching the top has no end, got %v", v4[1].End)
	}
	s := Set{Name: "x", Key: KeyIPv4, Ranges: v4}
	if n := s.Elements(); n != 3 {
		t.Errorf("elements = %d, want 3 (start+end, start)", n)
	}
}

func TestSets(t *testing.T) {
	sets := AddrSets(prefixes("fd00::/64", "10.1.0.0/16"), "c4", "c6")
	ps := PortSet("p", []uint16{8082, 80, 8082})
	want := []string{
		"set c4 { type ipv4_addr; flags interval, timeout; elements = { 10.1.0.0/16 } }",
		"set c6 { type ipv6_addr; flags interval, timeout; elements = { fd00::/64 } }",
		"set p { type inet_service; flags timeout; elements = { 80, 8082 } }",
	}
	got := []string{sets[0].String(), sets[1].String(), ps.String()}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("set %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if s := AddrSets(prefixes("10.1.0.0/16"), "c4", "c6"); len(s) != 1 || s[0].Key != KeyIPv4 {
		t.Errorf("IPv4 only: %+v", s)
	}
}

func TestTimeout(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until time.Time
		want  time.Duration
	}{
		{now.Add(2 * time.Second), 2*time.Second + Margin},
		{now.Add(1500*time.Millisecond + 700*time.Microsecond), 1750 * time.Millisecond}, // truncated to ms
		{now.Add(-time.Hour), time.Millisecond},                                          // never 0: that would be no timeout
		{now.AddDate(300, 0, 0), time.Duration(1<<63 - 1).Truncate(time.Millisecond)},
	} {
		if got := Timeout(now, tc.until); got != tc.want {
			t.Errorf("Timeout(until %v) = %v, want %v", tc.until.Sub(now), got, tc.want)
		}
	}
}
