package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/chaosd/chaosd/experiments/crd"
	"github.com/chaosd/chaosd/internal/kubeapi"
)

// The lab's Kubernetes mode: an API server standing for cluster C1's.
const (
	// KubeCluster is the cluster the lab's API server stands for: chaosd
	// runs in Kubernetes mode for it, so only C1's nodes and pods are
	// registered (C2 would have an API server of its own).
	KubeCluster = "c1"
	// ChaosdNamespace holds the agents' pods, the Experiment and
	// ExperimentRun objects and the leader Lease.
	ChaosdNamespace = "chaosd"
	// AgentPortName is the agent container's port name (the DaemonSet's).
	AgentPortName = "agent"
	// ActuatorPortName is the services' container port name.
	ActuatorPortName = "http"
	// ServiceLabel carries a pod's service name, as the PetClinic charts
	// label their pods.
	ServiceLabel = "app.kubernetes.io/name"
	// ClusterLabel is the lab's node label naming the node's cluster.
	ClusterLabel = "chaosd.io/cluster"
)

// agentPodName is the name of the agent DaemonSet's pod on a node.
func agentPodName(node string) string { return "chaosd-agent-" + node }

// kubeNodes are the Node objects of the lab's Kubernetes mode: C1's nodes,
// labelled like a cloud provider labels them (zone, region, hostname) and
// with the cluster's name, Ready, at their VPC address.
func kubeNodes() []*corev1.Node {
	var out []*corev1.Node
	for _, n := range Nodes {
		if n.Cluster != KubeCluster {
			continue
		}
		out = append(out, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
				"kubernetes.io/hostname":        n.Name,
				"kubernetes.io/os":              "linux",
				"topology.kubernetes.io/zone":   n.Zone,
				"topology.kubernetes.io/region": strings.TrimRight(n.Zone, "abcdef"),
				"zone":                          n.Zone, // what the standalone config's agents carry
				ClusterLabel:                    n.Cluster,
			}},
			Status: corev1.NodeStatus{
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: n.MgmtIP.String()},
					{Type: corev1.NodeHostName, Address: n.Name},
				},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
					Message: "chaosd lab node", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
			},
		})
	}
	return out
}

// kubePods are the Pod objects of the lab's Kubernetes mode, with the
// status a kubelet would write: one agent per C1 node (hostNetwork, so its
// pod IP is the node's mgmt address chaosd reaches it at) and one pod per
// C1 PetClinic service, at the service's VPC address with the actuator's
// port named http and the lab's memory limit.
func kubePods() []*corev1.Pod {
	var out []*corev1.Pod
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for _, n := range Nodes {
		if n.Cluster != KubeCluster {
			continue
		}
		ip := n.MgmtIP.String()
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ChaosdNamespace, Name: agentPodName(n.Name),
				Labels: map[string]string{ServiceLabel: "chaosd-agent", "app.kubernetes.io/component": "agent"}},
			Spec: corev1.PodSpec{NodeName: n.Name, HostNetwork: true, Containers: []corev1.Container{{
				Name: "agent", Image: "chaosd-lab/chaosd", Ports: []corev1.ContainerPort{{Name: AgentPortName, ContainerPort: AgentTCPPort}},
			}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: ip, PodIP: ip, Conditions: ready},
		})
	}
	limit := resource.NewQuantity(DefaultServiceMemoryLimit, resource.BinarySI)
	for _, s := range services {
		n := serviceNode(s)
		if n.Cluster != KubeCluster {
			continue
		}
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: PodNamespace, Name: podName(s.name), Labels: map[string]string{ServiceLabel: s.name}},
			Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{
				Name: s.name, Image: "chaosd-lab/petclinic",
				Ports:     []corev1.ContainerPort{{Name: ActuatorPortName, ContainerPort: int32(s.port)}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: *limit}},
			}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, HostIP: n.MgmtIP.String(), PodIP: n.IP.String(), Conditions: ready},
		})
	}
	return out
}

// podRef is what kubelet names a pod's cgroup after.
type podRef struct{ UID, QOS string }

// startKube starts etcd and kube-apiserver in the mgmt namespace (where
// chaosd reaches them on loopback), records them in the state so Down
// stops them, writes the kubeconfig chaosd uses and registers the lab in
// the API server.
func (l *Lab) startKube(ctx context.Context) error {
	began := time.Now()
	mgmt := l.Namespaces[RoleMgmt]
	srv, err := kubeapi.Start(ctx, kubeapi.Options{
		BinDir:      l.cfg.KubeBinDir,
		Dir:         l.path("kube"),
		Wrap:        []string{"nsenter", "--net=/run/netns/" + mgmt, "--"},
		DialContext: DialerIn(mgmt),
		Detach:      true,
		OnStart: func(p kubeapi.Process) error {
			l.mu.Lock()
			l.state.Procs = append(l.state.Procs, Proc{Name: p.Name, Netns: mgmt, Argv: p.Argv, PID: p.PID, Log: p.Log})
			l.mu.Unlock()
			l.log.Info("started process", zap.String("proc", p.Name), zap.String("netns", mgmt), zap.Int("pid", p.PID))
			return l.saveState()
		},
		Logf: func(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return fmt.Errorf("start the lab's API server: %w", err)
	}
	l.KubeAPIURL = srv.URL()
	l.mu.Lock()
	l.state.KubeAPIURL = srv.URL()
	l.mu.Unlock()
	if err := l.saveState(); err != nil {
		return err
	}
	if err := writeKubeconfig(l.Kubeconfig, srv.Config()); err != nil {
		return err
	}
	l.log.Info("kube-apiserver ready", zap.String("url", srv.URL()), zap.Duration("took", srv.StartupTime()))
	if err := l.registerKube(ctx, srv); err != nil {
		return fmt.Errorf("register the lab in the API server: %w", err)
	}
	l.log.Info("lab registered in the API server", zap.Duration("took", time.Since(began)))
	return nil
}

// writeKubeconfig writes the admin's kubeconfig (the lab's chaosd and
// tools use the admin token; the server is on the mgmt namespace's
// loopback).
func writeKubeconfig(path string, c *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["chaosd-lab"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.BearerToken}
	kc.Contexts["chaosd-lab"] = &clientcmdapi.Context{Cluster: "chaosd-lab", AuthInfo: "admin"}
	kc.CurrentContext = "chaosd-lab"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return os.Chmod(path, 0o600)
}

// registerKube makes what a cluster would have: the namespaces with
// their default ServiceAccount (no controller manager runs), chaosd's
// CRDs, C1's Nodes and Pods with a kubelet's status, and the experiments
// and suites of ExperimentsDir as Experiment and Suite objects.
func (l *Lab) registerKube(ctx context.Context, srv *kubeapi.Server) error {
	c := srv.Client()
	for _, ns := range []string{ChaosdNamespace, PodNamespace} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
		if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service account %s/default: %w", ns, err)
		}
	}
	crds, err := crd.CRDs()
	if err != nil {
		return err
	}
	if err := srv.InstallCRDs(ctx, crds...); err != nil {
		return err
	}
	for _, n := range kubeNodes() {
		if err := createNode(ctx, c, n); err != nil {
			return err
		}
	}
	l.pods = map[string]podRef{}
	for _, p := range kubePods() {
		got, err := createPod(ctx, c, p)
		if err != nil {
			return err
		}
		if p.Namespace == PodNamespace {
			l.pods[p.Labels[ServiceLabel]] = podRef{UID: string(got.UID), QOS: string(got.Status.QOSClass)}
		}
	}
	if l.ExperimentsDir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(l.ExperimentsDir, "*.yaml"))
	if err != nil {
		return err
	}
	slices.Sort(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read experiment: %w", err)
		}
		objs, err := kubeapi.Objects(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, o := range objs {
			if o.GetKind() != crd.ExperimentKind && o.GetKind() != crd.SuiteKind {
				continue
			}
			o.SetNamespace(ChaosdNamespace)
			if _, err := srv.Create(ctx, o, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create %s %s from %s: %w", o.GetKind(), o.GetName(), f, err)
			}
		}
	}
	return nil
}

// createNode creates a Node and writes its status (no kubelet does).
func createNode(ctx context.Context, c kubernetes.Interface, want *corev1.Node) error {
	n, err := c.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", want.Name, err)
	}
	n.Status = want.Status
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("write the status of node %s: %w", want.Name, err)
	}
	return nil
}

// createPod creates a Pod and writes the status a kubelet would (the QoS
// class stays what the API server computed: it is immutable).
func createPod(ctx context.Context, c kubernetes.Interface, want *corev1.Pod) (*corev1.Pod, error) {
	p, err := c.CoreV1().Pods(want.Namespace).Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", want.Namespace, want.Name, err)
	}
	qos := p.Status.QOSClass
	p.Status = *want.Status.DeepCopy()
	p.Status.QOSClass = qos
	now := metav1.Now()
	p.Status.StartTime = &now
	for i := range p.Status.Conditions {
		p.Status.Conditions[i].LastTransitionTime = now
	}
	for _, ct := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, Ready: true, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	p, err = c.CoreV1().Pods(want.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("write the status of pod %s/%s: %w", want.Namespace, want.Name, err)
	}
	return p, nil
}

func ptrTo[T any](v T) *T { return &v }

// KubeConfig returns the admin's client configuration of the lab's API
// server for use from the host: its connections are opened inside the
// mgmt namespace, where the server listens on loopback.
func (l *Lab) KubeConfig() (*rest.Config, error) {
	if _, err := os.Stat(l.Kubeconfig); err != nil {
		return nil, fmt.Errorf("lab %s runs no API server (up --kube): %w", l.Name, err)
	}
	c, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read the lab's kubeconfig: %w", err)
	}
	c.Dial = DialerIn(l.Namespaces[RoleMgmt])
	return c, nil
}

// kubePreflight checks the Kubernetes binaries before anything is made.
func (l *Lab) kubePreflight() error {
	if l.cfg.KubeBinDir == "" {
		dir, err := kubeapi.BinDir()
		if err != nil {
			return fmt.Errorf("kubernetes mode: %w", err)
		}
		l.cfg.KubeBinDir = dir
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		p := filepath.Join(l.cfg.KubeBinDir, b)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("kubernetes mode: %s is missing or not executable (hack/k8s-bins.sh builds it): %w", p, kubeapi.ErrNoBinaries)
		}
	}
	return nil
}
