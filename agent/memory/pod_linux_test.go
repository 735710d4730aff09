package memory

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
)

// podNode is a fake kubelet layout on the hierarchy of the wanted version
// (1: the host's v1 memory controller; 2: cgroup v2 in the VM).
func podNode(t *testing.T, version int, driver kubepod.CgroupDriver) (*kubepodtest.Node, testEnv) {
	t.Helper()
	if version == 2 && os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("cgroup v2 variant: run via hack/vmtest.sh (make test does)")
	}
	if h := kubepodtest.Hierarchy(t); h.Version != version {
		t.Skipf("needs cgroup v%d with the memory controller (this machine has v%d; the other variant covers it)", version, h.Version)
	}
	n := kubepodtest.NewNode(t, driver)
	slow := time.Duration(1)
	if version == 2 {
		slow = 4
	}
	return n, testEnv{cg: cgroupFS{n.Root, n.Version}, owner: fmt.Sprintf("chaosd-test-%d", os.Getpid()), slow: slow}
}

func podDriver(t *testing.T, n *kubepodtest.Node, e testEnv, driver kubepod.CgroupDriver) *Driver {
	t.Helper()
	d, err := New(Config{ArgPrefix: []string{"agent-stressor"}, CgroupRoot: n.Root, CgroupDriver: driver, Owner: e.owner}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Probe(context.Background()); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// testPodMemory: with Fault.Pod and no cgroup, the stressor runs in a leaf
// the driver creates in the pod's cgroup (found from UID and QoS), its
// memory counts against the pod's limit and not the container's; revert
// kills it and removes the leaf, leaving the pod as it was. A pod deleted
// under the fault reverts as done; Prune removes this owner's leftover
// leaves only.
func testPodMemory(t *testing.T, version int, driver kubepod.CgroupDriver) {
	n, e := podNode(t, version, driver)
	// The driver is told auto: the layout is found from what exists.
	d := podDriver(t, n, e, kubepod.DriverAuto)
	pod := n.AddPod(kubepodtest.PodOptions{QOS: kubepod.Burstable, MemoryLimit: 256 * mib})
	other := n.AddPod(kubepodtest.PodOptions{QOS: kubepod.Guaranteed, MemoryLimit: 256 * mib})
	ctx := context.Background()

	f := agentapi.Fault{ID: "pod.mem", RunID: "test", Kind: agentapi.KindMemory, Pod: &pod.API,
		Memory: &agentapi.Memory{Fraction: 0.25}, Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}
	prep, err := d.Prepare(ctx, &f)
	if err != nil {
		t.Fatal(err)
	}
	var ps state
	json.Unmarshal(prep, &ps)
	if ps.PodCgroup != pod.Cgroup || !ps.LeafCgroup || path.Dir(ps.Cgroup) != pod.Cgroup ||
		ps.LimitBytes != 256*mib || ps.LimitSource != "cgroup "+pod.Cgroup || ps.TargetBytes != 64*mib {
		t.Fatalf("Prepare state %s (pod cgroup %s)", prep, pod.Cgroup)
	}
	t.Logf("pod cgroup %s; stressor leaf %s", pod.Cgroup, path.Base(ps.Cgroup))
	containerBefore, _ := e.cg.Usage(pod.Container)
	otherBefore, _ := e.cg.Usage(other.Cgroup)
	applied, err := d.Apply(ctx, f, prep)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	json.Unmarshal(applied, &st)
	if !slices.Contains(n.Procs(st.Cgroup), st.PID) {
		t.Fatalf("stressor %d is not in %s", st.PID, st.Cgroup)
	}
	took := e.waitUsage(t, pod.Cgroup, 60*mib, 15*time.Second*e.slow)
	podUsage, _ := e.cg.Usage(pod.Cgroup)
	containerUsage, _ := e.cg.Usage(pod.Container)
	otherUsage, _ := e.cg.Usage(other.Cgroup)
	t.Logf("cgroup v%d %s: pod usage %d MiB after %s; container %d → %d MiB; other pod %d → %d MiB",
		n.Version, driver, podUsage/mib, took.Round(time.Millisecond), containerBefore/mib, containerUsage/mib, otherBefore/mib, otherUsage/mib)
	if containerUsage > containerBefore+8*mib || otherUsage > otherBefore+8*mib {
		t.Errorf("memory landed outside the stressor's leaf: container %d MiB, other pod %d MiB", containerUsage/mib, otherUsage/mib)
	}
	if left, _ := d.Remaining(ctx, f, applied); !strings.Contains(left, "memory stressor") || !strings.Contains(left, "cgroup "+st.Cgroup) {
		t.Fatalf("Remaining while applied = %q", left)
	}
	if err := d.Revert(ctx, f, applied); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if !gone(st.PID, st.StartTime) {
		t.Fatal("stressor alive after Revert")
	}
	if _, err := os.Stat(filepath.Join(n.Root, st.Cgroup)); !os.IsNotExist(err) {
		t.Fatalf("leaf cgroup left after Revert: %v", err)
	}
	if left, err := d.Remaining(ctx, f, applied); err != nil || left != "" {
		t.Fatalf("Remaining after Revert = %q, %v", left, err)
	}
	if !slices.Contains(n.Procs(pod.Container), pod.PID()) {
		t.Fatal("the pod's own process left its container cgroup")
	}
	if after, _ := e.cg.Usage(pod.Cgroup); after > 16*mib {
		t.Errorf("pod usage after revert %d MiB", after/mib)
	}

	// The pod is deleted under the fault (kubelet kills every process in
	// its cgroup, the stressor too, and removes the tree): revert is done.
	f2 := f
	f2.ID = "pod.mem.gone"
	applied2 := mustApply(t, d, f2)
	var st2 state
	json.Unmarshal(applied2, &st2)
	if ok, err := killIf(st2.PID, func() bool { return d.isStressor(st2.PID, st2.StartTime, f2.ID) }); err != nil || !ok {
		t.Fatalf("kill the stressor as kubelet would: %v %v", ok, err)
	}
	waitDead(t, st2.PID, st2.StartTime, 5*time.Second)
	time.Sleep(50 * time.Millisecond) // let the driver reap it
	pod.Delete()
	if err := d.Revert(ctx, f2, applied2); err != nil {
		t.Fatalf("Revert after the pod was deleted: %v", err)
	}
	if left, err := d.Remaining(ctx, f2, applied2); err != nil || left != "" {
		t.Fatalf("Remaining after the pod was deleted = %q, %v", left, err)
	}
	if _, err := d.Prepare(ctx, &f2); err == nil || !kubepod.IsGone(err) {
		t.Fatalf("Prepare for a deleted pod: %v", err)
	}

	// Prune: a leaf of this owner no fault owns goes; another owner's stays.
	ours := path.Join(other.Cgroup, d.leafName("crashed"))
	d2, err := New(Config{ArgPrefix: []string{"agent-stressor"}, CgroupRoot: n.Root, Owner: e.owner + "-other"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	theirs := path.Join(other.Cgroup, d2.leafName("crashed"))
	for _, rel := range []string{ours, theirs} {
		if err := os.Mkdir(filepath.Join(n.Root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := d.Prune(ctx, nil)
	if err != nil || !slices.Equal(removed, []string{"cgroup " + ours}) {
		t.Fatalf("Prune removed %q, %v; want only %s", removed, err, ours)
	}
	if _, err := os.Stat(filepath.Join(n.Root, theirs)); err != nil {
		t.Fatalf("Prune removed another owner's leaf: %v", err)
	}
}

func mustApply(t *testing.T, d *Driver, f agentapi.Fault) json.RawMessage {
	t.Helper()
	prep, err := d.Prepare(context.Background(), &f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Apply(context.Background(), f, prep)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestHostV1PodMemoryCgroupfs(t *testing.T) { testPodMemory(t, 1, kubepod.DriverCgroupfs) }
func TestHostV1PodMemorySystemd(t *testing.T)  { testPodMemory(t, 1, kubepod.DriverSystemd) }
func TestVMPodMemoryCgroupfs(t *testing.T)     { testPodMemory(t, 2, kubepod.DriverCgroupfs) }
func TestVMPodMemorySystemd(t *testing.T)      { testPodMemory(t, 2, kubepod.DriverSystemd) }

// TestVMPodMemoryFromContainerCgroupNS: an agent in a cgroup namespace of
// its own (as in a container on cgroup v2) cannot place a stressor in a
// pod's cgroup, which lies outside that namespace, unless it starts the
// stressor in the host's cgroup namespace (Config.CgroupNS, the
// DaemonSet's --cgroupns=/proc/1/ns/cgroup).
func TestVMPodMemoryFromContainerCgroupNS(t *testing.T) {
	n, e := podNode(t, 2, kubepod.DriverCgroupfs)
	// The kernel makes cgroup namespaces delegation boundaries only with
	// the nsdelegate mount option, which systemd sets on every host it
	// mounts cgroup2 on; vmexec's /init does not. Set it for this test in
	// the throwaway guest only (it is system wide), and clear it after.
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("remounts cgroup2 with nsdelegate: only in the QEMU guest")
	}
	if err := syscall.Mount("", "/sys/fs/cgroup", "", syscall.MS_REMOUNT, "nsdelegate"); err != nil {
		t.Fatalf("remount cgroup2 with nsdelegate: %v", err)
	}
	t.Cleanup(func() { syscall.Mount("", "/sys/fs/cgroup", "", syscall.MS_REMOUNT, "") })
	pod := n.AddPod(kubepodtest.PodOptions{MemoryLimit: 256 * mib})
	d := podDriver(t, n, e, kubepod.DriverAuto) // reverts what the stand-ins leave
	agentCg := filepath.Join(n.Root, "agent-container")
	if err := os.Mkdir(agentCg, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, hostNS := range []string{"", "/proc/1/ns/cgroup"} {
		f := agentapi.Fault{ID: fmt.Sprintf("cgns.%d", i), RunID: "test", Kind: agentapi.KindMemory, Pod: &pod.API,
			Memory: &agentapi.Memory{SizeBytes: 16 * mib}, Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}
		rep, stop := startContainedAgent(t, agentCg, testAgentConfig{CgroupRoot: n.Root, Owner: e.owner, CgroupNS: hostNS, Fault: f})
		if hostNS == "" {
			// A process in the host's cgroup namespace would see itself in
			// /<node>/agent-container.
			if rep.SelfCgroup != "0::/" {
				t.Fatalf("stand-in agent sees itself in %q: not in a cgroup namespace rooted at its cgroup", rep.SelfCgroup)
			}
			t.Logf("from its own cgroup namespace: %s", rep.Error)
			if rep.Error == "" {
				t.Fatal("a stressor was placed in a pod's cgroup outside the agent's cgroup namespace: the test proves nothing")
			}
			stop()
			continue
		}
		if rep.Error != "" {
			t.Fatalf("with --cgroupns %s: %s", hostNS, rep.Error)
		}
		var st state
		json.Unmarshal(rep.State, &st)
		if !slices.Contains(n.Procs(st.Cgroup), st.PID) {
			t.Fatalf("stressor %d not in %s", st.PID, st.Cgroup)
		}
		t.Logf("with the host's cgroup namespace: stressor %d in %s", st.PID, st.Cgroup)
		stop()
		waitDead(t, st.PID, st.StartTime, 5*time.Second)
		if err := d.Revert(context.Background(), f, rep.State); err != nil {
			t.Fatalf("Revert of the stand-in's fault: %v", err)
		}
	}
}

// startContainedAgent runs the stand-in agent (test-agent) cloned into
// cgroup dir with a new cgroup namespace rooted there, as a container's.
func startContainedAgent(t *testing.T, dir string, cfg testAgentConfig) (testAgentReport, func()) {
	t.Helper()
	fd, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFD(fd)
	b, _ := json.Marshal(cfg)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "test-agent", string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Cloneflags: syscall.CLONE_NEWCGROUP}
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the stand-in agent in its own cgroup namespace: %v", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() } // by PID: the process this test started
	t.Cleanup(stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		t.Fatalf("stand-in agent: %v", err)
	}
	var rep testAgentReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("stand-in agent said %q", line)
	}
	return rep, stop
}
