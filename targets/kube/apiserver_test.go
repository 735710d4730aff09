package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// TestIntegrationDiscoveryOnRealAPIServer registers nodes, agent pods and
// many service pods (status written through the status subresource, as no
// kubelet runs), then measures how long the inventory takes to discover
// them, resolves targets from it and watches a targeted pod vanish.
func TestIntegrationDiscoveryOnRealAPIServer(t *testing.T) {
	const nodes, podsPerNode = 10, 20
	srv := kubetest.Shared(t)
	ctx := context.Background()
	cs := srv.Client()
	for _, ns := range []string{"disc-chaosd", "disc-petclinic"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	agentPort := corev1.ContainerPort{Name: "agent", ContainerPort: 7070}
	httpPort := corev1.ContainerPort{Name: "http", ContainerPort: 8081}
	for i := range nodes {
		name := fmt.Sprintf("disc-n%d", i)
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{"topology.kubernetes.io/zone": fmt.Sprintf("z%d", i%2)}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		create(t, cs, pod("disc-chaosd", "agent-"+name, name, "chaosd-agent", fmt.Sprintf("192.0.2.%d", i+1), true, agentPort))
		for j := range podsPerNode {
			create(t, cs, pod("disc-petclinic", fmt.Sprintf("customers-%d-%d", i, j), name, "customers-service",
				fmt.Sprintf("10.0.%d.%d", i, j+10), true, httpPort))
		}
	}
	cfg := testConfig()
	cfg.AgentNamespace, cfg.ServiceNamespace = "disc-chaosd", "disc-petclinic"
	inv, err := New(cs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); inv.Shutdown() }()
	t0 := time.Now()
	if err := inv.Start(sctx); err != nil {
		t.Fatal(err)
	}
	synced := time.Since(t0)
	all := experiments.BlastRadius{Kind: experiments.BlastAll}
	t1 := time.Now()
	got, err := inv.Resolve(ctx, experiments.Target{Cluster: "c1", Service: "customers-service", Mode: all})
	resolved := time.Since(t1)
	if err != nil || len(got) != nodes*podsPerNode {
		t.Fatalf("resolved %d instances (%v), want %d", len(got), err, nodes*podsPerNode)
	}
	if agents := inv.AgentPods(); len(agents) < nodes {
		t.Fatalf("%d agents discovered, want %d", len(agents), nodes)
	}
	zone, err := inv.Resolve(ctx, experiments.Target{Cluster: "c1", Selector: map[string]string{"topology.kubernetes.io/zone": "z1"}, Mode: all})
	if err != nil || len(zone) < nodes/2 {
		t.Fatalf("zone z1: %d nodes (%v)", len(zone), err)
	}
	t.Logf("discovered %d nodes, %d agents and %d service pods in %s; resolving a service of %d pods took %s",
		nodes, nodes, nodes*podsPerNode, synced.Round(time.Millisecond), len(got), resolved.Round(time.Microsecond))

	// A targeted pod that is deleted or turns unready mid-run is reported.
	ch := inv.Watch(sctx, got[:2])
	p0, p1 := got[0].Instance.Pod, got[1].Instance.Pod
	if err := cs.CoreV1().Pods(p0.Namespace).Delete(ctx, p0.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	p, err := cs.CoreV1().Pods(p1.Namespace).Get(ctx, p1.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := cs.CoreV1().Pods(p1.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 2 {
		select {
		case c := <-ch:
			seen = append(seen, c.Key+": "+c.Message)
		case <-time.After(10 * time.Second):
			t.Fatalf("changes seen: %v, want 2", seen)
		}
	}
	joined := strings.Join(seen, "\n")
	if !strings.Contains(joined, p0.Name+" on node "+got[0].Name+" ") || !strings.Contains(joined, "is no longer Ready") {
		t.Errorf("changes %v", seen)
	}
	// The inventory follows: the deleted and the unready pod are no target.
	waitFor(t, func() bool {
		got2, err := inv.Resolve(ctx, experiments.Target{Cluster: "c1", Service: "customers-service", Mode: all})
		return err == nil && len(got2) == nodes*podsPerNode-2
	})
}

func create(t *testing.T, cs kubernetes.Interface, p *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	status := p.Status
	p.Status = corev1.PodStatus{}
	p.Spec.Containers[0].Image = "chaosd/none"
	created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status.QOSClass = created.Status.QOSClass // set by the server, immutable
	created.Status = status
	if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
