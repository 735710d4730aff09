package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments/crd"
	"github.com/chaosd/chaosd/internal/kubetest"
	"github.com/chaosd/chaosd/probes/promtest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// kubeWorld is a real API server with chaosd's CRDs and RBAC, two nodes
// with fake agents (registered as the agent DaemonSet's pods, with the
// fakes' real addresses), and a kubeconfig for chaosd's ServiceAccount.
type kubeWorld struct {
	srv        *kubetest.Server
	admin      kubernetes.Interface
	kubeconfig string
	nodes      []*fakeNode
	ns         string // chaosd's namespace
}

func newKubeWorld(t *testing.T, ctx context.Context, ns string, healthy prometheus.Gauge) *kubeWorld {
	t.Helper()
	srv := kubetest.Shared(t)
	w := &kubeWorld{srv: srv, admin: srv.Client(), ns: ns}
	crds, err := crd.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.InstallCRDs(ctx, crds...); err != nil {
		t.Fatal(err)
	}
	// chaosd's own RBAC, bound to a ServiceAccount in this test's namespace.
	data, err := os.ReadFile("../manifests/base/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubetest.Objects(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller manager runs: make the default ServiceAccount pods need.
	if _, err := w.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding":
			o.SetNamespace(ns)
		case "ClusterRole":
			o.SetName(o.GetName() + "-" + ns)
		case "ClusterRoleBinding":
			o.SetName(o.GetName() + "-" + ns)
			ref, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			_ = unstructured.SetNestedField(o.Object, ref+"-"+ns, "roleRef", "name")
		}
		if subs, ok, _ := unstructured.NestedSlice(o.Object, "subjects"); ok {
			for _, s := range subs {
				s.(map[string]any)["namespace"] = ns
			}
			_ = unstructured.SetNestedSlice(o.Object, subs, "subjects")
		}
		if _, err := srv.Apply(ctx, o, metav1.ApplyOptions{Force: true}); err != nil {
			t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	sa, err := srv.ServiceAccountConfig(ctx, ns, "chaosd")
	if err != nil {
		t.Fatal(err)
	}
	w.kubeconfig = writeKubeconfig(t, sa)

	// Two nodes, each with a fake agent on loopback registered as the
	// agent DaemonSet's pod (hostNetwork: host IP 127.0.0.1, port "api").
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("%s-n%d", ns, i)
		n := startFakeNodeOn(t, "", name, "agent-secret", healthy)
		w.nodes = append(w.nodes, n)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"chaosd.io/test": ns}}}
		if _, err := w.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		w.runningPod(t, ctx, ns, "agent-"+name, name, map[string]string{"app.kubernetes.io/name": "chaosd-agent"},
			corev1.ContainerPort{Name: DefaultAgentPort, ContainerPort: int32(n.port)}, "127.0.0.1")
	}
	return w
}

// runningPod creates a pod and writes its status (no kubelet runs):
// Running, Ready, with the IP given.
func (w *kubeWorld) runningPod(t *testing.T, ctx context.Context, ns, name, node string, labels map[string]string, port corev1.ContainerPort, ip string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "chaosd/none", Ports: []corev1.ContainerPort{port}}}},
	}
	p, err := w.admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: ip, PodIP: ip, QOSClass: corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	p, err = w.admin.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeKubeconfig(t *testing.T, c *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData, InsecureSkipTLSVerify: c.Insecure}
	kc.AuthInfos["chaosd"] = &clientcmdapi.AuthInfo{Token: c.BearerToken}
	kc.Contexts["chaosd"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "chaosd"}
	kc.CurrentContext = "chaosd"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubeConfig is chaosd's configuration for the world's namespace.
func (w *kubeWorld) kubeConfig(t *testing.T, dir, promURL string) *Config {
	t.Helper()
	for f, v := range map[string]string{"token": "secret-token", "agent-token": "agent-secret"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{TokenFile: filepath.Join(dir, "token"), DataDir: filepath.Join(dir, "data"),
		AgentTokenFile: filepath.Join(dir, "agent-token"), Lease: "3s",
		// The fake agents serve plain HTTP on loopback.
		AgentTLS: &AgentTLS{InsecurePlaintext: true}}
	cfg.Listen.Socket = filepath.Join(dir, "chaosd.sock")
	cfg.Prometheus.URL = promURL
	cfg.Kubernetes = &Kubernetes{Kubeconfig: w.kubeconfig, Context: "chaosd", Cluster: "c1", Namespace: w.ns,
		Agents: KubeAgents{Scheme: "http"}, Services: KubeServices{Namespace: w.ns}}
	cfg.Kubernetes.LeaderElection = KubeLeaderElection{LeaseDuration: "4s", RenewDeadline: "3s", RetryPeriod: "500ms"}
	cfg.Kubernetes.SetDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// experimentObject is testExperiment as an Experiment object.
func experimentObject(t *testing.T, ns, name, duration, extra string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(testExperiment, name, duration, extra)), &m); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetNamespace(ns)
	return u
}

func (w *kubeWorld) createExperiment(t *testing.T, ctx context.Context, u *unstructured.Unstructured) {
	t.Helper()
	dyn, err := w.srv.Dynamic(w.srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(Experiments).Namespace(w.ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Experiment %s: %v", u.GetName(), err)
	}
}

// condition returns an Experiment's Valid condition once chaosd wrote it.
func (w *kubeWorld) condition(t *testing.T, ctx context.Context, name string) map[string]any {
	t.Helper()
	dyn, _ := w.srv.Dynamic(w.srv.Config())
	deadline := time.Now().Add(20 * time.Second)
	for {
		u, err := dyn.Resource(Experiments).Namespace(w.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		if len(conds) > 0 {
			return conds[0].(map[string]any)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Experiment %s has no condition after 20s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// events returns the messages of the Events about an object.
func (w *kubeWorld) events(t *testing.T, ctx context.Context, ns, kind, name string) []string {
	t.Helper()
	l, err := w.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func TestIntegrationKubeModeDiscoversRunsAndRecords(t *testing.T) {
	ctx := context.Background()
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	w := newKubeWorld(t, ctx, "kube-run", healthy)
	dir := t.TempDir()
	cfg := w.kubeConfig(t, dir, prom)

	// An object the schema lets through but chaosd's validation refuses
	// never runs; its condition and Event name the field.
	bad := experimentObject(t, w.ns, "bad-cidr", "4s", "")
	faults, _, _ := unstructured.NestedSlice(bad.Object, "spec", "faults")
	faults[0].(map[string]any)["partition"] = map[string]any{"cidrs": []any{"10.1.0.5/16"}}
	_ = unstructured.SetNestedSlice(bad.Object, faults, "spec", "faults")
	w.createExperiment(t, ctx, bad)
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "cut", "4s", ""))

	d, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("chaosd Run: %v", err)
		}
	})
	c, err := client.NewClient("unix://"+cfg.Listen.Socket, "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "chaosd answers", func() bool { return c.Health(ctx) == nil })

	wantMsg := `spec.faults[0].partition.cidrs[0]: "10.1.0.5/16" has host bits set; did you mean 10.1.0.0/16?`
	if cond := w.condition(t, ctx, "bad-cidr"); cond["status"] != "False" || !strings.Contains(fmt.Sprint(cond["message"]), wantMsg) {
		t.Errorf("invalid experiment's condition %v", cond)
	}
	waitFor(t, 10*time.Second, "an Event names the invalid field", func() bool {
		ev := strings.Join(w.events(t, ctx, w.ns, "Experiment", "bad-cidr"), "\n")
		return strings.Contains(ev, "InvalidExperiment") && strings.Contains(ev, wantMsg)
	})
	if cond := w.condition(t, ctx, "cut"); cond["status"] != "True" {
		t.Errorf("valid experiment's condition %v", cond)
	}

	// Agents come from the DaemonSet's pods, no hand-written list.
	agents, err := c.Agents(ctx)
	if err != nil || len(agents) != 2 || !agents[0].Reachable || !agents[1].Reachable {
		t.Fatalf("agents %+v (%v)", agents, err)
	}
	if _, err := c.StartRun(ctx, api.StartRequest{Experiment: "bad-cidr"}); err == nil {
		t.Errorf("an invalid experiment started")
	}

	var run api.Run
	waitFor(t, 30*time.Second, "the leader accepts the run", func() bool {
		run, err = c.StartRun(ctx, api.StartRequest{Experiment: "cut"})
		return err == nil
	})
	waitFor(t, 60*time.Second, "the run ends", func() bool {
		r, err := c.Run(ctx, run.ID)
		run = r
		return err == nil && r.Phase == api.PhaseDone
	})
	if run.Verdict != api.VerdictPass || len(run.Faults) != 2 {
		t.Fatalf("verdict %s (%s), %d faults", run.Verdict, run.Reason, len(run.Faults))
	}
	for _, n := range w.nodes {
		if n.activeCount() != 0 {
			t.Errorf("fault left on %s", n.name)
		}
	}
	// From a new Experiment object to its run: the watch hands it to the
	// catalog (Ready condition), and the leader runs it.
	created := time.Now()
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "cut-new", "1s", ""))
	var second api.Run
	waitFor(t, 30*time.Second, "the new experiment runs", func() bool {
		second, err = c.StartRun(ctx, api.StartRequest{Experiment: "cut-new", DryRun: true})
		return err == nil
	})
	t.Logf("Experiment object created → run %s accepted after %s", second.ID, time.Since(created).Round(time.Millisecond))

	// A service target resolves to the service's Ready pods; faults name
	// the pod, and Events land on the pod too.
	podObj := w.runningPod(t, ctx, w.ns, "customers-service-0", w.nodes[0].name,
		map[string]string{"app.kubernetes.io/name": "customers-service"}, corev1.ContainerPort{Name: "http", ContainerPort: 8081}, "10.0.2.10")
	svc := experimentObject(t, w.ns, "fill-customers", "2s", "")
	_ = unstructured.SetNestedSlice(svc.Object, []any{map[string]any{"name": "customers", "cluster": "c1", "service": "customers-service"}}, "spec", "targets")
	_ = unstructured.SetNestedSlice(svc.Object, []any{map[string]any{"name": "fill", "kind": "memory", "target": "customers",
		"memory": map[string]any{"fraction": 0.5}}}, "spec", "faults")
	w.createExperiment(t, ctx, svc)
	var svcRun api.Run
	waitFor(t, 30*time.Second, "the service experiment runs", func() bool {
		svcRun, err = c.StartRun(ctx, api.StartRequest{Experiment: "fill-customers"})
		return err == nil
	})
	waitFor(t, 60*time.Second, "the service run ends", func() bool {
		r, err := c.Run(ctx, svcRun.ID)
		svcRun = r
		return err == nil && r.Phase == api.PhaseDone
	})
	if len(svcRun.Faults) != 1 || svcRun.Faults[0].Instance != "customers-service/customers-service-0" || svcRun.Verdict != api.VerdictPass {
		t.Fatalf("service run: verdict %s (%s) faults %+v", svcRun.Verdict, svcRun.Reason, svcRun.Faults)
	}
	if f := w.nodes[0].lastFault(); f.Pod == nil || f.Pod.UID != string(podObj.UID) || f.Pod.Name != podObj.Name || f.Memory == nil {
		t.Errorf("the agent was not asked to scope the fault to the pod: %+v", f)
	}
	waitFor(t, 10*time.Second, "events on the pod", func() bool {
		ev := strings.Join(w.events(t, ctx, w.ns, "Pod", podObj.Name), "\n")
		return strings.Contains(ev, "FaultInjected") && strings.Contains(ev, "FaultReverted")
	})

	// The record is an ExperimentRun object.
	ks := store.NewKubeStore(mustDynamic(t, w.srv), w.ns)
	rec, err := ks.Get(run.ID)
	if err != nil || rec.Verdict != api.VerdictPass || rec.Phase != api.PhaseDone || len(rec.Faults) != 2 {
		t.Fatalf("ExperimentRun %s: %+v (%v)", run.ID, rec, err)
	}
	// An ad hoc experiment runs in Kubernetes mode too, and its
	// ExperimentRun's status keeps the spec as sent (the CRD's schema
	// has the field, so the API server does not prune it).
	spec := "# ad hoc\n" + fmt.Sprintf(testExperiment, "adhoc-cut", "1s", "")
	var adhoc api.Run
	waitFor(t, 30*time.Second, "the ad hoc run is accepted", func() bool {
		adhoc, err = c.StartRun(ctx, api.StartRequest{Spec: spec, File: "adhoc-cut.yaml"})
		return err == nil
	})
	waitFor(t, 60*time.Second, "the ad hoc run ends", func() bool {
		r, err := c.Run(ctx, adhoc.ID)
		adhoc = r
		return err == nil && r.Phase == api.PhaseDone
	})
	if adhoc.Verdict != api.VerdictPass {
		t.Errorf("ad hoc run: verdict %s (%s)", adhoc.Verdict, adhoc.Reason)
	}
	if rec, err := ks.Get(adhoc.ID); err != nil || rec.AdHoc == nil || rec.AdHoc.Spec != spec || rec.AdHoc.File != "adhoc-cut.yaml" {
		t.Errorf("ExperimentRun %s does not keep the ad hoc spec: %+v (%v)", adhoc.ID, rec.AdHoc, err)
	}

	// Events on the run and on each node it touched.
	waitFor(t, 10*time.Second, "events recorded", func() bool {
		runEv := strings.Join(w.events(t, ctx, w.ns, "ExperimentRun", run.ID), "\n")
		nodeEv := strings.Join(w.events(t, ctx, "default", "Node", w.nodes[0].name), "\n")
		return strings.Contains(runEv, "Verdict: pass") && strings.Contains(runEv, "FaultReverted") &&
			strings.Contains(nodeEv, "FaultInjected") && strings.Contains(nodeEv, "verified")
	})
}

func mustDynamic(t *testing.T, s *kubetest.Server) dynamic.Interface {
	t.Helper()
	d, err := s.Dynamic(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
