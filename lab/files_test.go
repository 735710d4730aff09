package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/daemon"
)

// chaosdConfigOf renders lab x's chaosd config and reads it back with
// chaosd's own parser (the file is what chaosd itself reads).
func chaosdConfigOf(t *testing.T, kube bool) (*daemon.Config, []byte) {
	t.Helper()
	cfg := Config{Name: "x", StateDir: "/run/chaosd-lab/x", ExperimentsDir: "/repo/experiments/library", Kube: kube}
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	b, err := newLab(cfg).chaosdConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := daemon.ParseConfig(b, "chaosd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func TestChaosdConfig(t *testing.T) {
	c, _ := chaosdConfigOf(t, false)
	if c.Listen.Socket != "/run/chaosd-lab/x/chaosd.sock" || c.Listen.TCP != "10.254.0.2:7080" || c.TokenFile != "/run/chaosd-lab/x/token" ||
		c.DataDir != "/run/chaosd-lab/x/chaosd-data" || c.ExperimentsDir != "/repo/experiments/library" ||
		c.Prometheus.URL != "http://10.254.0.2:9090" || c.AgentTokenFile != "/run/chaosd-lab/x/agent-token" {
		t.Errorf("chaosd config %+v", c)
	}
	nodes := map[string]daemon.AgentNode{}
	svcs := map[string]daemon.Instance{}
	var clusters []string
	for _, cl := range c.Clusters {
		clusters = append(clusters, cl.Name)
		for _, a := range cl.Agents {
			nodes[a.Node] = a
		}
		for _, s := range cl.Services {
			for _, in := range s.Instances {
				svcs[cl.Name+"/"+s.Name] = in
			}
		}
	}
	if strings.Join(clusters, ",") != "c1,c2" || len(nodes) != len(Nodes) {
		t.Errorf("clusters %v with %d agents, want c1,c2 with %d", clusters, len(nodes), len(Nodes))
	}
	if a := nodes["c2-n2"]; a.Endpoint != "unix:///run/chaosd-lab/x/agent-c2-n2.sock" {
		t.Errorf("agent c2-n2: %+v", a)
	}
	if a := nodes["c1-n1"]; a.Labels["zone"] != "us-west-2a" {
		t.Errorf("agent c1-n1 labels %v", a.Labels)
	}
	// Every PetClinic stand-in is a service instance chaosd can target,
	// on a node of its own cluster, with a URL and a cgroup.
	for _, s := range services {
		n := serviceNode(s)
		in, ok := svcs[n.Cluster+"/"+s.name]
		if !ok || in.Node != n.Name || in.URL == "" || in.Cgroup == "" {
			t.Errorf("service %s: instance %+v", s.name, in)
		}
	}
}

func TestPrometheusConfig(t *testing.T) {
	for _, token := range []string{"", "/run/chaosd-lab/x/token"} {
		b, err := prometheusConfig(token)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"job_name: api-gateway", "job_name: customers-service", "job_name: visits-service",
			"10.254.0.11:8080", "10.254.0.12:8081", "10.254.0.13:8082", "metrics_path: /actuator/prometheus", "scrape_interval: 250ms"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("prometheus.yml lacks %q", want)
			}
		}
		if got := strings.Contains(string(b), "job_name: chaosd"); got != (token != "") {
			t.Errorf("chaosd job present=%v with token %q", got, token)
		}
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			continue
		}
		p := filepath.Join(t.TempDir(), "prometheus.yml")
		if token != "" {
			tok := filepath.Join(filepath.Dir(p), "token")
			os.WriteFile(tok, []byte("x"), 0o600)
			b = []byte(strings.ReplaceAll(string(b), token, tok))
		}
		os.WriteFile(p, b, 0o600)
		if out, err := exec.Command(promtool, "check", "config", p).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	}
}
