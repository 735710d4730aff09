package daemon

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chaosd/chaosd/targets"
	"github.com/goccy/go-yaml"
)

// Config is chaosd's configuration file.
type Config struct {
	Listen struct {
		// Socket is the unix socket path of the API (required).
		Socket string `yaml:"socket"`
		// TCP is an optional host:port to serve the API on as well.
		TCP string `yaml:"tcp,omitempty"`
	} `yaml:"listen"`
	// TokenFile holds the bearer token clients must send.
	TokenFile string `yaml:"tokenFile"`
	// DataDir keeps run records.
	DataDir string `yaml:"dataDir"`
	// ExperimentsDir holds experiment YAML files; empty means the built-in
	// library.
	ExperimentsDir string `yaml:"experimentsDir,omitempty"`
	Prometheus     struct {
		URL string `yaml:"url"`
	} `yaml:"prometheus"`
	// AgentTokenFile holds the token chaosd sends to agents.
	AgentTokenFile string    `yaml:"agentTokenFile"`
	Clusters       []Cluster `yaml:"clusters"`
	// Lease is the agent lease chaosd renews while it watches a run
	// (default 5s).
	Lease string `yaml:"lease,omitempty"`
}

// Cluster is a named set of nodes with agents.
type Cluster struct {
	Name   string      `yaml:"name"`
	Agents []AgentNode `yaml:"agents"`
	// Services lists the instances of the services experiments may target
	// by name (in Kubernetes they come from pod discovery).
	Services []Service `yaml:"services,omitempty"`
}

// Service is a named service and its instances.
type Service struct {
	Name      string     `yaml:"name"`
	Instances []Instance `yaml:"instances"`
}

// Instance is one instance (pod) of a service.
type Instance struct {
	Name string `yaml:"name"`
	Node string `yaml:"node"` // must be one of the cluster's agents' nodes
	// URL is the instance's base URL (Spring Boot actuator under /actuator).
	URL string `yaml:"url,omitempty"`
	// Cgroup is the instance's cgroup, relative to the cgroup root.
	Cgroup string `yaml:"cgroup,omitempty"`
}

// AgentNode is a node and how to reach its agent.
type AgentNode struct {
	Node     string            `yaml:"node"`
	Endpoint string            `yaml:"endpoint"` // unix:///path or http://host:port
	Labels   map[string]string `yaml:"labels,omitempty"`
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig decodes (strictly: unknown fields are errors) and validates
// a config; name says where it came from in errors.
func ParseConfig(data []byte, name string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %s", name, yaml.FormatError(err, false, true))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

func (c *Config) validate() error {
	var errs []string
	req := func(v, field string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, field+": required")
		}
	}
	req(c.Listen.Socket, "listen.socket")
	req(c.TokenFile, "tokenFile")
	req(c.DataDir, "dataDir")
	req(c.Prometheus.URL, "prometheus.url")
	req(c.AgentTokenFile, "agentTokenFile")
	if u, err := url.Parse(c.Prometheus.URL); c.Prometheus.URL != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		errs = append(errs, "prometheus.url: not an absolute URL")
	}
	if len(c.Clusters) == 0 {
		errs = append(errs, "clusters: at least one cluster with agents is required")
	}
	if c.Lease != "" {
		if d, err := time.ParseDuration(c.Lease); err != nil || d < time.Second {
			errs = append(errs, "lease: must be a duration of at least 1s")
		}
	}
	seen := map[string]bool{}
	for i, cl := range c.Clusters {
		req(cl.Name, fmt.Sprintf("clusters[%d].name", i))
		for j, a := range cl.Agents {
			req(a.Node, fmt.Sprintf("clusters[%d].agents[%d].node", i, j))
			if !strings.HasPrefix(a.Endpoint, "unix://") && !strings.HasPrefix(a.Endpoint, "http://") && !strings.HasPrefix(a.Endpoint, "https://") {
				errs = append(errs, fmt.Sprintf("clusters[%d].agents[%d].endpoint: must start with unix://, http:// or https://", i, j))
			}
			key := cl.Name + "/" + a.Node
			if seen[key] {
				errs = append(errs, fmt.Sprintf("clusters[%d].agents[%d].node: duplicate node %q", i, j, a.Node))
			}
			seen[key] = true
		}
		svcs := map[string]bool{}
		for j, sv := range cl.Services {
			path := fmt.Sprintf("clusters[%d].services[%d]", i, j)
			req(sv.Name, path+".name")
			if svcs[sv.Name] {
				errs = append(errs, fmt.Sprintf("%s.name: duplicate service %q", path, sv.Name))
			}
			svcs[sv.Name] = true
			insts := map[string]bool{}
			for k, in := range sv.Instances {
				ip := fmt.Sprintf("%s.instances[%d]", path, k)
				req(in.Name, ip+".name")
				if insts[in.Name] {
					errs = append(errs, fmt.Sprintf("%s.name: duplicate instance %q", ip, in.Name))
				}
				insts[in.Name] = true
				if !seen[cl.Name+"/"+in.Node] {
					errs = append(errs, fmt.Sprintf("%s.node: %q has no agent in cluster %s", ip, in.Node, cl.Name))
				}
				if in.URL != "" && !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
					errs = append(errs, fmt.Sprintf("%s.url: must start with http:// or https://", ip))
				}
				if strings.HasPrefix(in.Cgroup, "/") || strings.Contains(in.Cgroup, "..") {
					errs = append(errs, fmt.Sprintf("%s.cgroup: must be relative to the cgroup root, without ..", ip))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

func (c *Config) lease() time.Duration {
	d, err := time.ParseDuration(c.Lease)
	if err != nil || d <= 0 {
		return 5 * time.Second
	}
	return d
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}

// inventory is the static target inventory of the configured clusters:
// nodes are the agents' nodes with their labels.
func (c *Config) inventory() *targets.Static {
	var cls []targets.Cluster
	for _, cl := range c.Clusters {
		tc := targets.Cluster{Name: cl.Name}
		for _, a := range cl.Agents {
			tc.Nodes = append(tc.Nodes, targets.NodeInfo{Name: a.Node, Labels: a.Labels})
		}
		for _, s := range cl.Services {
			ts := targets.Service{Name: s.Name}
			for _, in := range s.Instances {
				ts.Instances = append(ts.Instances, targets.ServiceInstance{Name: in.Name, Node: in.Node, URL: in.URL, Cgroup: in.Cgroup})
			}
			tc.Services = append(tc.Services, ts)
		}
		cls = append(cls, tc)
	}
	return targets.NewStatic(cls, nil)
}
