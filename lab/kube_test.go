package lab

import (
	"fmt"
	"slices"
	"testing"
)

func TestKubeObjects(t *testing.T) {
	var names []string
	for _, n := range kubeNodes() {
		names = append(names, n.Name)
		node, _ := NodeByName(n.Name)
		if n.Labels["topology.kubernetes.io/zone"] != node.Zone || n.Labels["zone"] != node.Zone || n.Labels[ClusterLabel] != "c1" {
			t.Errorf("node %s labels %v", n.Name, n.Labels)
		}
	}
	if !slices.Equal(names, []string{"c1-n1", "c1-n2"}) {
		t.Errorf("nodes %v: the API server stands for C1 and holds C1's nodes only", names)
	}
	type want struct{ ns, node, hostIP, podIP, port string }
	got := map[string]want{}
	for _, p := range kubePods() {
		c := p.Spec.Containers[0]
		if len(c.Ports) != 1 || p.Status.Phase != "Running" || len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Type != "Ready" {
			t.Errorf("pod %s: ports %v status %+v", p.Name, c.Ports, p.Status)
			continue
		}
		got[p.Labels[ServiceLabel]+"/"+p.Name] = want{p.Namespace, p.Spec.NodeName, p.Status.HostIP, p.Status.PodIP,
			fmt.Sprintf("%s=%d", c.Ports[0].Name, c.Ports[0].ContainerPort)}
	}
	exp := map[string]want{
		"chaosd-agent/chaosd-agent-c1-n1":       {"chaosd", "c1-n1", "10.254.0.11", "10.254.0.11", "agent=7070"},
		"chaosd-agent/chaosd-agent-c1-n2":       {"chaosd", "c1-n2", "10.254.0.12", "10.254.0.12", "agent=7070"},
		"customers-service/customers-service-0": {"petclinic", "c1-n2", "10.254.0.12", "10.0.2.10", "http=8081"},
		"api-gateway/api-gateway-0":             {"petclinic", "c1-n1", "10.254.0.11", "10.0.1.10", "http=8080"},
	}
	if len(got) != len(exp) {
		t.Errorf("pods %v, want %v", got, exp)
	}
	for k, w := range exp {
		if got[k] != w {
			t.Errorf("pod %s: %+v, want %+v", k, got[k], w)
		}
	}
}

func TestChaosdConfigKube(t *testing.T) {
	c, b := chaosdConfigOf(t, true)
	k := c.Kubernetes
	if k == nil || len(c.Clusters) != 0 {
		t.Fatalf("kubernetes mode: want kubernetes: and no clusters:, got %s", b)
	}
	if k.Kubeconfig != "/run/chaosd-lab/x/kubeconfig" || k.Cluster != "c1" || k.Namespace != "chaosd" || k.Agents.Namespace != "chaosd" ||
		k.Agents.Port != "agent" || k.Services.Namespace != "petclinic" || k.Services.ActuatorPort != "http" || k.LeaderElection.Disabled {
		t.Errorf("kubernetes section %+v", k)
	}
	if c.AgentTokenFile != "/run/chaosd-lab/x/agent-token" || c.Listen.TCP != "10.254.0.2:7080" {
		t.Errorf("config %+v", c)
	}
}
