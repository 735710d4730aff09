package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/experiments"
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
		{"negative fan-out", func(c *Config) { c.FanOut = -1 }, "fanOut: must be at least 1"},
		{"plain text TCP without the flag", func(c *Config) { c.Listen.TCP = ":7080" }, "listen.tls: required with listen.tcp"},
		{"plain text TCP on purpose", func(c *Config) { c.Listen.TCP, c.Listen.InsecurePlaintext = ":7080", true }, ""},
		{"TLS TCP", func(c *Config) { c.Listen.TCP, c.Listen.TLS = ":7080", &ListenTLS{CertFile: "c", KeyFile: "k"} }, ""},
		{"TLS without key", func(c *Config) { c.Listen.TCP, c.Listen.TLS = ":7080", &ListenTLS{CertFile: "c"} }, "certFile and keyFile are required"},
		{"TLS and plain text", func(c *Config) {
			c.Listen.TCP, c.Listen.TLS, c.Listen.InsecurePlaintext = ":7080", &ListenTLS{CertFile: "c", KeyFile: "k"}, true
		}, "exclusive"},
		{"plain http agent", func(c *Config) { c.Clusters[0].Agents[0].Endpoint = "http://10.0.0.1:7070" }, "agentTLS.insecurePlaintext"},
		{"plain http agent on purpose", func(c *Config) {
			c.Clusters[0].Agents[0].Endpoint, c.AgentTLS = "http://10.0.0.1:7070", &AgentTLS{InsecurePlaintext: true}
		}, ""},
		{"https agent without client certificate", func(c *Config) { c.Clusters[0].Agents[0].Endpoint = "https://10.0.0.1:7070" }, "agents require chaosd's client certificate"},
		{"https agent", func(c *Config) {
			c.Clusters[0].Agents[0].Endpoint, c.AgentTLS = "https://10.0.0.1:7070", &AgentTLS{CAFile: "ca", CertFile: "c", KeyFile: "k"}
		}, ""},
		{"kubernetes agents default to https", func(c *Config) {
			c.Clusters, c.Kubernetes = nil, &Kubernetes{Cluster: "c1"}
		}, "kubernetes.agents.scheme: an https agent needs agentTLS"},
		{"kubernetes schedules ConfigMap with a bad name", func(c *Config) {
			c.Clusters, c.AgentTLS = nil, &AgentTLS{InsecurePlaintext: true}
			c.Kubernetes = &Kubernetes{Cluster: "c1", Agents: KubeAgents{Scheme: "http"}, SchedulesConfigMap: "Chaosd_Schedules"}
		}, `kubernetes.schedulesConfigMap: "Chaosd_Schedules" is not a valid ConfigMap name`},
		{"scoped tokens only", func(c *Config) { c.TokenFile, c.Tokens = "", []ScopedToken{{File: "r", Scope: "read"}} }, ""},
		{"no token at all", func(c *Config) { c.TokenFile = "" }, "tokenFile: required"},
		{"bad scope", func(c *Config) { c.Tokens = []ScopedToken{{File: "r", Scope: "write"}} }, `tokens[0].scope: scope "write": want read, run, adhoc or admin`},
		{"freeze windows", func(c *Config) {
			c.FreezeWindows = []experiments.FreezeWindow{
				{Name: "peak", Cron: "0 9 * * 1-5", Duration: experiments.Duration(8 * time.Hour), TimeZone: "America/New_York"},
				{Name: "xmas", Start: "2026-12-24", End: "2026-12-26"},
			}
		}, ""},
		{"freeze window without a span", func(c *Config) { c.FreezeWindows = []experiments.FreezeWindow{{Name: "x"}} },
			"freezeWindows[0].cron: required: either cron and duration"},
		{"freeze window with a bad end", func(c *Config) {
			c.FreezeWindows = []experiments.FreezeWindow{{Name: "x", Start: "2026-12-24", End: "Dec 26"}}
		}, `freezeWindows[0].end: "Dec 26" is not a date or a date-time`},
		{"freeze windows with one name", func(c *Config) {
			c.FreezeWindows = []experiments.FreezeWindow{{Name: "x", Start: "2026-12-24", End: "2026-12-25"}, {Name: "x", Start: "2026-12-24", End: "2026-12-25"}}
		}, `freezeWindows[1].name: duplicate freeze window name "x"`},
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
