package daemon

import (
	"strings"
	"testing"
)

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
