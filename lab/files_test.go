package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestChaosdConfig(t *testing.T) {
	cfg := Config{Name: "x", StateDir: "/run/chaosd-lab/x", ExperimentsDir: "/repo/experiments/library"}
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	l := newLab(cfg)
	b, err := l.chaosdConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"socket: /run/chaosd-lab/x/chaosd.sock", "tcp: 10.254.0.2:7080", "tokenFile: /run/chaosd-lab/x/token",
		"dataDir: /run/chaosd-lab/x/chaosd-data", "experimentsDir: /repo/experiments/library", "url: http://10.254.0.2:9090",
		"endpoint: unix:///run/chaosd-lab/x/agent-c2-n2.sock", "zone: us-west-2a", "agentTokenFile: /run/chaosd-lab/x/agent-token",
		"- name: c1", "- name: c2", "node: c1-n1", "node: c1-n2", "node: c2-n1",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("chaosd.yaml lacks %q:\n%s", want, b)
		}
	}
	if len(got) != 7 {
		t.Errorf("chaosd.yaml has %d top-level keys, want 7", len(got))
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
