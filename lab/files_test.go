package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/chaosd/chaosd/daemon"
	"github.com/chaosd/chaosd/internal/certgen"
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
		c.Prometheus.URL != "http://10.254.0.2:9090" || c.AgentTokenFile != "/run/chaosd-lab/x/agent-token" ||
		c.Alertmanager.URL != "http://10.254.0.2:9093" {
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
	n, _ := NodeByName("c2-n2")
	if a := nodes["c2-n2"]; a.Endpoint != "https://"+n.MgmtIP.String()+":7070" {
		t.Errorf("agent c2-n2: %+v, want its TCP listener over TLS", a)
	}
	// TLS by default: chaosd's TCP listener, mutual TLS with the agents,
	// and a read token for Prometheus.
	if c.Listen.TLS == nil || c.Listen.TLS.CertFile != "/run/chaosd-lab/x/pki/chaosd.crt" || c.Listen.InsecurePlaintext {
		t.Errorf("listen %+v", c.Listen)
	}
	if at := c.AgentTLS; at == nil || at.CAFile != "/run/chaosd-lab/x/pki/ca.crt" || at.KeyFile != "/run/chaosd-lab/x/pki/chaosd.key" || at.InsecurePlaintext {
		t.Errorf("agentTLS %+v", c.AgentTLS)
	}
	if len(c.Tokens) != 1 || c.Tokens[0].Scope != "read" || c.Tokens[0].File != "/run/chaosd-lab/x/token-read" {
		t.Errorf("tokens %+v", c.Tokens)
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

// promtoolBin is Debian's promtool (package prometheus, installed by
// hack/deps.sh), or "" when missing.
func promtoolBin() string {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/promtool"); err == nil {
		return "/usr/bin/promtool"
	}
	return ""
}

func TestPrometheusConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    string
		interval time.Duration
		// slim: NoCAdvisor and NoAlerting (the lab in the VM)
		slim bool
		want string
	}{
		{name: "default", interval: ScrapeInterval, want: "scrape_interval: 250ms\n  scrape_timeout: 250ms"},
		{name: "control plane, slim, slow", token: "/run/chaosd-lab/x/token", interval: 1500 * time.Millisecond, slim: true,
			want: "scrape_interval: 1s500ms\n  scrape_timeout: 1s500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			dir := t.TempDir()
			l := newLab(Config{Name: "x", Prefix: "cl", StateDir: dir, NoAlerting: tc.slim, NoCAdvisor: tc.slim})
			o := promOptions{ChaosdTokenFile: token, ChaosdCAFile: "/run/chaosd-lab/x/pki/ca.crt", RuleFiles: l.RuleFiles, CAdvisor: !tc.slim, Interval: tc.interval}
			if !tc.slim {
				o.Alertmanager = "10.254.0.2:9093"
			}
			b, err := prometheusConfig(o)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"job_name: api-gateway", "job_name: customers-service", "job_name: visits-service",
				"10.254.0.11:8080", "10.254.0.12:8081", "10.254.0.13:8082", "metrics_path: /actuator/prometheus", tc.want,
				"evaluation_interval: 1s"}
			alerting := []string{dir + "/rules/chaosd-rules.yaml", dir + "/rules/petclinic-alerts.yaml", "alertmanagers:", "- 10.254.0.2:9093", "job_name: cadvisor"}
			if !tc.slim {
				want = append(want, alerting...)
			}
			for _, w := range want {
				if !strings.Contains(string(b), w) {
					t.Errorf("prometheus.yml lacks %q:\n%s", w, b)
				}
			}
			if tc.slim {
				for _, w := range append(alerting, "rule_files") {
					if strings.Contains(string(b), w) {
						t.Errorf("prometheus.yml of a lab without alerting and cAdvisor has %q:\n%s", w, b)
					}
				}
			}
			if got := strings.Contains(string(b), "job_name: chaosd"); got != (token != "") {
				t.Errorf("chaosd job present=%v with token %q", got, token)
			}
			if token != "" && (!strings.Contains(string(b), "scheme: https") || !strings.Contains(string(b), "ca_file: /run/chaosd-lab/x/pki/ca.crt")) {
				t.Errorf("chaosd job not scraped over TLS:\n%s", b)
			}
			promtool := promtoolBin()
			if promtool == "" {
				return
			}
			// promtool checks the rule files the config names too: the ones
			// the lab writes into its state directory.
			if err := l.writeRuleFiles(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "prometheus.yml")
			if token != "" {
				tok := filepath.Join(dir, "token")
				os.WriteFile(tok, []byte("x"), 0o600)
				b = []byte(strings.ReplaceAll(string(b), token, tok))
				ca := filepath.Join(dir, "ca.crt")
				if _, err := certgen.Generate(certgen.Spec{Dir: dir}); err != nil {
					t.Fatal(err)
				}
				b = []byte(strings.ReplaceAll(string(b), "/run/chaosd-lab/x/pki/ca.crt", ca))
			}
			os.WriteFile(p, b, 0o600)
			out, err := exec.Command(promtool, "check", "config", p).CombinedOutput()
			if err != nil {
				t.Errorf("promtool check config: %v\n%s", err, out)
			}
			if tc.slim {
				return
			}
			for _, want := range []string{"chaosd-rules.yaml", "petclinic-alerts.yaml"} {
				if !strings.Contains(string(out), want) || !strings.Contains(string(out), "SUCCESS") {
					t.Errorf("promtool check config did not check %s:\n%s", want, out)
				}
			}
		})
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	b, err := alertmanagerConfig("http://10.254.0.2:9095/alerts")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"receiver: lab-webhook", "group_wait: 1s", "group_interval: 1s", "repeat_interval: 12h",
		"- name: lab-webhook", "url: http://10.254.0.2:9095/alerts", "send_resolved: true", "group_by:\n  - alertname"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("alertmanager.yml lacks %q:\n%s", want, b)
		}
	}
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Log("amtool missing (Debian package prometheus-alertmanager, hack/deps.sh): config not checked by Alertmanager's own parser")
		return
	}
	p := filepath.Join(t.TempDir(), "alertmanager.yml")
	os.WriteFile(p, b, 0o600)
	if out, err := exec.Command(amtool, "check-config", p).CombinedOutput(); err != nil {
		t.Errorf("amtool check-config: %v\n%s", err, out)
	}
}

// The rule files the lab's Prometheus evaluates: the shipped chaosd rules
// unchanged, and the lab's PetClinic SLO alerts with the names and labels
// tests and experiments rely on.
func TestRuleFiles(t *testing.T) {
	files := ruleFiles()
	shipped, err := os.ReadFile("../manifests/prometheus/chaosd-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(files["chaosd-rules.yaml"]) != string(shipped) {
		t.Error("the lab's chaosd-rules.yaml differs from manifests/prometheus/chaosd-rules.yaml")
	}
	type rule struct {
		Record, Alert, Expr, For string
		Labels, Annotations      map[string]string
	}
	alerts := map[string]rule{}
	for name, b := range files {
		var f struct {
			Groups []struct {
				Name, Interval string
				Rules          []rule
			}
		}
		if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
					t.Errorf("%s: %s%s: %v", name, r.Alert, r.Record, err)
				}
				if r.Alert != "" {
					alerts[r.Alert] = r
				}
			}
		}
	}
	for _, want := range []struct {
		name, severity string
		for_           string
	}{
		{"PetClinicVisitsCallsFailing", "page", "2s"},
		{"PetClinicGatewayBreakerOpen", "ticket", "1s"},
		{"PetClinicGatewayErrors", "page", "5s"},
	} {
		r, ok := alerts[want.name]
		if !ok {
			t.Errorf("no alert %s", want.name)
			continue
		}
		if r.Labels["severity"] != want.severity || r.Labels["team"] != "petclinic" || r.For != want.for_ {
			t.Errorf("%s: labels %v for %s; want severity %s, team petclinic, for %s", want.name, r.Labels, r.For, want.severity, want.for_)
		}
	}
	for _, name := range []string{"ChaosdFaultActiveTooLong", "ChaosdRunFailed"} {
		if _, ok := alerts[name]; !ok {
			t.Errorf("no alert %s", name)
		}
	}
}

// The lab's alert rules pass promtool's checks and unit tests, like the
// manifests' (manifests/manifests_test.go).
func TestLabRulesPromtool(t *testing.T) {
	promtool := promtoolBin()
	if promtool == "" {
		t.Skip("promtool not installed (Debian package prometheus, hack/deps.sh): rules checked by TestRuleFiles only")
	}
	for _, args := range [][]string{{"check", "rules", "petclinic-alerts.yaml"}, {"test", "rules", "petclinic-alerts.test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
