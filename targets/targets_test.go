package targets

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/experiments"
)

func testInventory() *Static {
	c1 := Cluster{Name: "c1"}
	for _, n := range []struct{ node, zone string }{{"c1-n1", "a"}, {"c1-n2", "b"}, {"c1-n3", "b"}} {
		c1.Nodes = append(c1.Nodes, NodeInfo{Name: n.node, Labels: map[string]string{"zone": n.zone}})
	}
	c1.Services = []Service{{Name: "customers-service", Instances: []ServiceInstance{
		{Name: "customers-0", Node: "c1-n2", URL: "http://10.0.2.10:8081", Cgroup: "lab/customers-0"},
		{Name: "customers-1", Node: "c1-n3", URL: "http://10.0.3.10:8081"},
	}}}
	return NewStatic([]Cluster{c1}, nil)
}

func TestResolve(t *testing.T) {
	all := experiments.BlastRadius{Kind: experiments.BlastAll}
	cases := []struct {
		name    string
		target  experiments.Target
		want    []string // node[/instance]
		wantErr string
	}{
		{name: "all nodes", target: experiments.Target{Cluster: "c1", Mode: all}, want: []string{"c1-n1", "c1-n2", "c1-n3"}},
		{name: "by name", target: experiments.Target{Cluster: "c1", Nodes: []string{"c1-n2"}, Mode: all}, want: []string{"c1-n2"}},
		{name: "by label", target: experiments.Target{Cluster: "c1", Selector: map[string]string{"zone": "b"}, Mode: all}, want: []string{"c1-n2", "c1-n3"}},
		{name: "fixed", target: experiments.Target{Cluster: "c1", Mode: experiments.BlastRadius{Kind: experiments.BlastFixed, N: 2}}, want: []string{"*", "*"}},
		{name: "percent rounds up", target: experiments.Target{Cluster: "c1", Mode: experiments.BlastRadius{Kind: experiments.BlastPercent, Percent: 34}}, want: []string{"*", "*"}},
		{name: "service instances", target: experiments.Target{Cluster: "c1", Service: "customers-service", Mode: all},
			want: []string{"c1-n2/customers-0", "c1-n3/customers-1"}},
		{name: "service on selected nodes", target: experiments.Target{Cluster: "c1", Service: "customers-service", Nodes: []string{"c1-n3"}, Mode: all},
			want: []string{"c1-n3/customers-1"}},
		{name: "one instance", target: experiments.Target{Cluster: "c1", Service: "customers-service", Mode: experiments.BlastRadius{Kind: experiments.BlastOne}},
			want: []string{"*"}},
		{name: "selector and names narrow each other", target: experiments.Target{Cluster: "c1", Nodes: []string{"c1-n1", "c1-n2"}, Selector: map[string]string{"zone": "b"}, Mode: all},
			want: []string{"c1-n2"}},
		{name: "label key missing does not match empty value", target: experiments.Target{Cluster: "c1", Selector: map[string]string{"rack": ""}, Mode: all}, want: []string{}},
		{name: "unknown cluster", target: experiments.Target{Cluster: "c9"}, wantErr: `cluster "c9" has no agents`},
		{name: "unknown node", target: experiments.Target{Cluster: "c1", Nodes: []string{"x"}}, wantErr: `node "x" is not in cluster c1`},
		{name: "unknown service", target: experiments.Target{Cluster: "c1", Service: "vets-service"}, wantErr: `service "vets-service" is not known`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := testInventory().Resolve(context.Background(), tc.target)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d nodes, want %d", len(got), len(tc.want))
			}
			for i, n := range got {
				if tc.want[i] != "*" && n.Key() != tc.want[i] {
					t.Errorf("node %d = %s, want %s", i, n.Key(), tc.want[i])
				}
				if n.Instance != nil && n.Instance.URL == "" {
					t.Errorf("instance without URL: %+v", n.Instance)
				}
			}
		})
	}
}

func TestPickIsRandomWithinBounds(t *testing.T) {
	var nodes []Node
	for _, n := range []string{"a", "b", "c", "d"} {
		nodes = append(nodes, Node{Cluster: "c1", Name: n})
	}
	seen := map[string]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		got := Pick(nodes, experiments.BlastRadius{Kind: experiments.BlastFixed, N: 2}, r)
		if len(got) != 2 || got[0].Key() >= got[1].Key() {
			t.Fatalf("Pick fixed:2 = %v, want 2 distinct nodes in order", got)
		}
		seen[got[0].Key()+got[1].Key()] = true
	}
	if len(seen) != 6 {
		t.Errorf("200 picks of 2 of 4 nodes gave %d of the 6 pairs", len(seen))
	}
	if got := Pick(nodes, experiments.BlastRadius{Kind: experiments.BlastPercent, Percent: 1}, r); len(got) != 1 {
		t.Errorf("percent:1 of 4 = %d nodes, want 1 (rounded up)", len(got))
	}
	if nodes[0].Name != "a" || nodes[3].Name != "d" {
		t.Errorf("Pick reordered its input: %v", nodes)
	}
}
