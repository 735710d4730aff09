// Package lab is the local two-cluster lab: network namespaces standing
// in for the nodes of C1 (10.0.0.0/16) and C2 (10.1.0.0/16) joined by a
// transit-gateway router namespace, a management namespace running
// Prometheus, chaosd and the load generator, the PetClinic stand-ins and
// one chaosd agent per node. Lab addresses exist only inside the lab's
// namespaces; the host namespace is never touched and the lab has no
// uplink. Everything Up makes is recorded in a state directory ahead of
// making it, and Down removes it again, even after a crash.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/internal/certgen"
)

// DefaultStateRoot holds one state directory per lab.
const DefaultStateRoot = "/run/chaosd-lab"

// DefaultLoadRPS is the load generator's default rate.
const DefaultLoadRPS = 20

// DefaultPrometheus is Debian's Prometheus.
const DefaultPrometheus = "/usr/bin/prometheus"

// Config describes a lab.
type Config struct {
	Name           string // default "lab"
	Prefix         string // namespace name prefix, default "cl"
	BinDir         string // holds petclinic, loadgen and (control plane) chaosd
	ExperimentsDir string // chaosd's experimentsDir
	StateDir       string // default /run/chaosd-lab/<Name>
	Prometheus     string // Prometheus binary, default /usr/bin/prometheus
	Alertmanager   string // Alertmanager binary, default /usr/bin/prometheus-alertmanager
	// Knobs are extra flags per process: "api-gateway", "customers-service",
	// "visits-service", "loadgen", "prometheus", "alertmanager",
	// "alertsink", "chaosd", "agent".
	Knobs map[string][]string
	// StartControlPlane starts one agent per node and chaosd. Off only for
	// tests of the lab itself.
	StartControlPlane bool
	// LoadRPS is the load generator's rate (default 20).
	LoadRPS int
	// ScrapeInterval is Prometheus' scrape interval and timeout (default
	// ScrapeInterval). A slow machine (an emulated one) needs a longer
	// one: a scrape that times out leaves the target's series stale, so
	// probes read an empty result at that instant.
	ScrapeInterval time.Duration
	// NoCAdvisor leaves out the cAdvisor stand-in and its scrape job, and
	// NoAlerting the alerting pipeline (Alertmanager, the webhook sink,
	// Prometheus' rule files; chaosd gets no Alertmanager): for
	// experiments that need neither, on a machine with little CPU to
	// spare.
	NoCAdvisor, NoAlerting bool
	// Kube runs the control plane in Kubernetes mode: etcd and
	// kube-apiserver in the mgmt namespace, C1's nodes, agents and
	// services registered as Node and Pod objects, the experiments as
	// Experiment objects, and chaosd discovering them for cluster c1.
	Kube bool
	// KubeBinDir holds kube-apiserver and etcd (default: CHAOSD_K8S_BIN_DIR).
	KubeBinDir string
	Logger     *zap.Logger
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)
)

func (c *Config) complete() error {
	if c.Name == "" {
		c.Name = "lab"
	}
	if c.Prefix == "" {
		c.Prefix = "cl"
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(DefaultStateRoot, c.Name)
	}
	if c.Prometheus == "" {
		c.Prometheus = DefaultPrometheus
	}
	if c.Alertmanager == "" {
		c.Alertmanager = DefaultAlertmanager
	}
	if c.LoadRPS == 0 {
		c.LoadRPS = DefaultLoadRPS
	}
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = ScrapeInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("lab name %q: want %s", c.Name, nameRE)
	}
	if !prefixRE.MatchString(c.Prefix) {
		return fmt.Errorf("namespace prefix %q: want %s", c.Prefix, prefixRE)
	}
	if c.LoadRPS < 1 || c.LoadRPS > 200 {
		return fmt.Errorf("load rate %d rps: want 1..200", c.LoadRPS)
	}
	if c.ScrapeInterval < 100*time.Millisecond || c.ScrapeInterval > 5*time.Second || c.ScrapeInterval%time.Millisecond != 0 {
		return fmt.Errorf("scrape interval %s: want whole milliseconds in 100ms..5s", c.ScrapeInterval)
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	c.StateDir = abs
	return nil
}

// Lab is a running lab.
type Lab struct {
	Name, Prefix, StateDir, BinDir, ExperimentsDir string

	SocketPath     string // chaosd's API unix socket (CHAOSCTL_SOCKET)
	TokenFile      string // chaosd's API token (CHAOSCTL_TOKEN_FILE)
	AgentTokenFile string // the agents' token
	// ReadTokenFile is a chaosd token with scope read (Prometheus
	// scrapes chaosd's /metrics with it).
	ReadTokenFile string
	// PKIDir holds the lab's CA and certificates (internal/certgen's
	// layout): chaosd's TCP API and every agent's TCP API speak TLS, and
	// chaosd and the agents mutual TLS.
	PKIDir        string
	AgentSockets  map[string]string // node name → agent unix socket
	ChaosdConfig  string            // chaosd.yaml
	TruthFile     string            // the load generator's ground truth
	PrometheusURL string            // reachable from the mgmt namespace
	GatewayURL    string            // api-gateway over the mgmt network
	Namespaces    map[string]string // role → netns name
	// AlertmanagerURL is the lab's Alertmanager (API v2 under
	// /api/v2/), reachable from the mgmt namespace; chaosd's config
	// names it and the lab's Prometheus sends its alerts there. Empty
	// with Config.NoAlerting, as are AlertsFile and RuleFiles.
	AlertmanagerURL string
	// AlertsFile records every notification Alertmanager sent to the
	// lab's webhook receiver, one JSON line per alert (read it with
	// alertsink.Read).
	AlertsFile string
	// RuleFiles are the rule files the lab's Prometheus evaluates (copies
	// in the state directory).
	RuleFiles []string
	// ServiceCgroups maps each service to its memory cgroup, relative to
	// the memory hierarchy's root.
	ServiceCgroups map[string]string
	// Kubeconfig is the admin's kubeconfig of the lab's API server
	// (Kubernetes mode): valid inside the mgmt namespace; from the host
	// use KubeConfig.
	Kubeconfig string
	// KubeAPIURL is the API server's address on the mgmt namespace's
	// loopback (Kubernetes mode).
	KubeAPIURL string

	cfg Config
	cg  cgroupFS
	// pods are the registered Pods of the services (Kubernetes mode).
	pods  map[string]podRef
	log   *zap.Logger
	mu    sync.Mutex
	state *State
}

func newLab(cfg Config) *Lab {
	l := &Lab{
		Name: cfg.Name, Prefix: cfg.Prefix, StateDir: cfg.StateDir, BinDir: cfg.BinDir, ExperimentsDir: cfg.ExperimentsDir,
		AgentSockets: map[string]string{}, ServiceCgroups: map[string]string{},
		Namespaces: map[string]string{},
		cfg:        cfg,
		log:        cfg.Logger,
	}
	l.SocketPath = l.path("chaosd.sock")
	l.TokenFile = l.path("token")
	l.AgentTokenFile = l.path("agent-token")
	l.ReadTokenFile = l.path("token-read")
	l.PKIDir = l.path("pki")
	l.ChaosdConfig = l.path("chaosd.yaml")
	l.TruthFile = l.path("truth.csv")
	l.Kubeconfig = l.path("kubeconfig")
	l.PrometheusURL = fmt.Sprintf("http://%s:%d", MgmtIP, PrometheusPort)
	if !cfg.NoAlerting {
		l.AlertmanagerURL = fmt.Sprintf("http://%s:%d", MgmtIP, AlertmanagerPort)
		l.AlertsFile = l.path("alerts.jsonl")
		for _, f := range sortedRuleFileNames() {
			l.RuleFiles = append(l.RuleFiles, l.path("rules", f))
		}
	}
	gw, _ := NodeByName("c1-n1")
	l.GatewayURL = fmt.Sprintf("http://%s:%d", gw.MgmtIP, GatewayPort)
	for _, n := range Nodes {
		l.AgentSockets[n.Name] = l.path("agent-" + n.Name + ".sock")
	}
	for _, r := range Roles {
		l.Namespaces[r] = NetnsName(cfg.Prefix, r)
	}
	return l
}

func (l *Lab) path(elem ...string) string {
	return filepath.Join(append([]string{l.StateDir}, elem...)...)
}

// Env is what chaosctl needs to talk to this lab's chaosd.
func (l *Lab) Env() []string {
	return []string{"CHAOSCTL_SOCKET=" + l.SocketPath, "CHAOSCTL_TOKEN_FILE=" + l.TokenFile}
}

// Up builds the lab and returns once every service answers its health
// check, Prometheus has every target up and (with the control plane)
// chaosd answers /healthz. On error everything made so far is removed.
func Up(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	l := newLab(cfg)
	if err := l.preflight(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.path("logs"), 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if err := os.Chmod(l.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	l.state = &State{Name: l.Name, Prefix: l.Prefix, CreatedAt: time.Now().UTC(), Kube: cfg.Kube}
	defer func() {
		if err != nil {
			l.log.Warn("lab up failed, cleaning up", zap.Error(err))
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if derr := l.Down(dctx); derr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", derr))
			}
		}
	}()
	start := time.Now()
	if err := l.buildNetwork(ctx); err != nil {
		return nil, err
	}
	for _, f := range []string{l.TokenFile, l.AgentTokenFile, l.ReadTokenFile} {
		if err := writeToken(f); err != nil {
			return nil, err
		}
	}
	if err := l.writeCerts(); err != nil {
		return nil, err
	}
	if l.cg, err = detectCgroupFS(); err != nil {
		return nil, fmt.Errorf("lab services run in memory cgroups: %w", err)
	}
	if cfg.Kube {
		// First: the services run in the pod cgroups of the pods
		// registered (kubelet's layout, named by the pods' UIDs).
		if err := l.startKube(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.startServices(ctx); err != nil {
		return nil, err
	}
	if !cfg.NoAlerting {
		if err := l.startAlerting(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.startPrometheus(ctx); err != nil {
		return nil, err
	}
	if cfg.StartControlPlane {
		if err := l.startControlPlane(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.startLoad(ctx); err != nil {
		return nil, err
	}
	l.log.Info("lab up", zap.String("lab", l.Name), zap.String("state", l.StateDir), zap.Duration("took", time.Since(start)))
	return l, nil
}

func (l *Lab) preflight() error {
	if _, err := os.Stat(l.StateDir); err == nil {
		return fmt.Errorf("lab %q already exists (state %s): run down first", l.Name, l.StateDir)
	}
	existing, err := listNetns()
	if err != nil {
		return err
	}
	for _, ns := range l.Namespaces {
		if slices.Contains(existing, ns) {
			return fmt.Errorf("network namespace %s already exists (another lab with prefix %q?)", ns, l.Prefix)
		}
	}
	bins := []string{filepath.Join(l.BinDir, "petclinic"), filepath.Join(l.BinDir, "loadgen"), l.cfg.Prometheus}
	if !l.cfg.NoCAdvisor {
		bins = append(bins, filepath.Join(l.BinDir, "cadvisor"))
	}
	if !l.cfg.NoAlerting {
		bins = append(bins, filepath.Join(l.BinDir, "alertsink"), l.cfg.Alertmanager)
	}
	if l.cfg.StartControlPlane {
		bins = append(bins, filepath.Join(l.BinDir, "chaosd"))
		if l.ExperimentsDir == "" {
			return errors.New("experiments dir is not set")
		}
	}
	if l.cfg.Kube {
		if !l.cfg.StartControlPlane {
			return errors.New("kubernetes mode needs the control plane")
		}
		if err := l.kubePreflight(); err != nil {
			return err
		}
		if _, err := exec.LookPath("nsenter"); err != nil {
			return fmt.Errorf("util-linux nsenter not found: %w", err)
		}
	}
	for _, b := range bins {
		if st, err := os.Stat(b); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("binary %s is missing or not executable (make build builds the lab's own; hack/deps.sh installs Prometheus and Alertmanager)", b)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("iproute2 'ip' not found: %w", err)
	}
	return nil
}

func (l *Lab) saveState() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return writeState(l.StateDir, l.state)
}

func (l *Lab) buildNetwork(ctx context.Context) error {
	// Write-ahead: record the namespaces before creating them.
	for _, r := range Roles {
		l.state.Namespaces = append(l.state.Namespaces, l.Namespaces[r])
	}
	if err := l.saveState(); err != nil {
		return err
	}
	for _, c := range plan(l.Prefix) {
		if out, err := exec.CommandContext(ctx, "ip", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("build lab network: %s: %w: %s", c, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// start launches argv in the namespace of role and records it.
func (l *Lab) start(name, role string, argv []string) error {
	_, err := l.startPID(name, role, argv)
	return err
}

// startPID is start returning the process ID.
func (l *Lab) startPID(name, role string, argv []string) (int, error) {
	argv = append(argv, l.cfg.Knobs[name]...)
	if name == "agent" || strings.HasPrefix(name, "agent-") {
		argv = append(argv, l.cfg.Knobs["agent"]...)
	}
	p := Proc{Name: name, Netns: l.Namespaces[role], Argv: argv, Log: l.path("logs", name+".log")}
	pid, err := startProc(p.Netns, argv, p.Log)
	if err != nil {
		return 0, err
	}
	p.PID = pid
	l.mu.Lock()
	l.state.Procs = append(l.state.Procs, p)
	l.mu.Unlock()
	l.log.Info("started process", zap.String("proc", name), zap.String("netns", p.Netns), zap.Int("pid", pid))
	return pid, l.saveState()
}

func (l *Lab) startServices(ctx context.Context) error {
	bin := filepath.Join(l.BinDir, "petclinic")
	customers, _ := NodeByName("c1-n2")
	visits, _ := NodeByName("c2-n1")
	for _, s := range services {
		n := serviceNode(s)
		argv := []string{bin, "--service", s.name, "--listen", fmt.Sprintf("0.0.0.0:%d", s.port)}
		switch s.name {
		case "visits-service":
			argv = append(argv, "--customers-url", fmt.Sprintf("http://%s:%d", customers.IP, CustomersPort))
		case "api-gateway":
			argv = append(argv, "--customers-url", fmt.Sprintf("http://%s:%d", customers.IP, CustomersPort),
				"--visits-url", fmt.Sprintf("http://%s:%d", visits.IP, VisitsPort))
		}
		// Like a pod, each service runs in its own memory cgroup with a
		// limit (the target of memory faults).
		if pod := l.podCgroup(s.name); pod != "" {
			// The pod's own cgroup carries the pod's limit, as kubelet's does.
			if _, err := l.makeCgroup(pod, DefaultServiceMemoryLimit); err != nil {
				return err
			}
		}
		dir, err := l.makeCgroup(l.serviceCgroup(s.name), DefaultServiceMemoryLimit)
		if err != nil {
			return err
		}
		pid, err := l.startPID(s.name, n.Role, argv)
		if err != nil {
			return err
		}
		if err := joinCgroup(dir, pid); err != nil {
			return err
		}
		l.ServiceCgroups[s.name] = l.serviceCgroup(s.name)
	}
	if !l.cfg.NoCAdvisor {
		if err := l.startCAdvisor(); err != nil {
			return err
		}
	}
	client := l.HTTPClient(2 * time.Second)
	for _, s := range services {
		url := fmt.Sprintf("http://%s:%d/actuator/health", serviceNode(s).MgmtIP, s.port)
		if err := l.waitFor(ctx, s.name+" health", func() error { return httpOK(ctx, client, url, "", `"UP"`) }); err != nil {
			return err
		}
	}
	return nil
}

// startCAdvisor starts the stand-in for the kubelets' cAdvisor, reading
// every service's cgroup.
func (l *Lab) startCAdvisor() error {
	argv := []string{filepath.Join(l.BinDir, "cadvisor"), "--listen", fmt.Sprintf("%s:%d", MgmtIP, CAdvisorPort)}
	for _, s := range services {
		argv = append(argv, "--container", fmt.Sprintf("%s/%s/%s@%s=%s", PodNamespace, podName(s.name), s.name, s.node,
			filepath.Join(l.cg.Root, l.serviceCgroup(s.name))))
		// cAdvisor's pod-level series (container=""): the pod cgroup in
		// Kubernetes mode; in standalone mode the service's cgroup is both.
		pod := l.podCgroup(s.name)
		if pod == "" {
			pod = l.serviceCgroup(s.name)
		}
		argv = append(argv, "--container", fmt.Sprintf("%s/%s/@%s=%s", PodNamespace, podName(s.name), s.node, filepath.Join(l.cg.Root, pod)))
	}
	return l.start("cadvisor", RoleMgmt, argv)
}

// PodNamespace is the Kubernetes namespace the lab's services pretend to
// run in.
const PodNamespace = "petclinic"

// podName is the pod name of a service's single instance.
func podName(svc string) string { return svc + "-0" }

func (l *Lab) startPrometheus(ctx context.Context) error {
	tokenFile := ""
	if l.cfg.StartControlPlane {
		tokenFile = l.ReadTokenFile
	}
	o := promOptions{ChaosdTokenFile: tokenFile, CAdvisor: !l.cfg.NoCAdvisor, Interval: l.cfg.ScrapeInterval}
	if !l.cfg.NoAlerting {
		if err := l.writeRuleFiles(); err != nil {
			return err
		}
		o.RuleFiles, o.Alertmanager = l.RuleFiles, fmt.Sprintf("%s:%d", MgmtIP, AlertmanagerPort)
	}
	o.ChaosdCAFile = filepath.Join(l.PKIDir, certgen.CAFile)
	conf, err := prometheusConfig(o)
	if err != nil {
		return fmt.Errorf("render prometheus config: %w", err)
	}
	confPath := l.path("prometheus.yml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return fmt.Errorf("write prometheus config: %w", err)
	}
	argv := []string{l.cfg.Prometheus, "--config.file=" + confPath, "--storage.tsdb.path=" + l.path("prom"),
		fmt.Sprintf("--web.listen-address=%s:%d", MgmtIP, PrometheusPort), "--storage.tsdb.retention.time=1h"}
	if err := l.start("prometheus", RoleMgmt, argv); err != nil {
		return err
	}
	client := l.HTTPClient(2 * time.Second)
	return l.waitFor(ctx, "prometheus targets up", func() error {
		up, err := l.targetsUp(ctx, client)
		if err != nil {
			return err
		}
		for _, s := range services {
			if !up[s.name] {
				return fmt.Errorf("job %s not up yet", s.name)
			}
		}
		return nil
	})
}

// targetsUp returns, per job, whether all its active targets are up.
func (l *Lab) targetsUp(ctx context.Context, client *http.Client) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.PrometheusURL+"/api/v1/targets?state=active", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapePool string `json:"scrapePool"`
				Health     string `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode prometheus targets: %w", err)
	}
	up := map[string]bool{}
	for _, t := range body.Data.ActiveTargets {
		if v, seen := up[t.ScrapePool]; seen && !v {
			continue
		}
		up[t.ScrapePool] = t.Health == "up"
	}
	return up, nil
}

func (l *Lab) startControlPlane(ctx context.Context) error {
	bin := filepath.Join(l.BinDir, "chaosd")
	for _, n := range Nodes {
		argv := []string{bin, "agent", "--node", n.Name, "--socket", l.AgentSockets[n.Name],
			"--listen-tcp", fmt.Sprintf("%s:%d", n.MgmtIP, AgentTCPPort), "--token-file", l.AgentTokenFile,
			// Mutual TLS on TCP: only chaosd's client certificate passes.
			"--tls-cert-file", certgen.CertPath(l.PKIDir, certgen.AgentPrefix+n.Name), "--tls-key-file", certgen.KeyPath(l.PKIDir, certgen.AgentPrefix+n.Name),
			"--tls-client-ca-file", filepath.Join(l.PKIDir, certgen.CAFile),
			"--ledger", l.path("ledger-" + n.Name + ".jsonl")}
		if l.cfg.Kube {
			// The lab's kubepods hierarchy stands for the node's: the agent
			// finds pods' cgroups there from their UID and QoS class.
			argv = append(argv, "--cgroup-root", filepath.Join(l.cg.Root, l.kubeCgroupRoot()), "--cgroup-driver", "cgroupfs")
		}
		if err := l.start("agent-"+n.Name, n.Role, argv); err != nil {
			return err
		}
	}
	for _, n := range Nodes {
		sock := l.AgentSockets[n.Name]
		if err := l.waitFor(ctx, "agent "+n.Name+" socket", func() error {
			c := unixHTTPClient(sock, 2*time.Second)
			return httpAnswers(ctx, c, "http://agent/healthz", l.AgentTokenFile)
		}); err != nil {
			return err
		}
	}
	conf, err := l.chaosdConfig()
	if err != nil {
		return fmt.Errorf("render chaosd config: %w", err)
	}
	if err := os.WriteFile(l.ChaosdConfig, conf, 0o600); err != nil {
		return fmt.Errorf("write chaosd config: %w", err)
	}
	if err := l.start("chaosd", RoleMgmt, []string{bin, "serve", "--config", l.ChaosdConfig}); err != nil {
		return err
	}
	c := unixHTTPClient(l.SocketPath, 2*time.Second)
	return l.waitFor(ctx, "chaosd /healthz", func() error {
		return httpOK(ctx, c, "http://chaosd/healthz", l.TokenFile, "")
	})
}

func (l *Lab) startLoad(ctx context.Context) error {
	argv := []string{filepath.Join(l.BinDir, "loadgen"), "--target", l.GatewayURL,
		"--rps", fmt.Sprint(l.cfg.LoadRPS), "--truth", l.TruthFile, "--owners", "10"}
	if err := l.start("loadgen", RoleMgmt, argv); err != nil {
		return err
	}
	if err := l.waitFor(ctx, "ground truth file", func() error {
		_, err := os.Stat(l.TruthFile)
		return err
	}); err != nil {
		return err
	}
	// Ready means users' traffic is visible in Prometheus through every
	// hop (gateway → visits → customers) over a whole 5s rate window, so an
	// experiment started right away can judge its steady state.
	client := l.HTTPClient(2 * time.Second)
	return l.waitFor(ctx, "traffic visible in prometheus", func() error {
		for _, q := range readyQueries(l.cfg.ScrapeInterval) {
			ok, err := l.queryNonEmpty(ctx, client, q)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("no result yet for %s", q)
			}
		}
		return nil
	})
}

// readyQueries must all return a series before the lab counts as up: six
// scrapes of each hop's successful calls within 6s, or within six scrape
// intervals when those are longer.
func readyQueries(scrape time.Duration) []string {
	w := model.Duration(max(6*time.Second, 6*scrape)).String()
	return []string{
		`count_over_time(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service",outcome="SUCCESS"}[` + w + `]) >= 6`,
		`count_over_time(http_client_requests_seconds_count{job="visits-service",client_name="customers-service",outcome="SUCCESS"}[` + w + `]) >= 6`,
		`count_over_time(http_server_requests_seconds_count{job="api-gateway",outcome="SUCCESS"}[` + w + `]) >= 6`,
	}
}

// queryNonEmpty runs an instant query and reports whether it returned at
// least one sample.
func (l *Lab) queryNonEmpty(ctx context.Context, client *http.Client, q string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.PrometheusURL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, fmt.Errorf("decode prometheus query: %w", err)
	}
	if body.Status != "success" {
		return false, fmt.Errorf("prometheus query %s: %s", q, body.Error)
	}
	return len(body.Data.Result) > 0, nil
}

// waitFor polls check until it succeeds, ctx ends or 60s pass; a process
// of the lab dying meanwhile fails fast with its log's tail.
func (l *Lab) waitFor(ctx context.Context, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if p, dead := l.deadProc(); dead {
			return fmt.Errorf("waiting for %s: %s exited: %s", what, p.Name, tail(p.Log, 800))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *Lab) deadProc() (Proc, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.state.Procs {
		if !procMatches(p.PID, p.Argv) {
			return p, true
		}
	}
	return Proc{}, false
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

func httpGet(ctx context.Context, c *http.Client, url, tokenFile string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return c.Do(req)
}

// httpOK checks for a 200 whose body contains want.
func httpOK(ctx context.Context, c *http.Client, url, tokenFile, want string) error {
	resp, err := httpGet(ctx, c, url, tokenFile)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
		return fmt.Errorf("GET %s: HTTP %d %q", url, resp.StatusCode, b)
	}
	return nil
}

// httpAnswers checks that something serves HTTP at url (any status).
func httpAnswers(ctx context.Context, c *http.Client, url, tokenFile string) error {
	resp, err := httpGet(ctx, c, url, tokenFile)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// HTTPClient returns a client whose connections start in the mgmt
// namespace: it reaches Prometheus, the services' mgmt addresses and the
// agents' TCP endpoints.
func (l *Lab) HTTPClient(timeout time.Duration) *http.Client {
	return HTTPClientIn(l.Namespaces[RoleMgmt], timeout)
}

// Netns resolves a role ("c1n1", "mgmt"), node name ("c1-n1") or full
// namespace name to this lab's namespace name.
func (l *Lab) Netns(name string) (string, error) {
	if n, ok := NodeByName(name); ok {
		name = n.Role
	}
	if ns, ok := l.Namespaces[name]; ok {
		return ns, nil
	}
	for _, ns := range l.Namespaces {
		if ns == name {
			return ns, nil
		}
	}
	return "", fmt.Errorf("lab %s has no namespace %q", l.Name, name)
}

// Exec runs args inside namespace ns (see Netns) and returns the combined
// output.
func (l *Lab) Exec(ns string, args ...string) ([]byte, error) {
	return l.ExecContext(context.Background(), ns, args...)
}

// ExecContext is Exec bounded by ctx.
func (l *Lab) ExecContext(ctx context.Context, ns string, args ...string) ([]byte, error) {
	full, err := l.Netns(ns)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("exec: no command")
	}
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", full}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("exec %s in %s: %w: %s", args[0], full, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Procs returns the processes the lab started.
func (l *Lab) Procs() []Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.state.Procs)
}

// Down stops every process of the lab, deletes its namespaces and its
// state directory.
func (l *Lab) Down(ctx context.Context) error {
	l.mu.Lock()
	st := *l.state
	st.Procs = slices.Clone(l.state.Procs)
	l.mu.Unlock()
	return teardown(ctx, l.StateDir, &st, l.log)
}
