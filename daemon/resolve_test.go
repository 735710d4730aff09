package daemon

import (
	"strings"
	"testing"

	"github.com/chaosd/chaosd/experiments"
)

func testDaemon(t *testing.T) *Daemon {
	t.Helper()
	d := &Daemon{agents: map[string][]agentHandle{}, services: map[string][]Service{}}
	for _, n := range []struct{ node, zone string }{{"c1-n1", "a"}, {"c1-n2", "b"}, {"c1-n3", "b"}} {
		d.agents["c1"] = append(d.agents["c1"], agentHandle{node: n.node, labels: map[string]string{"zone": n.zone}})
	}
	d.services["c1"] = []Service{{Name: "customers-service", Instances: []Instance{
		{Name: "customers-0", Node: "c1-n2", URL: "http://10.0.2.10:8081", Cgroup: "lab/customers-0"},
		{Name: "customers-1", Node: "c1-n3", URL: "http://10.0.3.10:8081"},
	}}}
	return d
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
		{name: "unknown cluster", target: experiments.Target{Cluster: "c9"}, wantErr: `cluster "c9" has no agents`},
		{name: "unknown node", target: experiments.Target{Cluster: "c1", Nodes: []string{"x"}}, wantErr: `node "x" is not in cluster c1`},
		{name: "unknown service", target: experiments.Target{Cluster: "c1", Service: "vets-service"}, wantErr: `service "vets-service" is not known`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolver{testDaemon(t)}.Resolve(tc.target)
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
				if tc.want[i] != "*" && nodeKey(n) != tc.want[i] {
					t.Errorf("node %d = %s, want %s", i, nodeKey(n), tc.want[i])
				}
				if n.Instance != nil && n.Instance.URL == "" {
					t.Errorf("instance without URL: %+v", n.Instance)
				}
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	base := func() *Config {
		c := &Config{TokenFile: "t", DataDir: "d", AgentTokenFile: "a"}
		c.Listen.Socket = "s"
		c.Prometheus.URL = "http://p"
		c.Clusters = []Cluster{{Name: "c1", Agents: []AgentNode{{Node: "n1", Endpoint: "unix:///x"}}}}
		return c
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"missing socket", func(c *Config) { c.Listen.Socket = "" }, "listen.socket: required"},
		{"bad endpoint", func(c *Config) { c.Clusters[0].Agents[0].Endpoint = "tcp://x" }, "clusters[0].agents[0].endpoint"},
		{"instance on unknown node", func(c *Config) {
			c.Clusters[0].Services = []Service{{Name: "s", Instances: []Instance{{Name: "i", Node: "n9"}}}}
		}, `clusters[0].services[0].instances[0].node: "n9" has no agent`},
		{"absolute cgroup", func(c *Config) {
			c.Clusters[0].Services = []Service{{Name: "s", Instances: []Instance{{Name: "i", Node: "n1", Cgroup: "/sys/fs/cgroup/x"}}}}
		}, "instances[0].cgroup: must be relative"},
		{"bad lease", func(c *Config) { c.Lease = "10ms" }, "lease: must be a duration of at least 1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(c)
			err := c.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
