package daemon

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/internal/secretfile"
	"github.com/chaosd/chaosd/internal/tlsconf"
	"github.com/chaosd/chaosd/targets"
)

// Config is chaosd's configuration file.
type Config struct {
	Listen struct {
		// Socket is the unix socket path of the API (required).
		Socket string `yaml:"socket"`
		// TCP is an optional host:port to serve the API (and /metrics)
		// on as well: over TLS, or plain HTTP with InsecurePlaintext.
		TCP string `yaml:"tcp,omitempty"`
		// TLS is the TCP listener's certificate (required with TCP
		// unless InsecurePlaintext).
		TLS *ListenTLS `yaml:"tls,omitempty"`
		// InsecurePlaintext serves TCP in plain HTTP (logged as a
		// warning at start).
		InsecurePlaintext bool `yaml:"insecurePlaintext,omitempty"`
	} `yaml:"listen"`
	// TokenFile holds a bearer token with scope admin (every call).
	TokenFile string `yaml:"tokenFile,omitempty"`
	// Tokens are more bearer tokens, each with a scope: read, run,
	// adhoc or admin (see README, "Credentials and scopes").
	Tokens []ScopedToken `yaml:"tokens,omitempty"`
	// DataDir keeps run records.
	DataDir string `yaml:"dataDir"`
	// ExperimentsDir holds experiment YAML files; empty means the built-in
	// library.
	ExperimentsDir string `yaml:"experimentsDir,omitempty"`
	Prometheus     struct {
		URL string `yaml:"url"`
	} `yaml:"prometheus"`
	// Alertmanager, when set, is where chaosd silences the alerts an
	// experiment expects (spec.silence). Optional.
	Alertmanager AlertmanagerConfig `yaml:"alertmanager,omitempty"`
	// AgentTokenFile holds the token chaosd sends to agents.
	AgentTokenFile string `yaml:"agentTokenFile"`
	// AgentTLS is how chaosd reaches agents over TCP: mutual TLS for
	// https:// endpoints (required), or plain http:// with
	// InsecurePlaintext.
	AgentTLS *AgentTLS `yaml:"agentTLS,omitempty"`
	// Clusters lists nodes, agents and service instances by hand
	// (standalone mode). Exactly one of Clusters and Kubernetes is set.
	Clusters []Cluster `yaml:"clusters,omitempty"`
	// Kubernetes makes chaosd discover its agents and the services'
	// pods with client-go, read Experiment objects, keep runs as
	// ExperimentRun objects and elect a leader among its replicas.
	Kubernetes *Kubernetes `yaml:"kubernetes,omitempty"`
	// Lease is the agent lease chaosd renews while it watches a run
	// (default 5s).
	Lease string `yaml:"lease,omitempty"`
	// FanOut bounds the agent calls one run has in flight at once:
	// injects, lease renewals and reverts (default 64).
	FanOut int `yaml:"fanOut,omitempty"`
	// FreezeWindows hold for every experiment: no scheduled run starts
	// inside one, and a run on request needs force (see README,
	// "Schedules"). A window's timeZone defaults to UTC.
	FreezeWindows []experiments.FreezeWindow `yaml:"freezeWindows,omitempty"`
}

// ListenTLS is the TLS of chaosd's TCP listener.
type ListenTLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ClientCAFile, when set, requires callers (chaosctl, Prometheus) to
	// present a client certificate of this CA besides their token.
	ClientCAFile string `yaml:"clientCAFile,omitempty"`
}

// AgentTLS is chaosd's side of the mutual TLS with its agents.
type AgentTLS struct {
	// CAFile is the CA the agents' server certificates chain to.
	CAFile string `yaml:"caFile,omitempty"`
	// CertFile and KeyFile are chaosd's client certificate, which the
	// agents require.
	CertFile string `yaml:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty"`
	// ServerName, when set, is the name every agent's certificate must
	// carry, instead of the address dialled (one certificate shared by a
	// DaemonSet's agents, reached by node IP).
	ServerName string `yaml:"serverName,omitempty"`
	// InsecurePlaintext allows http:// agent endpoints (plain text).
	InsecurePlaintext bool `yaml:"insecurePlaintext,omitempty"`
}

// ScopedToken is a token file and what its token may do.
type ScopedToken struct {
	File  string `yaml:"file"`
	Scope string `yaml:"scope"` // read, run, adhoc or admin
}

// AlertmanagerConfig locates Alertmanager.
type AlertmanagerConfig struct {
	// URL of Alertmanager's HTTP API, e.g. http://alertmanager:9093.
	URL string `yaml:"url"`
}

// Kubernetes configures chaosd in a Kubernetes cluster.
type Kubernetes struct {
	// Kubeconfig and Context select the API server; both empty: the
	// in-cluster configuration (the pod's ServiceAccount).
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty"`
	// Cluster is the name experiments' targets use for this cluster.
	Cluster string `yaml:"cluster"`
	// Namespace holds the Experiment and ExperimentRun objects and the
	// leader Lease (default: the pod's namespace, else "chaosd").
	Namespace string `yaml:"namespace,omitempty"`
	// Agents says how to find the agent DaemonSet's pods.
	Agents KubeAgents `yaml:"agents"`
	// Services says how a target's service name maps to pods.
	Services KubeServices `yaml:"services"`
	// LeaderElection among chaosd's replicas (on by default).
	LeaderElection KubeLeaderElection `yaml:"leaderElection,omitempty"`
	// SchedulesConfigMap names the ConfigMap in Namespace that keeps the
	// schedules' state (pauses, the last trigger handled) and the skip
	// log across pod restarts and leader changes (default
	// chaosd-schedules; base/rbac.yaml grants this name only).
	SchedulesConfigMap string `yaml:"schedulesConfigMap,omitempty"`
	// Auth lets Kubernetes identities call the API (on by default): a
	// bearer token chaosd does not know is checked with a TokenReview,
	// then RBAC decides with a SubjectAccessReview (see README,
	// "Credentials and scopes").
	Auth KubeAuth `yaml:"auth,omitempty"`
}

// KubeAuth configures Kubernetes identities on chaosd's API.
type KubeAuth struct {
	// Disabled: only the configured tokens are accepted.
	Disabled bool `yaml:"disabled,omitempty"`
}

// KubeAgents finds the agents: Ready pods matching Selector in Namespace,
// reached at http://HOST_IP:Port (the agent runs with hostNetwork).
type KubeAgents struct {
	Namespace string `yaml:"namespace,omitempty"` // default: Kubernetes.Namespace
	// Selector is a label selector (default app.kubernetes.io/name=chaosd-agent).
	Selector string `yaml:"selector,omitempty"`
	// Port is the agent API's port: a number or a named container port
	// (default "agent", the DaemonSet's port name).
	Port string `yaml:"port,omitempty"`
	// Scheme is https (default: mutual TLS, see agentTLS) or http
	// (needs agentTLS.insecurePlaintext).
	Scheme string `yaml:"scheme,omitempty"`
}

// KubeServices maps a target's service name to pods: the pods in
// Namespace whose label LabelKey equals the name.
type KubeServices struct {
	// Namespace of the services' pods; empty: every namespace.
	Namespace string `yaml:"namespace,omitempty"`
	// LabelKey (default app.kubernetes.io/name, as the PetClinic charts
	// label their pods).
	LabelKey string `yaml:"labelKey,omitempty"`
	// ActuatorPort is the Spring Boot actuator's port: a number or a named
	// container port (default "http").
	ActuatorPort string `yaml:"actuatorPort,omitempty"`
	// Scheme is http or https (default http).
	Scheme string `yaml:"scheme,omitempty"`
}

// KubeLeaderElection configures the coordination.k8s.io Lease election.
type KubeLeaderElection struct {
	// Disabled runs without election (one replica only).
	Disabled bool `yaml:"disabled,omitempty"`
	// LeaseName (default chaosd-leader).
	LeaseName string `yaml:"leaseName,omitempty"`
	// LeaseDuration, RenewDeadline, RetryPeriod (defaults 15s, 10s, 2s).
	LeaseDuration string `yaml:"leaseDuration,omitempty"`
	RenewDeadline string `yaml:"renewDeadline,omitempty"`
	RetryPeriod   string `yaml:"retryPeriod,omitempty"`
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
	// URL is the instance's base URL (Spring Boot actuator under /actuator),
	// as the agent on its node reaches it.
	URL string `yaml:"url,omitempty"`
	// AdminURL is where chaosd itself reaches the instance, when that
	// differs from URL: chaosd undoes a Chaos Monkey assault through it
	// when the instance's agent stops answering. Empty: URL.
	AdminURL string `yaml:"adminURL,omitempty"`
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
	if c.Kubernetes != nil {
		c.Kubernetes.SetDefaults()
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
	if c.TokenFile == "" && len(c.Tokens) == 0 {
		errs = append(errs, "tokenFile: required (or tokens:)")
	}
	for i, t := range c.Tokens {
		req(t.File, fmt.Sprintf("tokens[%d].file", i))
		if _, err := httpapi.ParseScope(t.Scope); err != nil {
			errs = append(errs, fmt.Sprintf("tokens[%d].scope: %v", i, err))
		}
	}
	errs = append(errs, c.validateTLS()...)
	req(c.DataDir, "dataDir")
	req(c.Prometheus.URL, "prometheus.url")
	req(c.AgentTokenFile, "agentTokenFile")
	if u, err := url.Parse(c.Prometheus.URL); c.Prometheus.URL != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		errs = append(errs, "prometheus.url: not an absolute URL")
	}
	if u, err := url.Parse(c.Alertmanager.URL); c.Alertmanager.URL != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		errs = append(errs, "alertmanager.url: not an absolute URL")
	}
	switch {
	case len(c.Clusters) == 0 && c.Kubernetes == nil:
		errs = append(errs, "clusters: at least one cluster with agents is required (or kubernetes: to discover them)")
	case len(c.Clusters) > 0 && c.Kubernetes != nil:
		errs = append(errs, "clusters: not allowed with kubernetes: agents and services are discovered")
	}
	if k := c.Kubernetes; k != nil {
		errs = append(errs, k.validate()...)
	}
	freezes := map[string]int{}
	for i, w := range c.FreezeWindows {
		path := fmt.Sprintf("freezeWindows[%d]", i)
		if j, dup := freezes[w.Name]; dup && w.Name != "" {
			errs = append(errs, fmt.Sprintf("%s.name: duplicate freeze window name %q (also freezeWindows[%d])", path, w.Name, j))
		}
		freezes[w.Name] = i
		for _, p := range w.Check() {
			errs = append(errs, path+"."+p.Field+": "+p.Msg)
		}
	}
	if c.Lease != "" {
		if d, err := time.ParseDuration(c.Lease); err != nil || d < time.Second {
			errs = append(errs, "lease: must be a duration of at least 1s")
		}
	}
	if c.FanOut < 0 {
		errs = append(errs, "fanOut: must be at least 1 (0: the default, 64)")
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

// Defaults of the kubernetes section.
const (
	DefaultNamespace     = "chaosd"
	DefaultAgentSelector = "app.kubernetes.io/name=chaosd-agent"
	DefaultAgentPort     = "agent"
	DefaultServiceLabel  = "app.kubernetes.io/name"
	DefaultActuatorPort  = "http"
	DefaultLeaseName     = "chaosd-leader"
	// DefaultSchedulesConfigMap keeps the schedules' state and skip log.
	DefaultSchedulesConfigMap = store.DefaultSchedulesConfigMap
)

// SetDefaults fills the fields left out.
func (k *Kubernetes) SetDefaults() {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			k.Namespace = strings.TrimSpace(string(b))
		}
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&k.Agents.Namespace, k.Namespace)
	def(&k.Agents.Selector, DefaultAgentSelector)
	def(&k.Agents.Port, DefaultAgentPort)
	def(&k.Agents.Scheme, "https")
	def(&k.Services.LabelKey, DefaultServiceLabel)
	def(&k.Services.ActuatorPort, DefaultActuatorPort)
	def(&k.Services.Scheme, "http")
	def(&k.LeaderElection.LeaseName, DefaultLeaseName)
	def(&k.SchedulesConfigMap, DefaultSchedulesConfigMap)
	def(&k.LeaderElection.LeaseDuration, "15s")
	def(&k.LeaderElection.RenewDeadline, "10s")
	def(&k.LeaderElection.RetryPeriod, "2s")
}

func (k *Kubernetes) validate() []string {
	var errs []string
	if strings.TrimSpace(k.Cluster) == "" {
		errs = append(errs, "kubernetes.cluster: required (the name experiments' targets use for this cluster)")
	}
	if k.Context != "" && k.Kubeconfig == "" {
		errs = append(errs, "kubernetes.context: needs kubernetes.kubeconfig")
	}
	for path, v := range map[string]string{"kubernetes.agents.scheme": k.Agents.Scheme, "kubernetes.services.scheme": k.Services.Scheme} {
		if v != "" && v != "http" && v != "https" {
			errs = append(errs, path+": must be http or https")
		}
	}
	if k.Agents.Selector != "" {
		if _, err := labels.Parse(k.Agents.Selector); err != nil {
			errs = append(errs, fmt.Sprintf("kubernetes.agents.selector: %v", err))
		}
	}
	if k.SchedulesConfigMap != "" {
		if msgs := validation.IsDNS1123Subdomain(k.SchedulesConfigMap); len(msgs) > 0 {
			errs = append(errs, fmt.Sprintf("kubernetes.schedulesConfigMap: %q is not a valid ConfigMap name: %s", k.SchedulesConfigMap, strings.Join(msgs, "; ")))
		}
	}
	le := k.LeaderElection
	durs := map[string]string{"leaseDuration": le.LeaseDuration, "renewDeadline": le.RenewDeadline, "retryPeriod": le.RetryPeriod}
	parsed := map[string]time.Duration{}
	for name, v := range durs {
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("kubernetes.leaderElection.%s: must be a positive duration, not %q", name, v))
			continue
		}
		parsed[name] = d
	}
	if ld, rd := parsed["leaseDuration"], parsed["renewDeadline"]; ld > 0 && rd > 0 && rd >= ld {
		errs = append(errs, "kubernetes.leaderElection.renewDeadline: must be shorter than leaseDuration")
	}
	sort.Strings(errs)
	return errs
}

// validateTLS checks that every TCP path is TLS or plain text on purpose.
func (c *Config) validateTLS() []string {
	var errs []string
	l := c.Listen
	switch {
	case l.TCP == "" && (l.TLS != nil || l.InsecurePlaintext):
		errs = append(errs, "listen.tls, listen.insecurePlaintext: only with listen.tcp (the unix socket is protected by its mode)")
	case l.TCP != "" && l.TLS != nil && l.InsecurePlaintext:
		errs = append(errs, "listen.insecurePlaintext: exclusive with listen.tls")
	case l.TCP != "" && l.TLS == nil && !l.InsecurePlaintext:
		errs = append(errs, "listen.tls: required with listen.tcp (certFile, keyFile), or listen.insecurePlaintext: true to serve plain HTTP")
	case l.TLS != nil && (l.TLS.CertFile == "" || l.TLS.KeyFile == ""):
		errs = append(errs, "listen.tls: certFile and keyFile are required")
	}
	at := c.AgentTLS
	if at != nil && (at.CertFile == "") != (at.KeyFile == "") {
		errs = append(errs, "agentTLS: certFile and keyFile go together")
	}
	check := func(path, scheme string) {
		switch scheme {
		case "https":
			if at == nil || at.CertFile == "" {
				errs = append(errs, path+": an https agent needs agentTLS (caFile, certFile, keyFile): agents require chaosd's client certificate")
			}
		case "http":
			if at == nil || !at.InsecurePlaintext {
				errs = append(errs, path+": a plain http agent needs agentTLS.insecurePlaintext: true (prefer https with mutual TLS)")
			}
		}
	}
	for i, cl := range c.Clusters {
		for j, a := range cl.Agents {
			if u, err := url.Parse(a.Endpoint); err == nil {
				check(fmt.Sprintf("clusters[%d].agents[%d].endpoint", i, j), u.Scheme)
			}
		}
	}
	if k := c.Kubernetes; k != nil {
		scheme := k.Agents.Scheme
		if scheme == "" {
			scheme = "https"
		}
		check("kubernetes.agents.scheme", scheme)
	}
	return errs
}

// agentTLSConfig is the TLS of chaosd's calls to agents (nil: none set).
func (c *Config) agentTLSConfig() (*tls.Config, error) {
	at := c.AgentTLS
	if at == nil || (at.CAFile == "" && at.CertFile == "") {
		return nil, nil
	}
	tc, err := tlsconf.Client(tlsconf.ClientFiles{CAFile: at.CAFile, CertFile: at.CertFile, KeyFile: at.KeyFile, ServerName: at.ServerName})
	if err != nil {
		return nil, fmt.Errorf("agentTLS: %w", err)
	}
	return tc, nil
}

// listenTLSConfig is the TCP listener's TLS (nil: none, or plain text).
func (c *Config) listenTLSConfig() (*tls.Config, error) {
	t := c.Listen.TLS
	if c.Listen.TCP == "" || t == nil {
		return nil, nil
	}
	tc, err := tlsconf.Server(tlsconf.ServerFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile})
	if err != nil {
		return nil, fmt.Errorf("listen.tls: %w", err)
	}
	return tc, nil
}

// staticTokens reads tokenFile (scope admin) and tokens, refusing files
// others can read or write.
func (c *Config) staticTokens() (*httpapi.StaticTokens, error) {
	st := &httpapi.StaticTokens{}
	if c.TokenFile != "" {
		t, err := readToken(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("API token: %w", err)
		}
		st.Add(t, httpapi.ScopeAdmin, "token file "+c.TokenFile)
	}
	for i, tf := range c.Tokens {
		t, err := readToken(tf.File)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		sc, err := httpapi.ParseScope(tf.Scope)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		st.Add(t, sc, "token file "+tf.File)
	}
	return st, nil
}

func (c *Config) lease() time.Duration {
	d, err := time.ParseDuration(c.Lease)
	if err != nil || d <= 0 {
		return 5 * time.Second
	}
	return d
}

func readToken(path string) (string, error) {
	t, err := secretfile.ReadToken(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
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
				ts.Instances = append(ts.Instances, targets.ServiceInstance{Name: in.Name, Node: in.Node, URL: in.URL, AdminURL: in.AdminURL, Cgroup: in.Cgroup})
			}
			tc.Services = append(tc.Services, ts)
		}
		cls = append(cls, tc)
	}
	return targets.NewStatic(cls, nil)
}
