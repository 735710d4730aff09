package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/common/model"

	"github.com/chaosd/chaosd/daemon"
	"github.com/chaosd/chaosd/internal/certgen"
)

// Scrape ports and paths of the lab's services.
const (
	GatewayPort    = 8080
	CustomersPort  = 8081
	VisitsPort     = 8082
	PrometheusPort = 9090
	ChaosdTCPPort  = 7080
	AgentTCPPort   = 7070
	CAdvisorPort   = 8085
	// AlertmanagerPort is the lab Alertmanager's (in the mgmt namespace;
	// Debian's package may run a system one on the host's :9093, which
	// the lab never uses).
	AlertmanagerPort = 9093
	// AlertSinkPort is the lab's webhook receiver's (mgmt namespace).
	AlertSinkPort = 9095
)

// service is one PetClinic stand-in and where it runs.
type service struct {
	name string
	node string // Node.Name
	port int
}

var services = []service{
	{"customers-service", "c1-n2", CustomersPort},
	{"visits-service", "c2-n1", VisitsPort},
	{"api-gateway", "c1-n1", GatewayPort},
}

func serviceNode(s service) Node {
	n, _ := NodeByName(s.node)
	return n
}

type promStaticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels,omitempty"`
}

type promAuthorization struct {
	Type            string `yaml:"type"`
	CredentialsFile string `yaml:"credentials_file"`
}

type promTLSConfig struct {
	CAFile string `yaml:"ca_file"`
}

type promScrapeConfig struct {
	JobName       string             `yaml:"job_name"`
	MetricsPath   string             `yaml:"metrics_path"`
	Scheme        string             `yaml:"scheme,omitempty"`
	TLSConfig     *promTLSConfig     `yaml:"tls_config,omitempty"`
	Authorization *promAuthorization `yaml:"authorization,omitempty"`
	StaticConfigs []promStaticConfig `yaml:"static_configs"`
}

// ScrapeInterval is the lab Prometheus' default scrape interval (and
// scrape timeout); Config.ScrapeInterval changes it.
const ScrapeInterval = 250 * time.Millisecond

type promAlertmanagerConfig struct {
	APIVersion    string             `yaml:"api_version"`
	StaticConfigs []promStaticConfig `yaml:"static_configs"`
}

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles []string `yaml:"rule_files,omitempty"`
	Alerting  *struct {
		Alertmanagers []promAlertmanagerConfig `yaml:"alertmanagers"`
	} `yaml:"alerting,omitempty"`
	ScrapeConfigs []promScrapeConfig `yaml:"scrape_configs"`
}

// EvaluationInterval is the lab Prometheus' rule evaluation interval.
const EvaluationInterval = "1s"

// promOptions are what the lab's Prometheus config depends on.
type promOptions struct {
	// ChaosdTokenFile, when set, adds the chaosd job (the control plane
	// runs): a token with scope read.
	ChaosdTokenFile string
	// ChaosdCAFile is the CA of chaosd's TLS certificate.
	ChaosdCAFile string
	// RuleFiles are evaluated every EvaluationInterval.
	RuleFiles []string
	// Alertmanager (host:port), when set, receives the alerts.
	Alertmanager string
	// CAdvisor adds the cAdvisor stand-in's job.
	CAdvisor bool
	// Interval is the scrape interval and timeout.
	Interval time.Duration
}

// prometheusConfig scrapes every service over the management network, so
// a partition between the clusters never hides metrics, and chaosd when
// the control plane runs (with its API token), every o.Interval; it
// evaluates the rule files and sends alerts to the lab's Alertmanager.
func prometheusConfig(o promOptions) ([]byte, error) {
	var c promConfig
	// A short scrape interval keeps the lag between a change in the
	// system and its visibility to probes well under the probe interval
	// (1s in the library), so measured times are good to about one probe
	// interval + the scrape interval.
	iv := model.Duration(o.Interval).String()
	c.Global.ScrapeInterval, c.Global.ScrapeTimeout, c.Global.EvaluationInterval = iv, iv, EvaluationInterval
	c.RuleFiles = o.RuleFiles
	if o.Alertmanager != "" {
		c.Alerting = &struct {
			Alertmanagers []promAlertmanagerConfig `yaml:"alertmanagers"`
		}{[]promAlertmanagerConfig{{APIVersion: "v2", StaticConfigs: []promStaticConfig{{Targets: []string{o.Alertmanager}}}}}}
	}
	for _, s := range services {
		n := serviceNode(s)
		c.ScrapeConfigs = append(c.ScrapeConfigs, promScrapeConfig{
			JobName:     s.name,
			MetricsPath: "/actuator/prometheus",
			StaticConfigs: []promStaticConfig{{
				Targets: []string{fmt.Sprintf("%s:%d", n.MgmtIP, s.port)},
				Labels:  map[string]string{"cluster": n.Cluster, "node": n.Name},
			}},
		})
	}
	if o.CAdvisor {
		c.ScrapeConfigs = append(c.ScrapeConfigs, promScrapeConfig{
			JobName:       "cadvisor",
			MetricsPath:   "/metrics",
			StaticConfigs: []promStaticConfig{{Targets: []string{fmt.Sprintf("%s:%d", MgmtIP, CAdvisorPort)}}},
		})
	}
	if o.ChaosdTokenFile != "" {
		c.ScrapeConfigs = append(c.ScrapeConfigs, promScrapeConfig{
			JobName:       "chaosd",
			MetricsPath:   "/metrics",
			Scheme:        "https",
			TLSConfig:     &promTLSConfig{CAFile: o.ChaosdCAFile},
			Authorization: &promAuthorization{Type: "Bearer", CredentialsFile: o.ChaosdTokenFile},
			StaticConfigs: []promStaticConfig{{Targets: []string{fmt.Sprintf("%s:%d", MgmtIP, ChaosdTCPPort)}}},
		})
	}
	return yaml.Marshal(c)
}

// chaosdConfig is the lab's chaosd configuration, built with chaosd's own
// configuration type and checked by its own parser, so the lab can never
// drift from what chaosd accepts.
func (l *Lab) chaosdConfig() ([]byte, error) {
	var c daemon.Config
	c.Listen.Socket = l.SocketPath
	c.Listen.TCP = fmt.Sprintf("%s:%d", MgmtIP, ChaosdTCPPort)
	c.Listen.TLS = &daemon.ListenTLS{CertFile: certgen.CertPath(l.PKIDir, certgen.ChaosdName), KeyFile: certgen.KeyPath(l.PKIDir, certgen.ChaosdName)}
	c.AgentTLS = &daemon.AgentTLS{CAFile: filepath.Join(l.PKIDir, certgen.CAFile),
		CertFile: certgen.CertPath(l.PKIDir, certgen.ChaosdName), KeyFile: certgen.KeyPath(l.PKIDir, certgen.ChaosdName)}
	c.TokenFile = l.TokenFile
	c.Tokens = []daemon.ScopedToken{{File: l.ReadTokenFile, Scope: "read"}}
	c.DataDir = l.path("chaosd-data")
	c.ExperimentsDir = l.ExperimentsDir
	c.Prometheus.URL = l.PrometheusURL
	c.Alertmanager.URL = l.AlertmanagerURL
	c.AgentTokenFile = l.AgentTokenFile
	if l.cfg.Kube {
		// Kubernetes mode for C1: agents and services are discovered from
		// the lab's API server; no clusters: section.
		c.Kubernetes = &daemon.Kubernetes{
			Kubeconfig: l.Kubeconfig,
			Cluster:    KubeCluster,
			Namespace:  ChaosdNamespace,
			Agents:     daemon.KubeAgents{Port: AgentPortName},
			Services:   daemon.KubeServices{Namespace: PodNamespace, LabelKey: ServiceLabel, ActuatorPort: ActuatorPortName},
		}
		return marshalChaosdConfig(c)
	}
	for _, cl := range []string{"c1", "c2"} {
		cc := daemon.Cluster{Name: cl}
		for _, n := range Nodes {
			if n.Cluster == cl {
				// Over the mgmt network with mutual TLS (the agents' unix
				// sockets stay for the lab's own checks).
				cc.Agents = append(cc.Agents, daemon.AgentNode{Node: n.Name, Endpoint: l.agentEndpoint(n), Labels: map[string]string{"zone": n.Zone}})
			}
		}
		for _, s := range services {
			n := serviceNode(s)
			if n.Cluster != cl {
				continue
			}
			cc.Services = append(cc.Services, daemon.Service{Name: s.name, Instances: []daemon.Instance{{
				Name: podName(s.name), Node: n.Name, URL: fmt.Sprintf("http://%s:%d", n.IP, s.port), Cgroup: l.serviceCgroup(s.name),
				// chaosd, in the mgmt namespace, has no path into the
				// clusters: it reaches the actuator over mgmt.
				AdminURL: fmt.Sprintf("http://%s:%d", n.MgmtIP, s.port),
			}}})
		}
		c.Clusters = append(c.Clusters, cc)
	}
	return marshalChaosdConfig(c)
}

// marshalChaosdConfig renders c and checks it with chaosd's own parser.
func marshalChaosdConfig(c daemon.Config) ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("chaosd config: %w", err)
	}
	if _, err := daemon.ParseConfig(b, "chaosd.yaml"); err != nil {
		return nil, fmt.Errorf("the lab's chaosd config does not parse: %w", err)
	}
	return b, nil
}

// agentEndpoint is where chaosd reaches a node's agent: its TCP listener
// on the mgmt network, over mutual TLS.
func (l *Lab) agentEndpoint(n Node) string {
	return fmt.Sprintf("https://%s:%d", n.MgmtIP, AgentTCPPort)
}

// writeCerts makes the lab's CA, chaosd's certificate (for its mgmt
// address) and each agent's (for its node's mgmt address), with the code
// of "chaosd certs".
func (l *Lab) writeCerts() error {
	spec := certgen.Spec{Dir: l.PKIDir, Chaosd: []string{MgmtIP.String()}}
	for _, n := range Nodes {
		spec.Agents = append(spec.Agents, certgen.Agent{Name: n.Name, Hosts: []string{n.MgmtIP.String()}})
	}
	if _, err := certgen.Generate(spec); err != nil {
		return fmt.Errorf("lab certificates: %w", err)
	}
	return nil
}

// writeToken writes a random 32-byte hex token readable by root only.
func writeToken(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate token: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return fmt.Errorf("write token %s: %w", path, err)
	}
	return nil
}
