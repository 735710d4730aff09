package latency

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
)

// TestVMPodScoped: a latency fault with Fault.Pod delays the pod's
// traffic in the pod's network namespace (found from a fake kubelet pod:
// cgroup layout + a process in its own namespace) and not the node's,
// whose identical interface and route stay untouched. After the pod's
// process is replaced (container restart) a revert from the recorded
// state still finds the namespace and restores it exactly; once the pod
// is deleted, a revert counts as done.
func TestVMPodScoped(t *testing.T) {
	requireVM(t)
	for _, driver := range []kubepod.CgroupDriver{kubepod.DriverCgroupfs, kubepod.DriverSystemd} {
		t.Run(string(driver), func(t *testing.T) { testPodScoped(t, driver) })
	}
}

func testPodScoped(t *testing.T, driver kubepod.CgroupDriver) {
	node := kubepodtest.NewNode(t, driver)
	pod := node.AddPod(kubepodtest.PodOptions{QOS: kubepod.BestEffort})
	// The same topology twice: the node's namespace and the pod's, each
	// with a0 toward its own far side holding the same addresses.
	nodeSide := newPair(t)
	podSide := newPairFrom(t, wrapNS(t, pod.NS))
	startServers(t, nodeSide.B)
	startServers(t, podSide.B)

	finder, err := kubepod.NewFinder(kubepod.Config{CgroupRoot: node.Root, NodeNetNS: nodeSide.A.Path})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewWithConfig(Config{NetNSPath: nodeSide.A.Path, Pods: finder}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	nodeRoot, podRoot := nodeSide.A.root(t, "a0"), podSide.A.root(t, "a0")

	f := latencyFault("pod.delay", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 100})
	f.Pod = &pod.API
	st := apply(t, d, f)
	s, err := DecodeState(st)
	if err != nil || s.NetNS == nil || len(s.Interfaces) != 1 || s.Interfaces[0].Name != "a0" {
		t.Fatalf("state %s: %v", st, err)
	}
	if want, _ := kubepod.FdNS(int(pod.NS)); *s.NetNS != want {
		t.Fatalf("state names namespace %s, the pod's is %s", s.NetNS, want)
	}
	if r := podSide.A.root(t, "a0"); r.Handle != RootHandle {
		t.Fatalf("pod's a0 root = %s, want the agent's htb", r)
	}
	if r := nodeSide.A.root(t, "a0"); r != nodeRoot {
		t.Fatalf("node's a0 root changed to %s by a pod-scoped fault", r)
	}
	expectSlow(t, podSide.A, target, delay)
	expectFast(t, nodeSide.A, target)
	expectFast(t, podSide.A, other)
	left, err := d.Remaining(context.Background(), f, st)
	if err != nil || !strings.Contains(left, "pod test/"+pod.API.Name) {
		t.Fatalf("Remaining while applied = %q, %v", left, err)
	}
	// The node's Prune does not take the pod fault's slot for its own.
	if removed, err := d.Prune(context.Background(), nil); err != nil || len(removed) != 0 {
		t.Fatalf("node Prune = %q, %v", removed, err)
	}

	pod.Restart()
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatalf("Revert after the pod's process changed: %v", err)
	}
	if r := podSide.A.root(t, "a0"); r != podRoot {
		t.Fatalf("pod's a0 root after Revert = %s, before %s", r, podRoot)
	}
	if left, err := d.Remaining(context.Background(), f, st); err != nil || left != "" {
		t.Fatalf("Remaining after Revert = %q, %v", left, err)
	}
	expectFast(t, podSide.A, target)

	f2 := latencyFault("pod.gone", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 100})
	f2.Pod = &pod.API
	st2 := apply(t, d, f2)
	pod.Delete()
	if err := d.Revert(context.Background(), f2, st2); err != nil {
		t.Fatalf("Revert after the pod was deleted: %v", err)
	}
	if left, err := d.Remaining(context.Background(), f2, st2); err != nil || left != "" {
		t.Fatalf("Remaining after the pod was deleted = %q, %v", left, err)
	}
	if _, err := d.Prepare(context.Background(), ptr(f2)); err == nil || !kubepod.IsGone(err) {
		t.Fatalf("Prepare for a deleted pod: %v", err)
	}
	if len(d.byNS) != 0 {
		t.Fatalf("pod namespaces still held open: %v", d.byNS)
	}
}
