package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/internal/kubetest"
	"github.com/chaosd/chaosd/lab"
)

// TestIntegrationKubeMode runs the lab in Kubernetes mode: chaosd
// discovers C1's agents and services from Pods in a real kube-apiserver
// (running in the lab's mgmt namespace), reads experiments from
// Experiment objects and keeps runs as ExperimentRun objects.
// partition-c1-c2's verdict and RTO are judged as in standalone mode; a
// memory fault is applied in the pod cgroup the agent finds from the
// pod's UID and QoS class.
func TestIntegrationKubeMode(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("-short: skipping a lab run with a real kube-apiserver")
	}
	kubeBins, err := kubetest.BinDir()
	if err != nil {
		kubetest.SkipOrFail(t, err)
	}
	began := time.Now()
	l := startLabConfig(t, lab.Config{
		Name: "e2e-kube", Prefix: "cek8", BinDir: binDir, ExperimentsDir: repoPath(t, "experiments/library"),
		StartControlPlane: true, Kube: true, KubeBinDir: kubeBins, Logger: zaptest.NewLogger(t),
	})
	t.Logf("lab up in Kubernetes mode in %s (including the test's 8s settle)", time.Since(began).Round(time.Millisecond))

	cfg, err := l.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The lab registered C1 as a cluster would show it.
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes through the mgmt namespace: %v", err)
	}
	var nodeNames []string
	for _, n := range nodes.Items {
		nodeNames = append(nodeNames, n.Name)
		if n.Labels["topology.kubernetes.io/zone"] == "" || n.Labels[lab.ClusterLabel] != "c1" {
			t.Errorf("node %s labels %v", n.Name, n.Labels)
		}
	}
	slices.Sort(nodeNames)
	if strings.Join(nodeNames, ",") != "c1-n1,c1-n2" {
		t.Errorf("nodes %v, want C1's c1-n1,c1-n2", nodeNames)
	}

	// chaosd's agents are the agent pods it discovered.
	agents := getAgents(t, ctx, l)
	var agentNodes []string
	for _, a := range agents {
		agentNodes = append(agentNodes, a.Cluster+"/"+a.Node)
		if !a.Reachable || !a.Capabilities["partition"] {
			t.Errorf("agent %s/%s discovered from its pod but not usable: %+v", a.Cluster, a.Node, a)
		}
	}
	slices.Sort(agentNodes)
	if strings.Join(agentNodes, ",") != "c1/c1-n1,c1/c1-n2" {
		t.Fatalf("GET /v1/agents lists %v, want the C1 agents discovered from pods (c1/c1-n1, c1/c1-n2)", agentNodes)
	}
	pods, err := kc.CoreV1().Pods(lab.ChaosdNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=chaosd-agent"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("agent pods: %v (%d)", err, len(pods.Items))
	}

	var partition api.Run
	t.Run("partition-c1-c2", func(t *testing.T) { partition = kubePartition(t, ctx, l, dyn) })
	t.Run("c2-refused", func(t *testing.T) {
		// This chaosd runs for C1 only (C2 would have its own API server
		// and chaosd): an experiment on C2 ends in preflight.
		code, run, _ := runJSON(t, l, "exceptions-visits")
		if code != 3 || run.Verdict != api.VerdictError || run.Times.Injected != nil || !strings.Contains(run.Reason, "not this cluster") {
			t.Errorf("exceptions-visits (cluster c2) must end in preflight, exit 3, saying c2 is not this cluster; got exit %d verdict %s injected %v: %s",
				code, run.Verdict, run.Times.Injected, run.Reason)
		}
	})
	t.Run("memory-pressure-pod", func(t *testing.T) {
		settle(partition)
		kubeMemory(t, ctx, l, dyn)
	})
}

func kubePartition(t *testing.T, ctx context.Context, l *lab.Lab, dyn dynamic.Interface) api.Run {
	code, run, stderr := runJSON(t, l, "partition-c1-c2")
	t.Logf("chaosctl stderr:\n%s", stderr)
	if code != 0 || run.Verdict != api.VerdictPass {
		t.Fatalf("exit %d, verdict %s: %s", code, run.Verdict, run.Reason)
	}
	assertNoFaultLeft(t, l)
	var faultNodes []string
	for _, f := range run.Faults {
		faultNodes = append(faultNodes, f.Node)
		if f.RevertedAt == nil || !f.Verified {
			t.Errorf("fault %s on %s not verified reverted: %+v", f.Name, f.Node, f)
		}
	}
	slices.Sort(faultNodes)
	if strings.Join(faultNodes, ",") != "c1-n1,c1-n2" {
		t.Errorf("partition-c1-c2 targets both C1 nodes (from Node objects); faults on %v", faultNodes)
	}
	checkRTOAgainstTruth(t, l, run)

	// The record is an ExperimentRun object whose status is the record.
	obj, err := dyn.Resource(store.ExperimentRuns).Namespace(lab.ChaosdNamespace).Get(ctx, run.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ExperimentRun %s: %v", run.ID, err)
	}
	verdict, _, _ := unstructured.NestedString(obj.Object, "status", "verdict")
	exp, _, _ := unstructured.NestedString(obj.Object, "spec", "experiment")
	if verdict != string(api.VerdictPass) || exp != "partition-c1-c2" {
		t.Errorf("ExperimentRun %s: spec.experiment %q, status.verdict %q", run.ID, exp, verdict)
	}
	return run
}

// kubeMemory runs the library's memory-pressure-customers against the
// customers pod: the agent finds the pod's cgroup from its UID and QoS
// class (the lab runs the service in kubelet's cgroupfs layout) and fills
// it; the effects probe reads cAdvisor's pod-level series.
func kubeMemory(t *testing.T, ctx context.Context, l *lab.Lab, dyn dynamic.Interface) {
	const name = "memory-pressure-customers"
	res := dyn.Resource(daemon.Experiments).Namespace(lab.ChaosdNamespace)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		ready := false
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
				ready = true
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Experiment %s not Ready: %v", name, conds)
		}
		time.Sleep(200 * time.Millisecond)
	}

	code, run, stderr := runJSON(t, l, name)
	if code != 0 || run.Verdict != api.VerdictPass {
		t.Fatalf("exit %d verdict %s: %s\n%s", code, run.Verdict, run.Reason, stderr)
	}
	if phaseEvaluations(run, api.PhaseEffects) == 0 {
		t.Errorf("memory in use was never proven")
	}
	if len(run.Faults) != 1 || run.Faults[0].Node != "c1-n2" || run.Faults[0].RevertedAt == nil || !run.Faults[0].Verified {
		t.Errorf("want one fault on customers' node c1-n2, verified reverted: %+v", run.Faults)
	}
	if pids := stressors(t); len(pids) > 0 {
		t.Errorf("stressor processes left: %v", pids)
	}
	// The stressor ran in a leaf of the pod's cgroup, gone after revert.
	pod := filepath.Dir(l.ServiceCgroups["customers-service"])
	if !strings.Contains(pod, "/kubepods/") {
		t.Fatalf("customers-service runs in %q, not in a kubepods pod cgroup", pod)
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/memory"} {
		if leaves, _ := filepath.Glob(filepath.Join(root, pod, "chaosd-mem-*")); len(leaves) > 0 {
			t.Errorf("stressor cgroups left: %v", leaves)
		}
	}
}

// getAgents asks chaosd for GET /v1/agents over its unix socket.
func getAgents(t *testing.T, ctx context.Context, l *lab.Lab) []api.AgentInfo {
	t.Helper()
	tok, err := os.ReadFile(l.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", l.SocketPath)
		},
	}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://chaosd/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/agents: %v", err)
	}
	defer resp.Body.Close()
	var out []api.AgentInfo
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/agents: HTTP %d: %v", resp.StatusCode, err)
	}
	return out
}
