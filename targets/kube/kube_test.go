package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/chaosd/chaosd/experiments"
)

func testConfig() Config {
	return Config{
		Cluster: "c1", AgentNamespace: "chaosd", AgentSelector: "app.kubernetes.io/name=chaosd-agent", AgentPort: "agent", AgentScheme: "http",
		ServiceNamespace: "petclinic", ServiceLabel: "app.kubernetes.io/name", ActuatorPort: "http", ActuatorScheme: "http", AgentToken: "t",
	}
}

func node(name, zone string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": zone}}}
}

func pod(ns, name, nodeName, app, ip string, ready bool, port corev1.ContainerPort) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{"app.kubernetes.io/name": app}, CreationTimestamp: metav1.Now()},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{port}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, HostIP: "192.0.2." + nodeName[len(nodeName)-1:],
			QOSClass:          corev1.PodQOSBurstable,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://abc" + name}}},
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func started(t *testing.T, cs kubernetes.Interface) *Inventory {
	t.Helper()
	inv, err := New(cs, testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); inv.Shutdown() })
	if err := inv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestResolve(t *testing.T) {
	api := corev1.ContainerPort{Name: "agent", ContainerPort: 7070}
	http := corev1.ContainerPort{Name: "http", ContainerPort: 8081}
	cs := fake.NewClientset(
		node("n1", "a"), node("n2", "b"), node("n3", "b"),
		pod("chaosd", "agent-1", "n1", "chaosd-agent", "192.0.2.1", true, api),
		pod("chaosd", "agent-2", "n2", "chaosd-agent", "192.0.2.2", true, api),
		pod("chaosd", "agent-3", "n3", "chaosd-agent", "192.0.2.3", false, api),
		pod("petclinic", "customers-0", "n2", "customers-service", "10.0.2.10", true, http),
		pod("petclinic", "customers-1", "n3", "customers-service", "10.0.3.10", true, http),
		pod("petclinic", "customers-2", "n3", "customers-service", "10.0.3.11", false, http),
		pod("other", "customers-x", "n1", "customers-service", "10.0.1.99", true, http),
	)
	inv := started(t, cs)
	all := experiments.BlastRadius{Kind: experiments.BlastAll}
	tests := []struct {
		name    string
		target  experiments.Target
		want    []string
		wantErr string
	}{
		{name: "all nodes", target: experiments.Target{Cluster: "c1", Mode: all}, want: []string{"n1", "n2", "n3"}},
		{name: "by node label", target: experiments.Target{Cluster: "c1", Selector: map[string]string{"topology.kubernetes.io/zone": "b"}, Mode: all}, want: []string{"n2", "n3"}},
		{name: "Ready pods of a service in its namespace", target: experiments.Target{Cluster: "c1", Service: "customers-service", Mode: all},
			want: []string{"n2/customers-0", "n3/customers-1"}},
		{name: "service pods on selected nodes", target: experiments.Target{Cluster: "c1", Service: "customers-service", Nodes: []string{"n2"}, Mode: all},
			want: []string{"n2/customers-0"}},
		{name: "one pod", target: experiments.Target{Cluster: "c1", Service: "customers-service", Mode: experiments.BlastRadius{Kind: experiments.BlastOne}}, want: []string{"*"}},
		{name: "other cluster", target: experiments.Target{Cluster: "c2"}, wantErr: `cluster "c2" is not this cluster (c1)`},
		{name: "unknown node", target: experiments.Target{Cluster: "c1", Nodes: []string{"n9"}}, wantErr: `node "n9" is not in cluster c1`},
		{name: "unknown service", target: experiments.Target{Cluster: "c1", Service: "vets-service"}, wantErr: `service "vets-service" has no pods labelled app.kubernetes.io/name=vets-service in namespace petclinic`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inv.Resolve(context.Background(), tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i, n := range got {
				if tt.want[i] != "*" && n.Key() != tt.want[i] {
					t.Errorf("node %d = %s, want %s", i, n.Key(), tt.want[i])
				}
			}
		})
	}
	got, _ := inv.Resolve(context.Background(), experiments.Target{Cluster: "c1", Service: "customers-service", Nodes: []string{"n2"}, Mode: all})
	in := got[0].Instance
	if in.URL != "http://10.0.2.10:8081" || in.IP != "10.0.2.10" || in.Pod.UID != "uid-customers-0" || in.Pod.QOSClass != "Burstable" ||
		in.Pod.Namespace != "petclinic" || len(in.Pod.ContainerIDs) != 1 || in.Pod.ContainerIDs[0] != "abccustomers-0" {
		t.Errorf("instance %+v pod %+v", in, in.Pod)
	}
	if p := got[0].Placement(); p.Pod == nil || p.Pod.UID != "uid-customers-0" || p.URL != in.URL {
		t.Errorf("placement %+v", p)
	}
}

func TestAgents(t *testing.T) {
	api := corev1.ContainerPort{Name: "agent", ContainerPort: 7070}
	cs := fake.NewClientset(node("n1", "a"), node("n2", "a"), node("n3", "a"),
		pod("chaosd", "agent-1", "n1", "chaosd-agent", "192.0.2.1", true, api),
		pod("chaosd", "agent-3", "n3", "chaosd-agent", "192.0.2.3", false, api),
		pod("chaosd", "not-an-agent", "n2", "something-else", "192.0.2.2", true, api),
	)
	inv := started(t, cs)
	if _, err := inv.Agent("c1", "n1"); err != nil {
		t.Errorf("agent on n1: %v", err)
	}
	if _, err := inv.Agent("c1", "n2"); err == nil || !strings.Contains(err.Error(), "no agent pod on node n2") {
		t.Errorf("agent on n2: %v", err)
	}
	if _, err := inv.Agent("c1", "n3"); err == nil || !strings.Contains(err.Error(), "not Ready") {
		t.Errorf("agent on n3: %v", err)
	}
	pods := inv.AgentPods()
	if len(pods) != 2 || pods[0].Node != "n1" || pods[0].Err != nil || pods[1].Node != "n3" || pods[1].Err == nil {
		t.Errorf("agent pods %+v", pods)
	}
}
