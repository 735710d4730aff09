package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
	"github.com/chaosd/chaosd/agent/partition"
)

// podNet is a node forwarding for a pod, built with netlink only (so it
// runs on the host and in the QEMU guest alike):
//
//	pod (10.97.1.2) ──eth0 │ n-pod── node (10.97.1.1, 10.97.2.1, forwarding) ──n-peer │ eth0── peer (10.97.2.2)
//
// The pod's default route and the peer's route back to 10.97.1.0/24 go
// through the node. Every namespace is unnamed and lives while the test
// holds it.
type podNet struct {
	node, pod, peer testNS
	h               map[string]*netlink.Handle // by namespace name
}

const (
	podAddr   = "10.97.1.2"
	nodePodGW = "10.97.1.1"
	peerAddr  = "10.97.2.2"
	peerCIDR  = "10.97.2.0/24"
)

// unnamedNS creates a network namespace held by an fd of this process.
func unnamedNS(t testing.TB, name string) (testNS, netns.NsHandle) {
	t.Helper()
	ns := kubepodtest.NewNS(t)
	t.Cleanup(func() { ns.Close() })
	return testNS{name: name, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))}, ns
}

// newPodNet builds the topology; podNS is the pod's namespace (a fake
// kubelet pod's, or a fresh one when it is -1).
func newPodNet(t testing.TB, podNS netns.NsHandle) *podNet {
	t.Helper()
	pn := &podNet{h: map[string]*netlink.Handle{}}
	var nodeH, peerH netns.NsHandle
	pn.node, nodeH = unnamedNS(t, "node")
	pn.peer, peerH = unnamedNS(t, "peer")
	if podNS < 0 {
		pn.pod, podNS = unnamedNS(t, "pod")
	} else {
		pn.pod = testNS{name: "pod", path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(podNS))}
	}
	for name, ns := range map[string]netns.NsHandle{"node": nodeH, "pod": podNS, "peer": peerH} {
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatalf("netlink handle in %s: %v", name, err)
		}
		t.Cleanup(h.Close)
		pn.h[name] = h
		lo, _ := h.LinkByName("lo")
		h.LinkSetUp(lo)
	}
	pn.veth(t, "n-pod", podNS, nodePodGW+"/24", podAddr+"/24")
	pn.veth(t, "n-peer", peerH, "10.97.2.1/24", peerAddr+"/24")
	pn.route(t, "pod", "0.0.0.0/0", nodePodGW)
	pn.route(t, "peer", "10.97.1.0/24", "10.97.2.1")
	// Forwarding is per namespace: /proc/sys/net is the calling thread's.
	if err := inNS(pn.node, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
			return err
		}
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err == nil && strings.TrimSpace(string(b)) != "1" {
			err = fmt.Errorf("ip_forward reads %q", b)
		}
		return err
	}); err != nil {
		t.Fatalf("enable forwarding in the node namespace: %v", err)
	}
	return pn
}

// veth joins the node (nodeIf, nodeAddr) to another namespace (eth0).
func (pn *podNet) veth(t testing.TB, nodeIf string, other netns.NsHandle, nodeAddr, otherAddr string) {
	t.Helper()
	nh := pn.h["node"]
	la := netlink.NewLinkAttrs()
	la.Name, la.TxQLen = nodeIf, 1000
	if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerTxQLen: 1000, PeerNamespace: netlink.NsFd(other)}); err != nil {
		t.Fatalf("veth %s: %v", nodeIf, err)
	}
	oh, err := netlink.NewHandleAt(other, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	for _, c := range []struct {
		h    *netlink.Handle
		name string
		addr string
	}{{nh, nodeIf, nodeAddr}, {oh, "eth0", otherAddr}} {
		l, err := c.h.LinkByName(c.name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(c.addr)
		if err := c.h.AddrAdd(l, a); err != nil {
			t.Fatalf("address %s on %s: %v", c.addr, c.name, err)
		}
		if err := c.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func (pn *podNet) route(t testing.TB, ns, dst, gw string) {
	t.Helper()
	_, n, _ := net.ParseCIDR(dst)
	if err := pn.h[ns].RouteAdd(&netlink.Route{Dst: n, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("route %s via %s in %s: %v", dst, gw, ns, err)
	}
}

// reach is who can open a TCP connection to whom.
type podReach struct{ podToPeer, peerToPod, nodeToPeer, podToNode bool }

func (pn *podNet) measure() podReach {
	return podReach{
		podToPeer:  tcpReach(pn.pod, peerAddr+":8000") == nil,
		peerToPod:  tcpReach(pn.peer, podAddr+":8000") == nil,
		nodeToPeer: tcpReach(pn.node, peerAddr+":8000") == nil,
		podToNode:  tcpReach(pn.pod, nodePodGW+":8001") == nil,
	}
}

func (pn *podNet) servers(t testing.TB) {
	t.Helper()
	tcpServer(t, pn.peer, peerAddr+":8000")
	tcpServer(t, pn.pod, podAddr+":8000")
	tcpServer(t, pn.node, nodePodGW+":8001")
	// Let ARP settle before anything is timed.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if pn.measure() == (podReach{true, true, true, true}) {
			return
		}
	}
	t.Fatalf("topology not reachable before any fault: %+v", pn.measure())
}

// tagged lists the agent's kernel state in a namespace: nftables tables
// and qdiscs in the tagged handle range.
func (pn *podNet) tagged(t testing.TB, ns string) []string {
	t.Helper()
	var out []string
	for _, tb := range tablesIn(t, map[string]testNS{"node": pn.node, "pod": pn.pod, "peer": pn.peer}[ns]) {
		out = append(out, "table "+tb)
	}
	qs, err := pn.h[ns].QdiscList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if maj := q.Attrs().Handle >> 16; maj >= 0xCD00 && maj <= 0xCDFF {
			out = append(out, fmt.Sprintf("qdisc %s %x:", q.Type(), maj))
		}
	}
	return out
}

// startNodeAgent runs the agent as its own process (so it can be killed)
// for the node namespace of pn, finding pods on kn's cgroup layout.
func startNodeAgent(t *testing.T, pn *podNet, cgroupRoot string) *killableAgent {
	t.Helper()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Node: fmt.Sprintf("pod-node-%d", os.Getpid()), Socket: filepath.Join(dir, "a.sock"), TokenFile: tok,
		LedgerPath: filepath.Join(dir, "ledger.jsonl"), NetNSPath: pn.node.path, CgroupRoot: cgroupRoot,
		CgroupDriver: "auto", Version: "test"}
	c, _ := agentclient.NewClient("unix://"+cfg.Socket, testToken)
	k := &killableAgent{t: t, cfg: cfg, client: c}
	t.Cleanup(func() {
		if k.cmd != nil && k.cmd.ProcessState == nil {
			_ = k.cmd.Process.Kill() // by PID: the agent this test started
			_ = k.cmd.Wait()
		}
		if t.Failed() && k.stderr != nil {
			t.Logf("agent stderr:\n%s", k.stderr)
		}
	})
	return k
}

// testNodePartitionForwarded: a node-scoped partition (the TGW cut) on a
// node that forwards for a pod cuts the pod's traffic to and from the
// peer CIDR in both directions, as well as the node's own, and leaves
// the pod's traffic to the node alone; the pod's namespace gets nothing.
func testNodePartitionForwarded(t *testing.T) {
	requireRootOnly(t)
	pn := newPodNet(t, -1)
	pn.servers(t)
	h := startReal(t, pn.node.path)
	ctx := context.Background()
	for _, tc := range []struct {
		dir  string
		want podReach
	}{
		{"both", podReach{podToNode: true}},
		// A TCP connection needs both directions: either cut stops it.
		{"egress", podReach{podToNode: true}},
		{"ingress", podReach{podToNode: true}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			f := agentapi.Fault{ID: "fwd." + tc.dir, RunID: "fwd", Kind: agentapi.KindPartition,
				Partition: &agentapi.Partition{CIDRs: []string{peerCIDR}, Direction: tc.dir},
				Deadline:  time.Now().Add(time.Minute), LeaseSeconds: 60}
			if _, err := h.client.Inject(ctx, f); err != nil {
				t.Fatal(err)
			}
			if got := pn.tagged(t, "node"); !slices.Equal(got, []string{"table " + partition.TableName(f.ID)}) {
				t.Fatalf("node namespace holds %v", got)
			}
			if got := pn.tagged(t, "pod"); len(got) != 0 {
				t.Fatalf("pod namespace holds %v", got)
			}
			if got := pn.measure(); got != tc.want {
				t.Errorf("during a node partition of %s (%s):\n got %+v\nwant %+v", peerCIDR, tc.dir, got, tc.want)
			}
			if st, err := h.client.Revert(ctx, f.ID); err != nil || !st.Verified {
				t.Fatalf("revert: %+v %v", st, err)
			}
			if got := pn.measure(); got != (podReach{true, true, true, true}) {
				t.Fatalf("after revert: %+v", got)
			}
		})
	}
	// One-way UDP shows each direction is cut on its own, in forwarding.
	got := newUDPServer(t, pn.peer, peerAddr+":9000")
	back := newUDPServer(t, pn.pod, podAddr+":9000")
	for _, tc := range []struct {
		dir              string
		toPeer, fromPeer bool
	}{{"egress", false, true}, {"ingress", true, false}} {
		f := agentapi.Fault{ID: "fwd.udp." + tc.dir, RunID: "fwd", Kind: agentapi.KindPartition,
			Partition: &agentapi.Partition{CIDRs: []string{peerCIDR}, Direction: tc.dir},
			Deadline:  time.Now().Add(time.Minute), LeaseSeconds: 60}
		if _, err := h.client.Inject(ctx, f); err != nil {
			t.Fatal(err)
		}
		n1, n2 := got.got.Load(), back.got.Load()
		udpEcho(pn.pod, peerAddr+":9000")
		udpEcho(pn.peer, podAddr+":9000")
		time.Sleep(50 * time.Millisecond)
		toPeer, fromPeer := got.got.Load() > n1, back.got.Load() > n2
		if toPeer != tc.toPeer || fromPeer != tc.fromPeer {
			t.Errorf("%s: forwarded pod→peer arrived %v (want %v), peer→pod arrived %v (want %v)", tc.dir, toPeer, tc.toPeer, fromPeer, tc.fromPeer)
		}
		if _, err := h.client.Revert(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrivilegedNodePartitionCutsForwarded runs on the host's kernel.
func TestPrivilegedNodePartitionCutsForwarded(t *testing.T) { testNodePartitionForwarded(t) }

// TestVMNodePartitionCutsForwarded runs it on the stock kernel.
func TestVMNodePartitionCutsForwarded(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("the same test on the stock kernel under QEMU: run via hack/vmtest.sh (make test does)")
	}
	testNodePartitionForwarded(t)
}

// testPodFaults: faults with Fault.Pod set, through a real agent process
// on a fake node (kubelet cgroup layout for driver, a pod whose process
// runs in its own network namespace behind the node):
//   - partition and latency land in the pod's network namespace, memory
//     in the pod's cgroup, nothing in the node's;
//   - the agent is SIGKILLed with every fault active and the pod's
//     process is replaced (container restart): the restarted agent finds
//     the pod's namespace again and reverts them all, verified;
//   - the pod is deleted under a fault: the revert succeeds.
func testPodFaults(t *testing.T, version int, driver kubepod.CgroupDriver) {
	requireRootOnly(t)
	if h := kubepodtest.Hierarchy(t); h.Version != version {
		t.Skipf("needs cgroup v%d (this machine has v%d; the other variant covers it)", version, h.Version)
	}
	kn := kubepodtest.NewNode(t, driver)
	pod := kn.AddPod(kubepodtest.PodOptions{QOS: kubepod.Burstable, MemoryLimit: 256 << 20})
	pn := newPodNet(t, pod.NS)
	pn.servers(t)
	k := startNodeAgent(t, pn, kn.Root)
	st := k.start()
	ctx := context.Background()
	if !st.Capabilities[string(agentapi.KindPartition)] || !st.Capabilities[string(agentapi.KindMemory)] {
		t.Fatalf("capabilities %v (unavailable: %v)", st.Capabilities, st.Unavailable)
	}
	latencyOK := st.Capabilities[string(agentapi.KindLatency)]

	mk := func(id string, kind agentapi.Kind) agentapi.Fault {
		f := agentapi.Fault{ID: id, RunID: "pod", Kind: kind, Pod: &pod.API, Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}
		switch kind {
		case agentapi.KindPartition:
			f.Partition = &agentapi.Partition{CIDRs: []string{peerCIDR}}
		case agentapi.KindLatency:
			f.Latency = &agentapi.Latency{CIDRs: []string{peerCIDR}, DelayMs: 100}
		case agentapi.KindMemory:
			f.Memory = &agentapi.Memory{SizeBytes: 32 << 20}
		}
		return f
	}
	faults := []agentapi.Fault{mk("pod.partition", agentapi.KindPartition), mk("pod.memory", agentapi.KindMemory)}
	if latencyOK {
		faults = append(faults, mk("pod.latency", agentapi.KindLatency))
	}
	usage := func(rel string) uint64 {
		file := "memory.usage_in_bytes"
		if kn.Version == 2 {
			file = "memory.current"
		}
		b, _ := os.ReadFile(filepath.Join(kn.Root, rel, file))
		var n uint64
		fmt.Sscan(string(b), &n)
		return n
	}
	leaves := func() []string {
		ents, _ := os.ReadDir(filepath.Join(kn.Root, pod.Cgroup))
		var out []string
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), kubepod.OwnPrefix) {
				out = append(out, e.Name())
			}
		}
		return out
	}

	// Latency (where the kernel has netem): only the pod's traffic waits.
	if latencyOK {
		if _, err := k.client.Inject(ctx, faults[2]); err != nil {
			t.Fatal(err)
		}
		if got := pn.tagged(t, "node"); len(got) != 0 {
			t.Fatalf("node namespace holds %v", got)
		}
		if got := pn.tagged(t, "pod"); len(got) == 0 {
			t.Fatal("no latency qdisc in the pod's namespace")
		}
		podRTT, nodeRTT := connectRTT(t, pn.pod, peerAddr+":8000"), connectRTT(t, pn.node, peerAddr+":8000")
		t.Logf("latency: connect to the peer from the pod %v, from the node %v", podRTT, nodeRTT)
		if podRTT < 100*time.Millisecond || nodeRTT > 50*time.Millisecond {
			t.Errorf("pod → peer %v (want >= 100ms), node → peer %v (want < 50ms)", podRTT, nodeRTT)
		}
	} else {
		t.Logf("latency not covered here: %s", st.Unavailable[string(agentapi.KindLatency)])
	}

	// Partition: in the pod's namespace, only the pod is cut.
	if _, err := k.client.Inject(ctx, faults[0]); err != nil {
		t.Fatal(err)
	}
	partitionTables := slices.DeleteFunc(tablesIn(t, pn.pod), func(tb string) bool { return !strings.HasPrefix(tb, partition.TablePrefix) })
	if got := pn.tagged(t, "pod"); !slices.Contains(got, "table "+partition.TableName(faults[0].ID)) || len(partitionTables) != 1 {
		t.Fatalf("pod namespace holds %v", got)
	}
	if got := pn.tagged(t, "node"); len(got) != 0 {
		t.Fatalf("node namespace holds %v", got)
	}
	// The pod cannot reach the peer nor the peer it; the node still reaches
	// the peer; the pod still reaches the node.
	if got, want := pn.measure(), (podReach{nodeToPeer: true, podToNode: true}); got != want {
		t.Fatalf("during the pod partition:\n got %+v\nwant %+v", got, want)
	}

	// Memory: the stressor's pages are charged to the pod's cgroup.
	before := usage(pod.Cgroup)
	if _, err := k.client.Inject(ctx, faults[1]); err != nil {
		t.Fatal(err)
	}
	var grew uint64
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if grew = usage(pod.Cgroup) - before; grew >= 30<<20 {
			break
		}
	}
	if grew < 30<<20 || len(leaves()) != 1 {
		t.Fatalf("pod cgroup grew %d MiB (want >= 30), leaves %v", grew>>20, leaves())
	}
	leaf := path.Join(pod.Cgroup, leaves()[0])
	stressor := kn.Procs(leaf)
	if len(stressor) != 1 || slices.Contains(kn.Procs(""), stressor[0]) || slices.Contains(kn.Procs(pod.Container), stressor[0]) {
		t.Fatalf("stressor %v: must be alone in %s, not in the node's or the container's cgroup", stressor, leaf)
	}
	t.Logf("memory: pod cgroup +%d MiB, stressor %v in %s", grew>>20, stressor, leaf)

	// Crash with everything active, then the pod's process is replaced.
	k.kill9()
	if got := pn.tagged(t, "pod"); len(got) == 0 {
		t.Fatal("SIGKILL removed the pod's faults: the crash test proves nothing")
	}
	oldPID := pod.PID()
	pod.Restart()
	t.Logf("pod process %d replaced by %d", oldPID, pod.PID())
	k.start()
	all, err := k.client.List(ctx)
	if err != nil || len(all) != len(faults) {
		t.Fatalf("after restart: %+v, %v", all, err)
	}
	for _, s := range all {
		if s.State != agentapi.StateReverted || s.RevertReason != agentapi.ReasonStartup || !s.Verified || s.Fault.Pod == nil {
			t.Errorf("recovered fault: %+v", s)
		}
	}
	if got := append(pn.tagged(t, "pod"), pn.tagged(t, "node")...); len(got) != 0 {
		t.Fatalf("left after recovery: %v", got)
	}
	if l := leaves(); len(l) != 0 {
		t.Fatalf("stressor cgroups left after recovery: %v", l)
	}
	if got := pn.measure(); got != (podReach{true, true, true, true}) {
		t.Fatalf("after recovery: %+v", got)
	}

	// The pod is deleted under a fault: the revert succeeds (the
	// namespace and its table went with the pod).
	gone := mk("pod.gone", agentapi.KindPartition)
	if _, err := k.client.Inject(ctx, gone); err != nil {
		t.Fatal(err)
	}
	pod.Delete()
	s, err := k.client.Revert(ctx, gone.ID)
	if err != nil || s.State != agentapi.StateReverted || !s.Verified {
		t.Fatalf("revert after the pod was deleted: %+v, %v", s, err)
	}
	if _, err := k.client.Inject(ctx, mk("pod.after", agentapi.KindPartition)); err == nil || !strings.Contains(err.Error(), "pod gone") {
		t.Fatalf("inject for a deleted pod: %v", err)
	}
	k.stop()
}

// connectRTT is the fastest of three TCP connects from ns to addr.
func connectRTT(t testing.TB, ns testNS, addr string) time.Duration {
	t.Helper()
	best := time.Hour
	for range 3 {
		start := time.Now()
		if err := tcpReach(ns, addr); err != nil {
			t.Fatalf("connect %s from %s: %v", addr, ns.name, err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

func TestIntegrationPodFaultsCgroupfs(t *testing.T) { testPodFaults(t, 1, kubepod.DriverCgroupfs) }
func TestIntegrationPodFaultsSystemd(t *testing.T)  { testPodFaults(t, 1, kubepod.DriverSystemd) }

// TestVMPodFaults* run on cgroup v2 with netem, under QEMU.
func TestVMPodFaultsCgroupfs(t *testing.T) { vmOnly(t); testPodFaults(t, 2, kubepod.DriverCgroupfs) }
func TestVMPodFaultsSystemd(t *testing.T)  { vmOnly(t); testPodFaults(t, 2, kubepod.DriverSystemd) }

func vmOnly(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("cgroup v2 and latency: run via hack/vmtest.sh (make test does)")
	}
}
