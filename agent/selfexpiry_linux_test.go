package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// The self-expiry tests prove that no fault outlives its lease even when
// the agent cannot revert it: the agent is SIGKILLed and never restarted,
// or SIGSTOPped (hung). Partition and latency end in the kernel (their
// nftables set elements time out), the memory stressor by its own
// deadline. Each measures, from the agent's death, when the fault is
// gone, and requires it within lease + 1s of the last renewal.

const selfExpiryLease = 2 * time.Second

var cgSeq atomic.Int64

// dialQuick reports whether a TCP connection from ns to addr opens within
// timeout, and how long it took.
func dialQuick(ns testNS, addr string, timeout time.Duration) (time.Duration, bool) {
	var took time.Duration
	err := inNS(ns, func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, timeout)
		took = time.Since(start)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return took, err == nil
}

// sigName is the signal's name for logs.
func sigName(sig syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP"}[sig]
}

// stopAgent SIGKILLs (dead) or SIGSTOPs (hung) the agent process; a
// stopped agent is killed at cleanup.
func stopAgent(k *killableAgent, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		k.kill9()
		return
	}
	_ = k.cmd.Process.Signal(sig) // by PID: the process this test started
}

// waitUntil polls cond every 10ms until it holds (its time) or limit
// passes (false).
func waitUntil(limit time.Time, cond func() bool) (time.Time, bool) {
	for {
		if cond() {
			return time.Now(), true
		}
		if time.Now().After(limit) {
			return time.Time{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkExpiry checks a fault's end measured after the agent stopped at
// stopped, its last renewal's status being st: not before its lease's end
// (minus slack for the probe), within lease + 1s of the renewal, and it
// logs the figures.
func checkExpiry(t *testing.T, what string, st agentapi.FaultStatus, renewed, stopped, gone time.Time, probe time.Duration) {
	t.Helper()
	t.Logf("%s: gone %v after the agent stopped (lease %v, renewed %v before it stopped; agent reported self-expiry %q at +%v; probe resolution %v)",
		what, gone.Sub(stopped).Round(time.Millisecond), selfExpiryLease, stopped.Sub(renewed).Round(time.Millisecond),
		st.SelfExpiry, st.SelfExpiresAt.Sub(stopped).Round(time.Millisecond), probe)
	if limit := renewed.Add(selfExpiryLease + time.Second); gone.After(limit) {
		t.Errorf("%s: gone %v after the last renewal, want within lease + 1s", what, gone.Sub(renewed))
	}
	if gone.Before(st.LeaseExpires.Add(-probe)) {
		t.Errorf("%s: gone at %v, before its lease ended at %v", what, gone, st.LeaseExpires)
	}
}

// testPartitionSelfExpiry: a node partition (both directions) with a 2s
// lease, renewed once, then the agent stops for good (SIGKILL) or hangs
// (SIGSTOP): traffic flows again in both directions one lease (plus the
// 250ms margin) after the renewal, the kernel alone having ended it. The
// empty table left behind is removed by a restarted agent (SIGKILL) or by
// the agent itself once it runs again (SIGSTOP, then SIGCONT).
func testPartitionSelfExpiry(t *testing.T, sig syscall.Signal) {
	requireRootOnly(t)
	pn := newPodNet(t, -1)
	pn.servers(t)
	k := startNodeAgent(t, pn, "")
	k.start()
	ctx := context.Background()
	flows := func() bool {
		_, out := dialQuick(pn.node, peerAddr+":8000", 50*time.Millisecond)
		_, in := dialQuick(pn.peer, nodePodGW+":8001", 50*time.Millisecond)
		return out && in
	}
	cut := func() bool {
		_, out := dialQuick(pn.node, peerAddr+":8000", 50*time.Millisecond)
		_, in := dialQuick(pn.peer, nodePodGW+":8001", 50*time.Millisecond)
		return !out && !in
	}
	if !flows() {
		t.Fatal("no traffic before the fault")
	}
	f := agentapi.Fault{ID: "selfexp.cut", RunID: "selfexp", Kind: agentapi.KindPartition,
		Partition: &agentapi.Partition{CIDRs: []string{peerCIDR, "fd97:2::/64"}},
		Deadline:  time.Now().Add(time.Minute), LeaseSeconds: selfExpiryLease.Seconds()}
	st, err := k.client.Inject(ctx, f)
	if err != nil {
		t.Fatalf("inject: %v\n%s", err, k.stderr)
	}
	if st.SelfExpiry != agentapi.SelfExpiryKernel {
		t.Fatalf("status does not say the kernel ends the partition: %+v", st)
	}
	if !cut() {
		t.Fatal("traffic flows during the partition")
	}
	time.Sleep(time.Second)
	renewed := time.Now()
	if st, err = k.client.Renew(ctx, f.ID, selfExpiryLease); err != nil {
		t.Fatalf("renew: %v", err)
	}
	stopped := time.Now()
	stopAgent(k, sig)

	// Still cut until the lease the renewal gave ends.
	if _, early := waitUntil(st.LeaseExpires.Add(-200*time.Millisecond), func() bool { return !cut() }); early {
		t.Fatalf("traffic flowed %v after the agent stopped, before the lease ended", time.Since(stopped))
	}
	gone, ok := waitUntil(renewed.Add(selfExpiryLease+1500*time.Millisecond), flows)
	if !ok {
		t.Fatalf("partition still in place %v after the agent stopped (lease %v): nothing expired it", time.Since(stopped), selfExpiryLease)
	}
	checkExpiry(t, "partition ("+sigName(sig)+")", st, renewed, stopped, gone, 120*time.Millisecond)
	if ts := tablesIn(t, pn.node); len(ts) != 1 {
		t.Fatalf("tables after the kernel expired the fault: %v (want the empty table, until the agent removes it)", ts)
	}

	switch sig {
	case syscall.SIGKILL:
		k.start() // start-up recovery reverts what the ledger holds
	default:
		_ = k.cmd.Process.Signal(syscall.SIGCONT) // its own timer fires at once
	}
	var all []agentapi.FaultStatus
	if _, ok := waitUntil(time.Now().Add(5*time.Second), func() bool {
		all, _ = k.client.List(ctx)
		return len(all) == 1 && all[0].State == agentapi.StateReverted
	}); !ok {
		t.Fatalf("after the agent runs again: %+v\n%s", all, k.stderr)
	}
	want := map[syscall.Signal]string{syscall.SIGKILL: agentapi.ReasonStartup, syscall.SIGSTOP: agentapi.ReasonLease}[sig]
	if all[0].RevertReason != want || !all[0].Verified || all[0].SelfExpiry != agentapi.SelfExpiryKernel {
		t.Fatalf("status after the agent runs again: %+v, want reason %s, verified, self-expiry kernel", all[0], want)
	}
	if ts := tablesIn(t, pn.node); len(ts) != 0 {
		t.Fatalf("tables left: %v", ts)
	}
	k.stop()
}

func TestIntegrationPartitionExpiresInKernelAfterSIGKILL(t *testing.T) {
	testPartitionSelfExpiry(t, syscall.SIGKILL)
}

func TestIntegrationPartitionExpiresInKernelWhileAgentHangs(t *testing.T) {
	testPartitionSelfExpiry(t, syscall.SIGSTOP)
}

// memCgroup creates a memory cgroup (v2 or v1) with a 256 MiB limit and
// returns its path relative to the hierarchy and a reader of its usage.
func memCgroup(t *testing.T, name string) (string, func() uint64) {
	t.Helper()
	rel := fmt.Sprintf("chaosd-%s-%d-%d", name, os.Getpid(), cgSeq.Add(1))
	root, limitFile, usageFile := "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		root, limitFile, usageFile = "/sys/fs/cgroup", "memory.max", "memory.current"
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644)
	}
	dir := filepath.Join(root, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("processes left in the test cgroup: %s", b)
		}
		// A task that just exited may keep it busy a moment.
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || os.IsNotExist(err) {
				return
			}
			if time.Now().After(end) {
				t.Errorf("remove test cgroup %s: %v", dir, err)
				return
			}
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.Itoa(256<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	return rel, func() uint64 {
		b, err := os.ReadFile(filepath.Join(dir, usageFile))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
}

// testMemorySelfExpiry: a 64 MiB memory fault with a 2s lease, renewed
// once, then the agent dies (SIGKILL: the stressor dies with it at once)
// or hangs (SIGSTOP: nothing renews the stressor's own deadline, and it
// frees its memory and exits one lease, plus 250ms, after the renewal).
// The cgroup's usage falls back either way.
func testMemorySelfExpiry(t *testing.T, sig syscall.Signal) {
	requireRootOnly(t)
	cg, usage := memCgroup(t, "selfexp-"+strings.ToLower(sigName(sig)))
	pn := newPodNet(t, -1)
	k := startNodeAgent(t, pn, "")
	k.start()
	ctx := context.Background()
	const size = 64 << 20
	base := usage()
	f := agentapi.Fault{ID: "selfexp.mem", RunID: "selfexp", Kind: agentapi.KindMemory,
		Memory:   &agentapi.Memory{Cgroup: cg, SizeBytes: size},
		Deadline: time.Now().Add(time.Minute), LeaseSeconds: selfExpiryLease.Seconds()}
	st, err := k.client.Inject(ctx, f)
	if err != nil {
		t.Fatalf("inject: %v\n%s", err, k.stderr)
	}
	if st.SelfExpiry != agentapi.SelfExpiryProcess {
		t.Fatalf("status does not say the stressor ends by itself: %+v", st)
	}
	if _, ok := waitUntil(time.Now().Add(5*time.Second), func() bool { return usage() >= base+size*9/10 }); !ok {
		t.Fatalf("the stressor's memory never showed in the cgroup: %d bytes (base %d)", usage(), base)
	}
	time.Sleep(time.Second)
	renewed := time.Now()
	if st, err = k.client.Renew(ctx, f.ID, selfExpiryLease); err != nil {
		t.Fatalf("renew: %v", err)
	}
	pids := stressorPIDsOf(f.ID)
	if len(pids) != 1 {
		t.Fatalf("stressors of %s: %v", f.ID, pids)
	}
	stopped := time.Now()
	stopAgent(k, sig)
	gone, ok := waitUntil(renewed.Add(selfExpiryLease+1500*time.Millisecond), func() bool {
		return len(stressorPIDsOf(f.ID)) == 0 && usage() < base+size/10
	})
	if !ok {
		t.Fatalf("stressor %v still there (cgroup usage %d, base %d) %v after the agent stopped (lease %v)",
			stressorPIDsOf(f.ID), usage(), base, time.Since(stopped), selfExpiryLease)
	}
	if sig == syscall.SIGKILL {
		// It dies with the agent (PR_SET_PDEATHSIG, lifeline EOF): at once.
		t.Logf("memory (SIGKILL): stressor gone and the cgroup's memory freed %v after the agent died", gone.Sub(stopped).Round(time.Millisecond))
		if gone.Sub(stopped) > time.Second {
			t.Errorf("the stressor outlived its dead agent by %v", gone.Sub(stopped))
		}
	} else {
		checkExpiry(t, "memory ("+sigName(sig)+")", st, renewed, stopped, gone, 20*time.Millisecond)
		_ = k.cmd.Process.Signal(syscall.SIGCONT)
		var all []agentapi.FaultStatus
		if _, ok := waitUntil(time.Now().Add(5*time.Second), func() bool {
			all, _ = k.client.List(ctx)
			return len(all) == 1 && all[0].State == agentapi.StateReverted
		}); !ok || all[0].RevertReason != agentapi.ReasonLease || !all[0].Verified {
			t.Fatalf("after SIGCONT: %+v\n%s", all, k.stderr)
		}
		k.stop()
	}
}

// stressorPIDsOf lists the live stressor processes of a fault.
func stressorPIDsOf(faultID string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(StressorCommand)) || !bytes.Contains(b, []byte("--chaosd-fault-id="+faultID+"\x00")) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue // a zombie holds no memory
			}
		}
		out = append(out, e.Name())
	}
	return out
}

func TestIntegrationMemoryStressorGoneAfterSIGKILL(t *testing.T) {
	testMemorySelfExpiry(t, syscall.SIGKILL)
}

func TestIntegrationMemoryStressorExpiresWhileAgentHangs(t *testing.T) {
	testMemorySelfExpiry(t, syscall.SIGSTOP)
}

// TestVM*: the same on the stock kernel with cgroup v2 under QEMU.
func TestVMPartitionExpiresInKernelAfterSIGKILL(t *testing.T) {
	vmOnly(t)
	testPartitionSelfExpiry(t, syscall.SIGKILL)
}

func TestVMMemoryStressorGoneAfterSIGKILL(t *testing.T) {
	vmOnly(t)
	testMemorySelfExpiry(t, syscall.SIGKILL)
}

func TestVMMemoryStressorExpiresWhileAgentHangs(t *testing.T) {
	vmOnly(t)
	testMemorySelfExpiry(t, syscall.SIGSTOP)
}

// testLatencySelfExpiry: a 100ms latency fault (node → peer) with a 2s
// lease, renewed once, then the agent is SIGKILLed and never restarted:
// connects to the peer are fast again one lease (plus the 250ms margin)
// after the renewal, the kernel having dropped the marking set's
// elements. Needs netem: the stock kernel under QEMU.
func testLatencySelfExpiry(t *testing.T) {
	requireRootOnly(t)
	pn := newPodNet(t, -1)
	pn.servers(t)
	k := startNodeAgent(t, pn, "")
	if st := k.start(); !st.Capabilities[string(agentapi.KindLatency)] {
		t.Skipf("this kernel cannot run latency faults: %s", st.Unavailable[string(agentapi.KindLatency)])
	}
	ctx := context.Background()
	const delay = 100 * time.Millisecond
	rtt := func() time.Duration {
		d, ok := dialQuick(pn.node, peerAddr+":8000", time.Second)
		if !ok {
			t.Fatalf("connect to the peer failed")
		}
		return d
	}
	if r := rtt(); r >= delay/2 {
		t.Fatalf("connect RTT %v before the fault", r)
	}
	f := agentapi.Fault{ID: "selfexp.lat", RunID: "selfexp", Kind: agentapi.KindLatency,
		Latency:  &agentapi.Latency{CIDRs: []string{peerCIDR}, DelayMs: float64(delay.Milliseconds()), JitterMs: 5, CorrelationPercent: 10},
		Deadline: time.Now().Add(time.Minute), LeaseSeconds: selfExpiryLease.Seconds()}
	st, err := k.client.Inject(ctx, f)
	if err != nil {
		t.Fatalf("inject: %v\n%s", err, k.stderr)
	}
	if st.SelfExpiry != agentapi.SelfExpiryKernel {
		t.Fatalf("status does not say the kernel ends the latency fault: %+v", st)
	}
	if r := rtt(); r < delay-10*time.Millisecond {
		t.Fatalf("connect RTT %v during a %v latency fault", r, delay)
	}
	time.Sleep(time.Second)
	renewed := time.Now()
	if st, err = k.client.Renew(ctx, f.ID, selfExpiryLease); err != nil {
		t.Fatalf("renew: %v", err)
	}
	stopped := time.Now()
	k.kill9()

	// Delayed until the lease the renewal gave ends (jitter 5ms).
	for time.Until(st.LeaseExpires) > 300*time.Millisecond {
		if r := rtt(); r < delay-10*time.Millisecond {
			t.Fatalf("connect RTT %v %v after the agent died, before the lease ended", r, time.Since(stopped))
		}
	}
	gone, ok := waitUntil(renewed.Add(selfExpiryLease+1500*time.Millisecond), func() bool { return rtt() < delay/2 })
	if !ok {
		t.Fatalf("connects still delayed %v after the agent died (lease %v)", time.Since(stopped), selfExpiryLease)
	}
	checkExpiry(t, "latency (SIGKILL)", st, renewed, stopped, gone, delay+10*time.Millisecond)
	for range 5 {
		if r := rtt(); r >= delay/2 {
			t.Fatalf("connect RTT %v after the marks expired", r)
		}
	}
	// The idle class and the empty table stay until an agent runs again.
	if left := pn.tagged(t, "node"); len(left) == 0 {
		t.Fatal("nothing of the fault left: the kernel should only have dropped the set elements")
	}
	k.start()
	if left := pn.tagged(t, "node"); len(left) != 0 {
		t.Fatalf("left after restart: %v", left)
	}
	k.stop()
}

func TestVMLatencyExpiresInKernelAfterSIGKILL(t *testing.T) {
	vmOnly(t)
	testLatencySelfExpiry(t)
}
