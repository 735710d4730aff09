package lab

import (
	"strings"
	"testing"
)

// TestPlanStaysInLabNamespaces checks the isolation rule on the plan:
// nothing is created in, or configured for, the host namespace.
func TestPlanStaysInLabNamespaces(t *testing.T) {
	const prefix = "tp"
	lab := map[string]bool{}
	for _, r := range Roles {
		lab[NetnsName(prefix, r)] = true
	}
	for _, c := range plan(prefix) {
		switch {
		case len(c) == 3 && c[0] == "netns" && c[1] == "add":
			if !lab[c[2]] {
				t.Errorf("%s: not a lab namespace", c)
			}
		case len(c) > 3 && c[0] == "netns" && c[1] == "exec":
			if !lab[c[2]] {
				t.Errorf("%s: exec outside the lab", c)
			}
		case len(c) > 2 && c[0] == "-n":
			if !lab[c[1]] {
				t.Errorf("%s: runs outside the lab", c)
			}
			for i, a := range c {
				if a == "netns" && (i+1 >= len(c) || !lab[c[i+1]]) {
					t.Errorf("%s: moves a link outside the lab", c)
				}
			}
			if c[2] == "link" && c[3] == "add" && !strings.Contains(strings.Join(c, " "), " netns ") && c[len(c)-1] != "bridge" {
				t.Errorf("%s: a veth peer would land in the creating namespace only if named so", c)
			}
		default:
			t.Errorf("%s: runs in the host namespace", c)
		}
	}
}

func TestPlanMgmtDoesNotRoute(t *testing.T) {
	mgmt := NetnsName("tp", RoleMgmt)
	for _, c := range plan("tp") {
		s := c.String()
		if strings.Contains(s, mgmt) && (strings.Contains(s, " route ") || strings.Contains(s, "ip_forward=1")) {
			t.Errorf("%s: mgmt must not route between clusters", s)
		}
		if strings.Contains(s, "default") {
			t.Errorf("%s: no default routes in the lab", s)
		}
	}
}

func TestPlanInterfaceNames(t *testing.T) {
	for _, c := range plan("abcdefgh") {
		for i, a := range c {
			if i > 0 && (c[i-1] == "add" && c[0] == "-n" && c[2] == "link" || c[i-1] == "name" || c[i-1] == "dev") && len(a) > 15 {
				t.Errorf("%s: interface name %q longer than 15", c, a)
			}
		}
	}
}
