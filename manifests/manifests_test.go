// Package manifests holds the Kubernetes manifests (kustomize base and the
// c1/c2 overlays), the Prometheus rules and the Grafana dashboard. This
// test decodes every file strictly into its type and checks the safety
// properties the design promises; apiserver_test.go renders the overlays
// with kustomize's library and applies them (dry run) to a real API
// server, and checks chaosd's RBAC there.
package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/daemon"
)

const (
	namespace  = "chaosd"
	imageName  = "chaosd/chaosd"
	agentName  = "chaosd-agent"
	daemonName = "chaosd"
)

// clusters is what each overlay must say about its cluster.
var clusters = map[string]struct{ region string }{
	"c1": {region: "us-west-2"},
	"c2": {region: "us-east-1"},
}

// ---------------------------------------------------------------------------
// Local mirrors of the formats that are not Kubernetes objects. Each is
// decoded strictly: a field the mirror does not know is an error, so a typo
// (or a feature the checks below do not cover yet) fails the test.

// kustomization is the subset of kustomize's Kustomization these manifests use.
type kustomization struct {
	APIVersion         string            `json:"apiVersion"`
	Kind               string            `json:"kind"`
	Namespace          string            `json:"namespace,omitempty"`
	NamePrefix         string            `json:"namePrefix,omitempty"`
	Resources          []string          `json:"resources,omitempty"`
	Labels             []kustomizeLabels `json:"labels,omitempty"`
	Images             []kustomizeImage  `json:"images,omitempty"`
	ConfigMapGenerator []kustomizeGen    `json:"configMapGenerator,omitempty"`
	Patches            []struct {
		Path   string          `json:"path,omitempty"`
		Patch  string          `json:"patch,omitempty"`
		Target json.RawMessage `json:"target,omitempty"`
	} `json:"patches,omitempty"`
}

type kustomizeLabels struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

type kustomizeGen struct {
	Name     string   `json:"name"`
	Behavior string   `json:"behavior,omitempty"`
	Files    []string `json:"files,omitempty"`
	Literals []string `json:"literals,omitempty"`
	Options  *struct {
		Labels                map[string]string `json:"labels,omitempty"`
		Annotations           map[string]string `json:"annotations,omitempty"`
		DisableNameSuffixHash bool              `json:"disableNameSuffixHash,omitempty"`
	} `json:"options,omitempty"`
}

// ruleFile mirrors a Prometheus rules file.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Record      string            `json:"record,omitempty"`
			Alert       string            `json:"alert,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// ---------------------------------------------------------------------------
// Loading.

// object is one decoded Kubernetes object and where it came from.
type object struct {
	file string
	obj  runtime.Object
	meta metaOnly
}

type metaOnly struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, apiextensionsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// splitDocs returns the non-empty YAML documents of a file.
func splitDocs(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}

// decodeObjects decodes every document of a file into its typed object,
// strictly: unknown or duplicate fields are errors.
func decodeObjects(s *runtime.Scheme, file string, data []byte) ([]object, error) {
	docs, err := splitDocs(data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errors.New("no YAML document")
	}
	var out []object
	for i, doc := range docs {
		var m metaOnly
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		gv, err := schema.ParseGroupVersion(m.APIVersion)
		if err != nil || m.Kind == "" {
			return nil, fmt.Errorf("document %d: not a Kubernetes object (apiVersion %q, kind %q)", i, m.APIVersion, m.Kind)
		}
		obj, err := s.New(gv.WithKind(m.Kind))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s %s): %w", i, m.Kind, m.Metadata.Name, err)
		}
		if m.Metadata.Name == "" {
			return nil, fmt.Errorf("document %d (%s): metadata.name is empty", i, m.Kind)
		}
		out = append(out, object{file: file, obj: obj, meta: m})
	}
	return out, nil
}

// tree is everything under manifests/, decoded.
type tree struct {
	kustomizations map[string]*kustomization // by directory
	configs        map[string]*daemon.Config // by file
	objects        map[string][]object       // by file
	rules          *ruleFile
}

func load(t *testing.T) *tree {
	t.Helper()
	s := newScheme(t)
	tr := &tree{kustomizations: map[string]*kustomization{}, configs: map[string]*daemon.Config{}, objects: map[string][]object{}}
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml":
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Kustomizations first: they say which files are generator sources.
	generated := map[string]string{} // file -> generator name
	for _, f := range files {
		if path.Base(f) != "kustomization.yaml" {
			continue
		}
		var k kustomization
		if err := yaml.UnmarshalStrict(read(t, f), &k); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		tr.kustomizations[path.Dir(f)] = &k
		for _, g := range k.ConfigMapGenerator {
			for _, src := range g.Files {
				generated[path.Join(path.Dir(f), generatorFile(src))] = g.Name
			}
		}
	}
	for _, f := range files {
		data := read(t, f)
		switch {
		case path.Base(f) == "kustomization.yaml":
		case generated[f] == "chaosd-config":
			c, err := daemon.ParseConfig(data, f)
			if err != nil {
				t.Errorf("%s: not a valid chaosd config: %v", f, err)
				continue
			}
			tr.configs[f] = c
		case generated[f] != "":
			t.Errorf("%s: source of ConfigMap %s, which this test does not know how to check", f, generated[f])
		case f == "prometheus/chaosd-rules.yaml":
			var r ruleFile
			if err := yaml.UnmarshalStrict(data, &r); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			tr.rules = &r
		case strings.HasPrefix(f, "prometheus/") && strings.HasSuffix(f, ".test.yaml"):
			// promtool unit tests: run by TestPrometheusRulesPromtool.
			var v map[string]any
			if err := yaml.Unmarshal(data, &v); err != nil || v["tests"] == nil {
				t.Errorf("%s: not a promtool rule test file: %v", f, err)
			}
		default:
			objs, err := decodeObjects(s, f, data)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			tr.objects[f] = objs
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return tr
}

// generatorFile strips the optional "key=" of a generator file source.
func generatorFile(src string) string {
	if i := strings.Index(src, "="); i >= 0 {
		return src[i+1:]
	}
	return src
}

func read(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// find returns the single object of a kind and name in the base.
func find[T runtime.Object](t *testing.T, tr *tree, kind, name string) T {
	t.Helper()
	var found []T
	for f, objs := range tr.objects {
		if !strings.HasPrefix(f, "base/") {
			continue
		}
		for _, o := range objs {
			if o.meta.Kind == kind && o.meta.Metadata.Name == name {
				if v, ok := o.obj.(T); ok {
					found = append(found, v)
				}
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q in base/, found %d", kind, name, len(found))
	}
	return found[0]
}

// ---------------------------------------------------------------------------
// Tests.

func TestEveryFileDecodesStrictly(t *testing.T) {
	tr := load(t)
	if len(tr.objects) == 0 || len(tr.kustomizations) != 3 || len(tr.configs) != 3 || tr.rules == nil {
		t.Fatalf("want objects, 3 kustomizations (base, c1, c2), 3 chaosd configs and the rules; got %d object files, %d kustomizations, %d configs, rules %v",
			len(tr.objects), len(tr.kustomizations), len(tr.configs), tr.rules != nil)
	}
	for f, objs := range tr.objects {
		for _, o := range objs {
			switch o.meta.Kind {
			case "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
			default:
				if o.meta.Metadata.Namespace != namespace {
					t.Errorf("%s: %s %s: namespace %q, want %q", f, o.meta.Kind, o.meta.Metadata.Name, o.meta.Metadata.Namespace, namespace)
				}
			}
		}
	}
}

// The strict decoder must reject what the API server would silently drop.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	s := newScheme(t)
	bad := []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostNetwrok: true\n")
	if _, err := decodeObjects(s, "bad.yaml", bad); err == nil || !strings.Contains(err.Error(), "hostNetwrok") {
		t.Fatalf("want an unknown-field error naming hostNetwrok, got %v", err)
	}
	if _, err := daemon.ParseConfig([]byte("listen: {socket: /s}\ntokenFile: t\ndataDir: d\nprometheus: {url: http://p:9090}\nagentTokenFile: a\nclusters: [{name: c1, agents: []}]\nleese: 5s\n"), "test"); err == nil {
		t.Fatal("want an unknown-field error for leese")
	}
	if _, err := daemon.ParseConfig([]byte("listen: {socket: /s}\nclusters: [{name: c1}]\n"), "test"); err == nil || !strings.Contains(err.Error(), "tokenFile: required") {
		t.Fatalf("want tokenFile: required, got %v", err)
	}
}

func TestKustomizationsReferenceExistingFiles(t *testing.T) {
	tr := load(t)
	for dir, k := range tr.kustomizations {
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
			t.Errorf("%s: apiVersion/kind %s/%s", dir, k.APIVersion, k.Kind)
		}
		for _, r := range k.Resources {
			p := path.Join(dir, r)
			st, err := os.Stat(p)
			switch {
			case err != nil:
				t.Errorf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
			case st.IsDir():
				if _, ok := tr.kustomizations[path.Clean(p)]; !ok {
					t.Errorf("%s/kustomization.yaml: resource %s is a directory without kustomization.yaml", dir, r)
				}
			case tr.objects[path.Clean(p)] == nil:
				t.Errorf("%s/kustomization.yaml: resource %s holds no Kubernetes objects", dir, r)
			}
		}
		for _, g := range k.ConfigMapGenerator {
			for _, src := range g.Files {
				if _, err := os.Stat(path.Join(dir, generatorFile(src))); err != nil {
					t.Errorf("%s/kustomization.yaml: configMapGenerator %s: %v", dir, g.Name, err)
				}
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				if _, err := os.Stat(path.Join(dir, p.Path)); err != nil {
					t.Errorf("%s/kustomization.yaml: patch: %v", dir, err)
				}
			}
		}
	}
	// Every object file in base/ is listed: none is silently left out.
	base := tr.kustomizations["base"]
	if base == nil {
		t.Fatal("no base/kustomization.yaml")
	}
	for f := range tr.objects {
		if strings.HasPrefix(f, "base/") && !slices.Contains(base.Resources, strings.TrimPrefix(f, "base/")) {
			t.Errorf("%s is not listed in base/kustomization.yaml resources", f)
		}
	}
	if base.Namespace != namespace {
		t.Errorf("base namespace %q, want %q", base.Namespace, namespace)
	}
}

func TestOverlaysSetTheirCluster(t *testing.T) {
	tr := load(t)
	for name, want := range clusters {
		dir := "overlays/" + name
		k := tr.kustomizations[dir]
		if k == nil {
			t.Errorf("%s: missing kustomization.yaml", dir)
			continue
		}
		if !slices.Contains(k.Resources, "../../base") {
			t.Errorf("%s: does not build on ../../base", dir)
		}
		var got map[string]string
		for _, l := range k.Labels {
			if _, ok := l.Pairs["cluster"]; ok {
				got = l.Pairs
				if l.IncludeSelectors {
					t.Errorf("%s: cluster label must not go into selectors (immutable on Deployments/DaemonSets)", dir)
				}
				if !l.IncludeTemplates {
					t.Errorf("%s: cluster label must go onto pod templates", dir)
				}
			}
		}
		if got["cluster"] != name || got["topology.kubernetes.io/region"] != want.region {
			t.Errorf("%s: labels %v, want cluster=%s and region %s", dir, got, name, want.region)
		}
		var tagged bool
		for _, img := range k.Images {
			tagged = tagged || (img.Name == imageName && (img.NewTag != "" || img.Digest != ""))
		}
		if !tagged {
			t.Errorf("%s: no image tag for %s", dir, imageName)
		}
		var gen *kustomizeGen
		for i := range k.ConfigMapGenerator {
			if k.ConfigMapGenerator[i].Name == "chaosd-config" {
				gen = &k.ConfigMapGenerator[i]
			}
		}
		if gen == nil || gen.Behavior != "replace" || len(gen.Files) != 1 {
			t.Fatalf("%s: want configMapGenerator chaosd-config with behavior replace and one file", dir)
		}
		cfg := tr.configs[path.Join(dir, generatorFile(gen.Files[0]))]
		if cfg == nil {
			t.Fatalf("%s: chaosd config not loaded", dir)
		}
		// In-cluster, chaosd discovers agents and service pods through
		// the API: no hand-written cluster (and no placeholder agent).
		if len(cfg.Clusters) != 0 || cfg.Kubernetes == nil || cfg.Kubernetes.Cluster != name {
			t.Errorf("%s: chaosd config must use kubernetes: with cluster %s and no clusters:, got clusters %+v kubernetes %+v", dir, name, cfg.Clusters, cfg.Kubernetes)
		}
	}
	// The base's generator is what the overlays replace.
	var baseGen bool
	for _, g := range tr.kustomizations["base"].ConfigMapGenerator {
		baseGen = baseGen || (g.Name == "chaosd-config" && slices.Contains(g.Files, "chaosd.yaml"))
	}
	if !baseGen {
		t.Error("base: no configMapGenerator chaosd-config from chaosd.yaml")
	}
}

func TestAgentDaemonSet(t *testing.T) {
	tr := load(t)
	ds := find[*appsv1.DaemonSet](t, tr, "DaemonSet", agentName)
	ps := ds.Spec.Template.Spec
	if !ps.HostNetwork {
		t.Error("agent: hostNetwork must be true (partitions act on the node's network namespace)")
	}
	// Pod-scoped faults find pods' processes (cgroup.procs lists only PIDs
	// the reader's PID namespace sees) and open their /proc/PID/ns/net.
	if !ps.HostPID {
		t.Error("agent: hostPID must be true (pod-scoped faults open pods' processes' namespaces)")
	}
	if ps.HostIPC {
		t.Error("agent: hostIPC must be false")
	}
	if ps.TerminationGracePeriodSeconds == nil || *ps.TerminationGracePeriodSeconds < 30 {
		t.Error("agent: terminationGracePeriodSeconds must be >= 30 so SIGTERM can revert every fault")
	}
	if ps.PriorityClassName != "system-node-critical" {
		t.Errorf("agent: priorityClassName %q", ps.PriorityClassName)
	}
	if !slices.ContainsFunc(ps.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
	}) {
		t.Error("agent: must tolerate every taint ({operator: Exists})")
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("agent: needs no API access: automountServiceAccountToken must be false")
	}
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable == nil || us.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Error("agent: updateStrategy must be RollingUpdate with maxUnavailable 1")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("agent: want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	if !strings.HasPrefix(c.Image, imageName+":") {
		t.Errorf("agent: image %q, want %s:TAG (the overlays' images entry)", c.Image, imageName)
	}
	args := flags(t, "agent", c.Args, "agent")
	for flag, want := range map[string]string{"--node": "$(NODE_NAME)", "--listen-tcp": "$(POD_IP):7070"} {
		if args[flag] != want {
			t.Errorf("agent: %s %q, want %q", flag, args[flag], want)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" || env["POD_IP"] != "status.podIP" {
		t.Errorf("agent: env NODE_NAME/POD_IP must come from spec.nodeName/status.podIP, got %v", env)
	}

	hostPaths := map[string]string{} // volume -> host path
	secrets := map[string]bool{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
		if v.Secret != nil {
			secrets[v.Name] = true
		}
		if v.Projected != nil {
			all := len(v.Projected.Sources) > 0
			for _, src := range v.Projected.Sources {
				all = all && src.Secret != nil
			}
			secrets[v.Name] = all
		}
	}
	// The ledger lives on the host at /var/lib/chaosd, so a restarted agent
	// reverts what a killed one left; the socket under /run/chaosd.
	// The cgroup root is the host's cgroup filesystem, writable (the memory
	// stressor's leaf cgroup in a pod's cgroup).
	if m := mountFor(c.VolumeMounts, args["--cgroup-root"]+"/x"); m == nil || hostPaths[m.Name] != "/sys/fs/cgroup" || m.ReadOnly ||
		strings.TrimSuffix(m.MountPath, "/") != strings.TrimSuffix(args["--cgroup-root"], "/") {
		t.Errorf("agent: --cgroup-root %q must be a writable hostPath mount of /sys/fs/cgroup", args["--cgroup-root"])
	}
	if _, err := kubepod.ParseDriver(args["--cgroup-driver"]); err != nil {
		t.Errorf("agent: --cgroup-driver: %v", err)
	}
	if ns := args["--cgroupns"]; ns != "/proc/1/ns/cgroup" {
		t.Errorf("agent: --cgroupns %q, want /proc/1/ns/cgroup (the host's, through hostPID)", ns)
	}
	for flag, hostDir := range map[string]string{"--ledger": "/var/lib/chaosd", "--socket": "/run/chaosd"} {
		m := mountFor(c.VolumeMounts, args[flag])
		if m == nil || hostPaths[m.Name] != hostDir || m.ReadOnly {
			t.Errorf("agent: %s %s must be on a writable hostPath mount of %s", flag, args[flag], hostDir)
		}
	}
	for _, flag := range []string{"--token-file", "--tls-cert-file", "--tls-key-file", "--tls-client-ca-file"} {
		if m := mountFor(c.VolumeMounts, args[flag]); m == nil || !secrets[m.Name] {
			t.Errorf("agent: %s %q must be on a Secret volume (mutual TLS on the TCP port)", flag, args[flag])
		}
	}

	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("agent: no securityContext.capabilities")
	}
	// Exactly what the faults need: NET_ADMIN (nftables, tc), SYS_ADMIN
	// (setns into pods' network namespaces and the host's cgroup
	// namespace), SYS_PTRACE (open other processes' namespace files).
	added := slices.Clone(sc.Capabilities.Add)
	slices.Sort(added)
	if want := []corev1.Capability{"NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"}; !slices.Equal(added, want) {
		t.Errorf("agent: capabilities add %v, want exactly %v", sc.Capabilities.Add, want)
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("agent: capabilities must drop ALL")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("agent: must not be privileged")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("agent: readOnlyRootFilesystem true and allowPrivilegeEscalation false")
	}
	checkProbes(t, "agent", c, 7070)
	checkResources(t, "agent", c)
}

func TestChaosdDeployment(t *testing.T) {
	tr := load(t)
	d := find[*appsv1.Deployment](t, tr, "Deployment", daemonName)
	// Two replicas behind a Lease election, replaced one at a time.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Error("chaosd: replicas 2 with strategy RollingUpdate (the replicas elect a leader)")
	}
	ps := d.Spec.Template.Spec
	if ps.ServiceAccountName != daemonName {
		t.Errorf("chaosd: serviceAccountName %q", ps.ServiceAccountName)
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Error("chaosd: pod must run as non-root")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("chaosd: want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	if !strings.HasPrefix(c.Image, imageName+":") {
		t.Errorf("chaosd: image %q", c.Image)
	}
	args := flags(t, "chaosd", c.Args, "serve")
	if args["--config"] != "/etc/chaosd/chaosd.yaml" {
		t.Errorf("chaosd: --config %q", args["--config"])
	}
	// The leader election's identity and namespace, from the downward API.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAME"] != "metadata.name" || env["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("chaosd: env POD_NAME/POD_NAMESPACE must come from metadata.name/metadata.namespace, got %v", env)
	}
	// A PodDisruptionBudget keeps a replica up through drains, and can be met.
	pdb := find[*policyv1.PodDisruptionBudget](t, tr, "PodDisruptionBudget", daemonName)
	if pdb.Spec.Selector == nil || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) ||
		pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget chaosd: want the Deployment's selector and 1 <= minAvailable < replicas, got %+v", pdb.Spec)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
		t.Error("chaosd: readOnlyRootFilesystem, no privilege escalation, drop ALL capabilities")
	}
	checkResources(t, "chaosd", c)

	// What the config file names must be where the pod puts it: the config
	// itself from the chaosd-config ConfigMap, the tokens from Secrets, the
	// socket and the data directory on writable volumes.
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	source := func(file string) (kind, name, key string) {
		m := mountFor(c.VolumeMounts, file)
		if m == nil {
			return "", "", ""
		}
		v := vols[m.Name]
		rel := strings.TrimPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		switch {
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				switch {
				case s.ConfigMap != nil:
					for _, it := range s.ConfigMap.Items {
						if it.Path == rel {
							return "ConfigMap", s.ConfigMap.Name, it.Key
						}
					}
				case s.Secret != nil:
					for _, it := range s.Secret.Items {
						if it.Path == rel {
							return "Secret", s.Secret.Name, it.Key
						}
					}
				}
			}
		case v.ConfigMap != nil:
			return "ConfigMap", v.ConfigMap.Name, rel
		case v.Secret != nil:
			return "Secret", v.Secret.SecretName, rel
		case v.EmptyDir != nil && !m.ReadOnly:
			return "emptyDir", v.Name, ""
		}
		return "", "", ""
	}
	if k, n, key := source(args["--config"]); k != "ConfigMap" || n != "chaosd-config" || key != "chaosd.yaml" {
		t.Errorf("chaosd: --config comes from %s %s key %s, want ConfigMap chaosd-config key chaosd.yaml", k, n, key)
	}
	svc := find[*corev1.Service](t, tr, "Service", daemonName)
	for f, cfg := range tr.configs {
		if k, _, _ := source(cfg.TokenFile); k != "Secret" {
			t.Errorf("%s: tokenFile %s is not on a Secret in the Deployment", f, cfg.TokenFile)
		}
		if k, _, _ := source(cfg.AgentTokenFile); k != "Secret" {
			t.Errorf("%s: agentTokenFile %s is not on a Secret in the Deployment", f, cfg.AgentTokenFile)
		}
		if k, _, _ := source(path.Join(cfg.DataDir, "x")); k != "emptyDir" {
			t.Errorf("%s: dataDir %s is not on a writable volume", f, cfg.DataDir)
		}
		if k, _, _ := source(cfg.Listen.Socket); k != "emptyDir" {
			t.Errorf("%s: listen.socket %s is not on a writable volume", f, cfg.Listen.Socket)
		}
		if cfg.ExperimentsDir != "" {
			if k, n, _ := source(path.Join(cfg.ExperimentsDir, "x.yaml")); k != "ConfigMap" || n != "chaosd-experiments" {
				t.Errorf("%s: experimentsDir %s is not the chaosd-experiments ConfigMap", f, cfg.ExperimentsDir)
			}
		}
		// The API's TCP port is the container's, the Service's and the probes'.
		_, port, err := splitPort(cfg.Listen.TCP)
		if err != nil {
			t.Errorf("%s: listen.tcp %q: %v", f, cfg.Listen.TCP, err)
			continue
		}
		checkProbes(t, "chaosd", c, port)
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 7080 || !portMatches(c, svc.Spec.Ports[0].TargetPort.String(), port) {
			t.Errorf("%s: Service chaosd must expose 7080 onto the API port %d", f, port)
		}
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service chaosd selector %s=%s does not match the pod template", k, v)
		}
	}
}

// permissions expands RBAC rules into "group resource[name] verb" lines.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					what := res
					if n != "" {
						what += "[" + n + "]"
					}
					for _, v := range r.Verbs {
						out = append(out, g+" "+what+" "+v)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func expand(group string, resources, verbs []string) []string {
	var out []string
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, group+" "+r+" "+v)
		}
	}
	return out
}

// wantClusterPermissions is what chaosd needs in every namespace.
func wantClusterPermissions() []string {
	return slices.Concat(
		expand("", []string{"pods", "nodes"}, []string{"get", "list", "watch"}),
		expand("", []string{"events"}, []string{"create", "patch"}),
		expand("events.k8s.io", []string{"events"}, []string{"create", "patch"}),
		// Kubernetes identities on chaosd's API.
		expand("authentication.k8s.io", []string{"tokenreviews"}, []string{"create"}),
		expand("authorization.k8s.io", []string{"subjectaccessreviews"}, []string{"create"}),
	)
}

// userRoles are the Roles for people and pipelines using chaosd's API:
// one verb per scope on the virtual subresource experimentruns/api, bound
// by nobody in the manifests. Of real resources every Role reads
// Experiments, Suites and their runs, and only chaosd-admin writes
// Experiments and Suites; none writes ExperimentRuns or SuiteRuns
// (chaosd's records).
var userRoles = map[string][]string{
	"chaosd-viewer": slices.Concat(expand("chaosd.io", []string{"experimentruns/api"}, []string{"get"}), suiteReader),
	"chaosd-runner": slices.Concat(expand("chaosd.io", []string{"experimentruns/api"}, []string{"get", "create"}), suiteReader),
	"chaosd-adhoc":  slices.Concat(expand("chaosd.io", []string{"experimentruns/api"}, []string{"get", "create", daemon.VerbAdHoc}), suiteReader),
	"chaosd-admin": slices.Concat(expand("chaosd.io", []string{"experimentruns/api"}, []string{"get", "create", daemon.VerbAdHoc, daemon.VerbHalt}),
		suiteReader, expand("chaosd.io", []string{"experiments", "suites"}, []string{"create", "update", "patch"})),
}

// suiteReader is what every user Role may do with experiments, suites and
// their runs (kubectl get experiments,experimentruns,suites,suiteruns).
var suiteReader = expand("chaosd.io", []string{"experiments", "experimentruns", "suites", "suiteruns"}, []string{"get", "list", "watch"})

// wantRolePermissions is what chaosd needs in its own namespace besides.
func wantRolePermissions() []string {
	return slices.Concat(
		expand("chaosd.io", []string{"experiments"}, []string{"get", "list", "watch"}),
		expand("chaosd.io", []string{"experiments/status"}, []string{"update", "patch"}),
		expand("chaosd.io", []string{"experimentruns", "experimentruns/status"}, []string{"create", "get", "list", "watch", "update", "patch", "delete"}),
		expand("chaosd.io", []string{"suites"}, []string{"get", "list", "watch"}),
		expand("chaosd.io", []string{"suites/status", "suiteruns/status"}, []string{"patch"}),
		expand("chaosd.io", []string{"suiteruns"}, []string{"create", "get", "list"}),
		expand("coordination.k8s.io", []string{"leases"}, []string{"create"}),
		expand("coordination.k8s.io", []string{"leases[" + daemon.DefaultLeaseName + "]"}, []string{"get", "update"}),
		expand("", []string{"configmaps"}, []string{"create"}),
		expand("", []string{"configmaps[" + daemon.DefaultSchedulesConfigMap + "]"}, []string{"get", "update"}),
	)
}

// comparePermissions reports every permission granted but not wanted and
// wanted but not granted.
func comparePermissions(t *testing.T, who string, got, want []string) {
	t.Helper()
	for _, p := range got {
		if !slices.Contains(want, p) {
			t.Errorf("%s grants %q, which is more than wanted", who, p)
		}
	}
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("%s lacks %q", who, p)
		}
	}
}

// TestRBACLeastPrivilege: chaosd's roles grant exactly what it needs,
// nothing more (TestAPIServerRBAC checks the same on a real API server).
func TestRBACLeastPrivilege(t *testing.T) {
	tr := load(t)
	cr := find[*rbacv1.ClusterRole](t, tr, "ClusterRole", daemonName)
	role := find[*rbacv1.Role](t, tr, "Role", daemonName)
	comparePermissions(t, "ClusterRole chaosd", permissions(cr.Rules), wantClusterPermissions())
	comparePermissions(t, "Role chaosd", permissions(role.Rules), wantRolePermissions())
	crb := find[*rbacv1.ClusterRoleBinding](t, tr, "ClusterRoleBinding", daemonName)
	rb := find[*rbacv1.RoleBinding](t, tr, "RoleBinding", daemonName)
	for _, b := range []struct {
		ref  rbacv1.RoleRef
		subj []rbacv1.Subject
		kind string
	}{{crb.RoleRef, crb.Subjects, "ClusterRole"}, {rb.RoleRef, rb.Subjects, "Role"}} {
		if b.ref.Kind != b.kind || b.ref.Name != daemonName || len(b.subj) != 1 || b.subj[0].Kind != "ServiceAccount" || b.subj[0].Name != daemonName || b.subj[0].Namespace != namespace {
			t.Errorf("%sBinding: must bind %s chaosd to ServiceAccount chaosd/chaosd, got %+v %+v", b.kind, b.kind, b.ref, b.subj)
		}
	}
	// No other role or binding: the agent gets nothing.
	for f, objs := range tr.objects {
		for _, o := range objs {
			switch o.meta.Kind {
			case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
				if o.meta.Kind == "Role" && userRoles[o.meta.Metadata.Name] != nil {
					r := find[*rbacv1.Role](t, tr, "Role", o.meta.Metadata.Name)
					comparePermissions(t, "Role "+o.meta.Metadata.Name, permissions(r.Rules), userRoles[o.meta.Metadata.Name])
					continue
				}
				if o.meta.Metadata.Name != daemonName {
					t.Errorf("%s: unexpected %s %s", f, o.meta.Kind, o.meta.Metadata.Name)
				}
			}
		}
	}
	find[*corev1.ServiceAccount](t, tr, "ServiceAccount", daemonName)
	agent := find[*corev1.ServiceAccount](t, tr, "ServiceAccount", agentName)
	if agent.AutomountServiceAccountToken == nil || *agent.AutomountServiceAccountToken {
		t.Error("ServiceAccount chaosd-agent: automountServiceAccountToken must be false (the agent needs no API access)")
	}
}

// TestKubernetesConfigMatchesManifests: what each chaosd config's
// kubernetes section names exists in the manifests: the agents' selector,
// namespace and port are the DaemonSet's, the leader Lease and the
// schedules' ConfigMap are the ones the Role grants, the Deployment
// passes the pod's identity.
func TestKubernetesConfigMatchesManifests(t *testing.T) {
	tr := load(t)
	ds := find[*appsv1.DaemonSet](t, tr, "DaemonSet", agentName)
	role := find[*rbacv1.Role](t, tr, "Role", daemonName)
	var leaseNames, configMapNames []string
	for _, r := range role.Rules {
		if slices.Contains(r.Resources, "leases") {
			leaseNames = append(leaseNames, r.ResourceNames...)
		}
		if slices.Contains(r.Resources, "configmaps") {
			configMapNames = append(configMapNames, r.ResourceNames...)
		}
	}
	for f, cfg := range tr.configs {
		k := cfg.Kubernetes
		if k == nil || len(cfg.Clusters) != 0 {
			t.Errorf("%s: want a kubernetes: section and no clusters:", f)
			continue
		}
		if k.Namespace != namespace || k.Agents.Namespace != ds.Namespace {
			t.Errorf("%s: namespace %q, agents in %q; want %q (where the manifests put them)", f, k.Namespace, k.Agents.Namespace, namespace)
		}
		sel, err := labels.Parse(k.Agents.Selector)
		if err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
			t.Errorf("%s: agents selector %q does not match the agent pods' labels %v", f, k.Agents.Selector, ds.Spec.Template.Labels)
		}
		var port bool
		for _, cp := range ds.Spec.Template.Spec.Containers[0].Ports {
			port = port || cp.Name == k.Agents.Port || strconv.Itoa(int(cp.ContainerPort)) == k.Agents.Port
		}
		if !port {
			t.Errorf("%s: agents port %q is not a port of the agent container", f, k.Agents.Port)
		}
		if k.LeaderElection.Disabled || !slices.Contains(leaseNames, k.LeaderElection.LeaseName) {
			t.Errorf("%s: leader election must be on, with a Lease the Role grants (%v), got %+v", f, leaseNames, k.LeaderElection)
		}
		if !slices.Contains(configMapNames, k.SchedulesConfigMap) {
			t.Errorf("%s: schedulesConfigMap %q is not a ConfigMap the Role grants (%v)", f, k.SchedulesConfigMap, configMapNames)
		}
		if k.Services.Namespace == "" {
			t.Errorf("%s: kubernetes.services.namespace: name PetClinic's namespace", f)
		}
		if k.Kubeconfig != "" || k.Context != "" {
			t.Errorf("%s: in-cluster chaosd uses its ServiceAccount, not a kubeconfig", f)
		}
	}
}

// TestNoPlaceholderAgents: no file keeps the .invalid placeholder agents
// of the time before discovery.
func TestNoPlaceholderAgents(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		if bytes.Contains(read(t, p), []byte(".invalid")) {
			t.Errorf("%s: still names a .invalid placeholder", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPrometheusRules(t *testing.T) {
	tr := load(t)
	alerts := map[string]string{}
	records := map[string]string{}
	for _, g := range tr.rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = r.Expr
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("alert %s: needs a severity label and a summary", r.Alert)
				}
			} else {
				records[r.Record] = r.Expr
			}
		}
	}
	for name, want := range map[string]string{
		"ChaosdFaultActiveTooLong": "chaosd_faults_active > 0",
		"ChaosdRunFailed":          `increase(chaosd_runs_total{verdict=~"fail|error"}[1h]) > 0`,
		"ChaosdScheduleSkipped":    "chaosd_schedule_skipped_total",
		"ChaosdRTOOverTarget":      "chaosd_last_measured_rto_seconds > 900",
	} {
		if !strings.Contains(alerts[name], want) {
			t.Errorf("alert %s: expr %q does not contain %q", name, alerts[name], want)
		}
	}
	for _, g := range tr.rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "ChaosdFaultActiveTooLong" && r.For != "30m" {
				t.Errorf("ChaosdFaultActiveTooLong: for %q, want 30m", r.For)
			}
		}
	}
	for name, want := range map[string][]string{
		"petclinic:gateway_success_ratio:rate5m":                 {"http_server_requests_seconds_count", `job="api-gateway"`, `outcome="SUCCESS"`},
		"petclinic:gateway_visits_client_success_ratio:rate5m":   {"http_client_requests_seconds_count", `client_name="visits-service"`, `outcome="SUCCESS"`},
		"petclinic:visits_customers_client_success_ratio:rate5m": {"http_client_requests_seconds_count", `client_name="customers-service"`},
		"petclinic:getownerdetails_breaker_state:max":            {"resilience4j_circuitbreaker_state", `name="getOwnerDetails"`, "by (state)"},
	} {
		for _, w := range want {
			if !strings.Contains(records[name], w) {
				t.Errorf("recording rule %s: expr %q does not contain %q", name, records[name], w)
			}
		}
	}
}

// promtool is Debian's (package prometheus), installed by hack/deps.sh.
func TestPrometheusRulesPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/promtool"); serr != nil {
			t.Skip("promtool not installed (Debian package prometheus): rules checked by TestPrometheusRules only")
		}
		bin = "/usr/bin/promtool"
	}
	for _, args := range [][]string{{"check", "rules", "chaosd-rules.yaml"}, {"test", "rules", "chaosd-rules.test.yaml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos *struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

type annotation struct {
	Name       string `json:"name"`
	Expr       string `json:"expr"`
	Enable     bool   `json:"enable"`
	Datasource struct {
		Type string `json:"type"`
	} `json:"datasource"`
}

var metricRe = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

func TestGrafanaDashboard(t *testing.T) {
	tr := load(t)
	var d dashboard
	if err := json.Unmarshal(read(t, "grafana/chaosd-dashboard.json"), &d); err != nil {
		t.Fatalf("grafana/chaosd-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard: needs uid, title and panels")
	}
	// Metric names a panel may use: chaosd's, and the recording rules.
	known := map[string]bool{"chaosd_runs_total": true, "chaosd_runs_active": true, "chaosd_faults_active": true,
		"chaosd_last_measured_rto_seconds": true, "chaosd_schedule_skipped_total": true}
	for _, g := range tr.rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
		}
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range d.Panels {
		if p.ID == 0 || ids[p.ID] || p.Type == "" || p.Title == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: needs a unique id, type, title, gridPos and targets", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" {
				t.Errorf("panel %q: target without refId or expr", p.Title)
			}
			exprs = append(exprs, tg.Expr)
			for _, name := range metricRe.FindAllString(tg.Expr, -1) {
				if (strings.HasPrefix(name, "chaosd_") || strings.HasPrefix(name, "petclinic:")) && !known[name] {
					t.Errorf("panel %q: unknown metric %s (not chaosd's, not a recording rule)", p.Title, name)
				}
			}
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"chaosd_runs_total", "chaosd_faults_active", "chaosd_last_measured_rto_seconds", "900",
		"petclinic:gateway_success_ratio", "petclinic:gateway_visits_client_success_ratio", "petclinic:getownerdetails_breaker_state"} {
		if !strings.Contains(all, want) {
			t.Errorf("dashboard: no panel queries %s", want)
		}
	}
	if !slices.ContainsFunc(d.Annotations.List, func(a annotation) bool {
		return a.Enable && a.Datasource.Type == "prometheus" && strings.Contains(a.Expr, "chaosd_faults_active > 0")
	}) {
		t.Error("dashboard: want an enabled Prometheus annotation from chaosd_faults_active > 0 (fault windows)")
	}
}

// ---------------------------------------------------------------------------
// Helpers.

// flags parses "SUBCOMMAND --flag value ..." container args.
func flags(t *testing.T, who string, args []string, sub string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != sub {
		t.Fatalf("%s: args %v must start with %q", who, args, sub)
	}
	m := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("%s: unexpected argument %q", who, a)
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
			continue
		}
		if i+1 >= len(args) {
			t.Fatalf("%s: flag %s without a value", who, a)
		}
		m[a] = args[i+1]
		i++
	}
	return m
}

// mountFor returns the mount whose path holds file (the longest match).
func mountFor(mounts []corev1.VolumeMount, file string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range mounts {
		m := &mounts[i]
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	return best
}

// checkProbes: readiness and liveness probes exist and use tcpSocket or
// exec on the API port. chaosd and the agent require the bearer token on
// every HTTP endpoint, /healthz included, so an httpGet probe would either
// fail (401) or carry the token in the pod spec.
func checkProbes(t *testing.T, who string, c corev1.Container, port int) {
	t.Helper()
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("%s: no %s probe", who, name)
		case p.HTTPGet != nil:
			t.Errorf("%s: %s probe uses httpGet, but every endpoint needs the bearer token", who, name)
		case p.TCPSocket != nil:
			if !portMatches(c, p.TCPSocket.Port.String(), port) {
				t.Errorf("%s: %s probe port %s is not the API port %d", who, name, p.TCPSocket.Port.String(), port)
			}
		case p.Exec == nil:
			t.Errorf("%s: %s probe must be tcpSocket or exec", who, name)
		}
	}
}

// portMatches says whether a port given by number or name is the
// container port number want.
func portMatches(c corev1.Container, p string, want int) bool {
	if n, err := strconv.Atoi(p); err == nil {
		return n == want
	}
	for _, cp := range c.Ports {
		if cp.Name == p {
			return int(cp.ContainerPort) == want
		}
	}
	return false
}

func checkResources(t *testing.T, who string, c corev1.Container) {
	t.Helper()
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("%s: needs cpu and memory requests and a memory limit", who)
	}
}

func splitPort(hostport string) (string, int, error) {
	i := strings.LastIndex(hostport, ":")
	if i < 0 {
		return "", 0, errors.New("no port")
	}
	n, err := strconv.Atoi(hostport[i+1:])
	return hostport[:i], n, err
}
