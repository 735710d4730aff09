package memory

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

const mib = 1 << 20

// testEnv is the cgroup hierarchy a privileged test runs in: the host's
// cgroup v1 memory controller, or cgroup v2 inside the VM.
type testEnv struct {
	cg    cgroupFS
	owner string
	slow  time.Duration // extra patience (TCG in the VM)
}

func hostV1(t testing.TB) testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates memory cgroups and moves processes into them")
	}
	const root = "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(root, "memory.limit_in_bytes")); err != nil {
		t.Skipf("needs the cgroup v1 memory controller at %s (absent here; the cgroup v2 variants run as TestVM* via hack/vmtest.sh)", root)
	}
	return testEnv{cg: cgroupFS{root, 1}, owner: fmt.Sprintf("chaosd-test-%d", os.Getpid()), slow: 1}
}

func vmV2(t testing.TB) testEnv {
	t.Helper()
	if os.Getenv("CHAOSD_IN_VM") != "1" || !kubepod.ControllerListed("/sys/fs/cgroup/cgroup.subtree_control", "memory") {
		t.Skip("needs cgroup v2 with the memory controller: run via hack/vmtest.sh (make test does)")
	}
	return testEnv{cg: cgroupFS{"/sys/fs/cgroup", 2}, owner: fmt.Sprintf("chaosd-test-%d", os.Getpid()), slow: 4}
}

var cgSeq atomic.Int64

// newCgroup makes chaosd-test-<pid>-<n> with the given memory limit and
// removes it at cleanup (after killing this test's stressors left in it).
func (e testEnv) newCgroup(t testing.TB, limit uint64) string {
	t.Helper()
	rel := fmt.Sprintf("chaosd-test-%d-%d", os.Getpid(), cgSeq.Add(1))
	dir := e.cg.Dir(rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
				t.Errorf("remove test cgroup %s: %v (procs: %q)", dir, err, procs)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	if e.cg.Version == 2 {
		os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0) // absent without swap: fine
	}
	if err := os.WriteFile(filepath.Join(dir, e.cg.limitFile()), []byte(strconv.FormatUint(limit, 10)), 0); err != nil {
		t.Fatalf("set test cgroup limit: %v", err)
	}
	return rel
}

func (e testEnv) driver(t testing.TB) *Driver {
	t.Helper()
	before := goleak.IgnoreCurrent()
	d, err := New(Config{ArgPrefix: []string{"agent-stressor"}, CgroupRoot: e.cg.Root, Owner: e.owner}, zaptest.NewLogger(t))
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
		goleak.VerifyNone(t, before)
	})
	return d
}

func memFault(id, cg string, m agentapi.Memory) agentapi.Fault {
	m.Cgroup = cg
	return agentapi.Fault{ID: id, RunID: "test", Kind: agentapi.KindMemory, Memory: &m,
		Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}
}

func apply(t testing.TB, d *Driver, f agentapi.Fault) state {
	t.Helper()
	raw, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	raw, err = d.Apply(context.Background(), f, raw)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || st.PID == 0 || st.StartTime == 0 {
		t.Fatalf("Apply state %s: %v", raw, err)
	}
	return st
}

func raw(st state) json.RawMessage { b, _ := json.Marshal(st); return b }

// waitUsage polls until the cgroup's usage is >= want; it returns how long
// that took.
func (e testEnv) waitUsage(t testing.TB, rel string, want uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var u uint64
	for time.Since(start) < within {
		var err error
		if u, err = e.cg.Usage(rel); err != nil {
			t.Fatal(err)
		}
		if u >= want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cgroup %s usage %d MiB after %s, want >= %d MiB", rel, u/mib, within, want/mib)
	return 0
}

func inProcs(t testing.TB, e testEnv, rel string, pid int) bool {
	data, err := os.ReadFile(filepath.Join(e.cg.Dir(rel), "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(data)) {
		if f == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// gone says the process (pid, start) no longer exists, zombie included.
func gone(pid int, start uint64) bool {
	ps, err := readStat("/proc", pid)
	return err == errGone || (err == nil && ps.StartTime != start)
}

// dead says the process (pid, start) is gone or a zombie (killed, its
// memory freed, waiting for its parent, or init for an orphan, to reap it).
func dead(pid int, start uint64) bool {
	ps, err := readStat("/proc", pid)
	return err == errGone || (err == nil && (ps.StartTime != start || ps.State == 'Z' || ps.State == 'X'))
}

func waitDead(t testing.TB, pid int, start uint64, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !dead(pid, start) {
		if time.Since(t0) > within {
			ps, _ := readStat("/proc", pid)
			t.Fatalf("process %d still there after %s (state %c)", pid, within, ps.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}

// reachAndReclaim: the stressor lands in the cgroup, ramps up to the
// target, and Revert removes it and its memory.
func reachAndReclaim(t *testing.T, e testEnv, m agentapi.Memory, wantTarget uint64) {
	d := e.driver(t)
	rel := e.newCgroup(t, 512*mib)
	before, _ := e.cg.Usage(rel)
	f := memFault("reach", rel, m)
	t0 := time.Now()
	st := apply(t, d, f)
	applied := time.Since(t0)
	if st.TargetBytes != wantTarget {
		t.Fatalf("target %d, want %d", st.TargetBytes, wantTarget)
	}
	if !inProcs(t, e, rel, st.PID) {
		t.Fatalf("stressor %d not in %s/cgroup.procs", st.PID, rel)
	}
	reach := e.waitUsage(t, rel, wantTarget-8*mib, 15*time.Second*e.slow)
	usage, _ := e.cg.Usage(rel)
	t.Logf("cgroup v%d: apply %s, usage %d → %d MiB (target %d MiB, ramp %gs) reached in %s",
		e.cg.Version, applied.Round(time.Microsecond), before/mib, usage/mib, wantTarget/mib, m.RampSeconds, (applied + reach).Round(time.Millisecond))
	if m.RampSeconds > 0 && applied+reach < time.Duration(m.RampSeconds*0.7*float64(time.Second)) {
		t.Errorf("reached the target in %s: the %gs ramp was not spread", applied+reach, m.RampSeconds)
	}
	if usage > wantTarget+32*mib {
		t.Errorf("usage %d MiB overshoots the target %d MiB", usage/mib, wantTarget/mib)
	}
	if left, err := d.Remaining(context.Background(), f, raw(st)); err != nil || !strings.Contains(left, strconv.Itoa(st.PID)) {
		t.Fatalf("Remaining while applied = %q, %v", left, err)
	}
	t0 = time.Now()
	if err := d.Revert(context.Background(), f, raw(st)); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	reverted := time.Since(t0)
	if !gone(st.PID, st.StartTime) {
		t.Fatalf("stressor %d still exists after Revert (zombie?)", st.PID)
	}
	if left, err := d.Remaining(context.Background(), f, raw(st)); err != nil || left != "" {
		t.Fatalf("Remaining after revert = %q, %v", left, err)
	}
	after, _ := e.cg.Usage(rel)
	t.Logf("revert %s, usage after %d MiB", reverted.Round(time.Microsecond), after/mib)
	if after > 16*mib {
		t.Errorf("usage after revert %d MiB, want < 16 MiB", after/mib)
	}
	if err := d.Revert(context.Background(), f, raw(st)); err != nil {
		t.Fatalf("second Revert: %v", err)
	}
}

func testReachSize(t *testing.T, e testEnv) {
	reachAndReclaim(t, e, agentapi.Memory{SizeBytes: 128 * mib, RampSeconds: 1}, 128*mib)
}

func testReachFraction(t *testing.T, e testEnv) {
	reachAndReclaim(t, e, agentapi.Memory{Fraction: 0.25}, 128*mib)
}

// testPIDReuse: a state naming a live process that is not the stressor
// (wrong start time, or right start time but no marker) kills nothing.
func testPIDReuse(t *testing.T, e testEnv) {
	d := e.driver(t)
	sl := exec.Command("sleep", "30")
	if err := sl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sl.Process.Kill(); sl.Wait() }()
	ps, err := readStat("/proc", sl.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	f := memFault("reuse", "", agentapi.Memory{SizeBytes: mib})
	for name, st := range map[string]state{
		"other start time": {FaultID: f.ID, PID: sl.Process.Pid, StartTime: ps.StartTime + 1},
		"no marker":        {FaultID: f.ID, PID: sl.Process.Pid, StartTime: ps.StartTime},
	} {
		if err := d.Revert(context.Background(), f, raw(st)); err != nil {
			t.Fatalf("%s: Revert: %v", name, err)
		}
		if left, _ := d.Remaining(context.Background(), f, raw(st)); left != "" {
			t.Errorf("%s: Remaining = %q for a process that is not a stressor", name, left)
		}
		if gone(sl.Process.Pid, ps.StartTime) {
			t.Fatalf("%s: Revert killed pid %d, which only reused the PID", name, sl.Process.Pid)
		}
		if p, _ := readStat("/proc", sl.Process.Pid); p.State == 'Z' {
			t.Fatalf("%s: Revert killed pid %d", name, sl.Process.Pid)
		}
	}
	if _, err := d.Prune(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if p, err := readStat("/proc", sl.Process.Pid); err != nil || p.State == 'Z' {
		t.Fatal("Prune killed an unmarked process")
	}
}

// testPrune: Prune kills a marked stressor no kept fault owns, keeps the
// kept one; Revert with a state that lost its PID still finds its stressor.
func testPrune(t *testing.T, e testEnv) {
	d := e.driver(t)
	rel := e.newCgroup(t, 256*mib)
	fa := memFault("keep", rel, agentapi.Memory{SizeBytes: 16 * mib})
	fb := memFault("drop", rel, agentapi.Memory{SizeBytes: 16 * mib})
	a, b := apply(t, d, fa), apply(t, d, fb)
	removed, err := d.Prune(context.Background(), []json.RawMessage{raw(a)})
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if len(removed) != 1 || !strings.Contains(removed[0], fmt.Sprintf("pid %d (fault drop)", b.PID)) {
		t.Fatalf("Prune removed %q, want only pid %d", removed, b.PID)
	}
	if !gone(b.PID, b.StartTime) {
		t.Fatal("pruned stressor still exists")
	}
	if gone(a.PID, a.StartTime) {
		t.Fatal("Prune killed the kept stressor")
	}
	// The ledger only has Prepare's state (crash between start and the
	// ledger write): Revert finds the stressor by its fault marker.
	prepared := state{FaultID: a.FaultID, Cgroup: rel, TargetBytes: a.TargetBytes}
	if left, _ := d.Remaining(context.Background(), fa, raw(prepared)); left == "" {
		t.Fatal("Remaining without a PID did not find the stressor by its marker")
	}
	if err := d.Revert(context.Background(), fa, raw(prepared)); err != nil {
		t.Fatal(err)
	}
	if !gone(a.PID, a.StartTime) {
		t.Fatal("Revert without a PID left the stressor")
	}
}

// testAgentDies: a stand-in agent applies a fault and is SIGKILLed; its
// stressor must die too. With leak, another process keeps the stdin
// lifeline open, so only PDEATHSIG can do it.
func testAgentDies(t *testing.T, e testEnv, leak bool) {
	d := e.driver(t) // for Revert at cleanup and Prune
	rel := e.newCgroup(t, 256*mib)
	f := memFault(fmt.Sprintf("orphan-%v", leak), rel, agentapi.Memory{SizeBytes: 16 * mib})
	cfg, _ := json.Marshal(testAgentConfig{CgroupRoot: e.cg.Root, Owner: e.owner, Fault: f, LeakLifeline: leak})
	exe, _ := os.Executable()
	agent := exec.Command(exe, "test-agent", string(cfg))
	agent.Stderr = os.Stderr
	out, _ := agent.StdoutPipe()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("test agent: %v", err)
	}
	var rep testAgentReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil || rep.Error != "" {
		t.Fatalf("test agent said %q", line)
	}
	var st state
	json.Unmarshal(rep.State, &st)
	if rep.SleepPID > 0 {
		sp, _ := readStat("/proc", rep.SleepPID)
		defer func() {
			// Kill the sleep only if it still is the one the agent started.
			killIf(rep.SleepPID, func() bool {
				p, err := readStat("/proc", rep.SleepPID)
				return err == nil && p.StartTime == sp.StartTime
			})
		}()
	}
	t.Cleanup(func() { d.Revert(context.Background(), f, rep.State) })
	if gone(st.PID, st.StartTime) {
		t.Fatal("stressor already gone")
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	agent.Wait()
	took := waitDead(t, st.PID, st.StartTime, 2*time.Second*e.slow)
	t.Logf("stressor %d died %s after its agent (lifeline leaked: %v)", st.PID, took.Round(time.Millisecond), leak)
}

// testStartHonoursContext: a stressor that never reports it started (a
// stand-in that only sleeps) holds Apply until the call's context ends,
// not for StartTimeout, and is killed: its cgroup is empty afterwards.
func testStartHonoursContext(t *testing.T, e testEnv) {
	script := filepath.Join(t.TempDir(), "mute-stressor")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Exe: script, CgroupRoot: e.cg.Root, Owner: e.owner, StartTimeout: time.Minute}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rel := e.newCgroup(t, 256*mib)
	f := memFault("ctx", rel, agentapi.Memory{SizeBytes: 16 * mib})
	prep, err := d.Prepare(context.Background(), &f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.Apply(ctx, f, prep)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || took > 300*time.Millisecond+e.slow*2*time.Second {
		t.Fatalf("Apply with a mute stressor: %v after %v, want the context's error soon after 300ms", err, took)
	}
	t.Logf("Apply gave up %v after the call began (context: 300ms)", took.Round(time.Millisecond))
	if procs, _ := os.ReadFile(filepath.Join(e.cg.Dir(rel), "cgroup.procs")); len(strings.TrimSpace(string(procs))) > 0 {
		t.Fatalf("processes left in the cgroup: %q", procs)
	}
}

// testOwnDeadline: the stressor holds its own deadline (lease + Margin
// from the apply); Renew moves it and answers what is in place; left
// alone it frees the cgroup's memory and exits by itself, and then Renew
// and Remaining find nothing.
func testOwnDeadline(t *testing.T, e testEnv) {
	d := e.driver(t)
	if how, m := d.SelfExpiry(); how != agentapi.SelfExpiryProcess || m != Margin {
		t.Fatalf("SelfExpiry = %s, %v", how, m)
	}
	rel := e.newCgroup(t, 256*mib)
	before, _ := e.cg.Usage(rel)
	f := memFault("own-deadline", rel, agentapi.Memory{SizeBytes: 32 * mib})
	f.LeaseSeconds = 1
	st := apply(t, d, f)
	e.waitUsage(t, rel, before+30*mib, 5*time.Second*e.slow)
	var last time.Time
	for range 4 { // 2s of renewals, past the first lease
		time.Sleep(500 * time.Millisecond)
		left, err := d.Renew(context.Background(), f, raw(st), time.Now().Add(time.Second))
		if err != nil || left == "" {
			t.Fatalf("Renew of a live stressor = %q, %v", left, err)
		}
		last = time.Now()
	}
	took := waitDead(t, st.PID, st.StartTime, 5*time.Second*e.slow)
	since := time.Since(last)
	t.Logf("stressor exited by itself %v after the last renewal (lease 1s + margin %v)", since.Round(time.Millisecond), Margin)
	if since < time.Second || since > 2*time.Second*e.slow {
		t.Fatalf("stressor exited %v after the last renewal (waited %v), want ~1.25s", since, took)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		u, _ := e.cg.Usage(rel)
		if u < before+4*mib {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("cgroup usage %d MiB after the stressor expired", u/mib)
		}
	}
	if left, err := d.Renew(context.Background(), f, raw(st), time.Now().Add(time.Minute)); err != nil || left != "" {
		t.Fatalf("Renew after the stressor expired = %q, %v", left, err)
	}
	if left, err := d.Remaining(context.Background(), f, raw(st)); err != nil || left != "" {
		t.Fatalf("Remaining after the stressor expired = %q, %v", left, err)
	}
	if err := d.Revert(context.Background(), f, raw(st)); err != nil {
		t.Fatal(err)
	}
	f2 := f
	f2.Deadline = time.Time{}
	if _, err := d.Apply(context.Background(), f2, raw(st)); err == nil || !strings.Contains(err.Error(), "deadline and a lease") {
		t.Fatalf("Apply without a deadline: %v", err)
	}
}

func TestHostV1OwnDeadline(t *testing.T) { testOwnDeadline(t, hostV1(t)) }
func TestVMOwnDeadline(t *testing.T)     { testOwnDeadline(t, vmV2(t)) }

func TestHostV1StartHonoursContext(t *testing.T) { testStartHonoursContext(t, hostV1(t)) }
func TestVMStartHonoursContext(t *testing.T)     { testStartHonoursContext(t, vmV2(t)) }

func TestHostV1ReachSizeWithRamp(t *testing.T) { testReachSize(t, hostV1(t)) }
func TestHostV1ReachFraction(t *testing.T)     { testReachFraction(t, hostV1(t)) }
func TestHostV1PIDReuseSafety(t *testing.T)    { testPIDReuse(t, hostV1(t)) }
func TestHostV1Prune(t *testing.T)             { testPrune(t, hostV1(t)) }
func TestHostV1AgentDies(t *testing.T)         { testAgentDies(t, hostV1(t), false) }
func TestHostV1PDeathSigAlone(t *testing.T)    { testAgentDies(t, hostV1(t), true) }

func TestVMReachSizeWithRamp(t *testing.T) { testReachSize(t, vmV2(t)) }
func TestVMReachFraction(t *testing.T)     { testReachFraction(t, vmV2(t)) }
func TestVMPIDReuseSafety(t *testing.T)    { testPIDReuse(t, vmV2(t)) }
func TestVMPrune(t *testing.T)             { testPrune(t, vmV2(t)) }
func TestVMAgentDies(t *testing.T)         { testAgentDies(t, vmV2(t), false) }
func TestVMPDeathSigAlone(t *testing.T)    { testAgentDies(t, vmV2(t), true) }

// TestVMOOMKill: a size above the cgroup's limit gets the stressor
// OOM-killed inside its cgroup; the driver then reports it gone, and the
// fault's revert is a no-op.
func TestVMOOMKill(t *testing.T) {
	e := vmV2(t)
	d := e.driver(t)
	rel := e.newCgroup(t, 64*mib)
	kills0, ok := e.cg.oomKills(rel)
	if !ok {
		t.Fatal("no oom_kill in memory.events")
	}
	f := memFault("oom", rel, agentapi.Memory{SizeBytes: 128 * mib})
	st := apply(t, d, f)
	took := waitDead(t, st.PID, st.StartTime, 30*time.Second)
	kills, _ := e.cg.oomKills(rel)
	if kills <= kills0 {
		t.Fatalf("stressor gone but memory.events oom_kill %d → %d", kills0, kills)
	}
	if left, err := d.Remaining(context.Background(), f, raw(st)); err != nil || left != "" {
		t.Fatalf("Remaining after OOM kill = %q, %v", left, err)
	}
	if err := d.Revert(context.Background(), f, raw(st)); err != nil {
		t.Fatalf("Revert after OOM kill: %v", err)
	}
	t.Logf("stressor OOM-killed %s after apply; oom_kill %d → %d", took.Round(time.Millisecond), kills0, kills)
}

// TestHostV1OOMKill is the same on cgroup v1 (memory.oom_control oom_kill).
func TestHostV1OOMKill(t *testing.T) {
	e := hostV1(t)
	d := e.driver(t)
	rel := e.newCgroup(t, 64*mib)
	kills0, ok := e.cg.oomKills(rel)
	if !ok {
		t.Skip("this kernel's memory.oom_control has no oom_kill counter")
	}
	f := memFault("oom", rel, agentapi.Memory{SizeBytes: 128 * mib})
	st := apply(t, d, f)
	took := waitDead(t, st.PID, st.StartTime, 30*time.Second)
	kills, _ := e.cg.oomKills(rel)
	if kills <= kills0 {
		t.Fatalf("stressor gone but oom_kill %d → %d", kills0, kills)
	}
	if left, err := d.Remaining(context.Background(), f, raw(st)); err != nil || left != "" {
		t.Fatalf("Remaining after OOM kill = %q, %v", left, err)
	}
	if err := d.Revert(context.Background(), f, raw(st)); err != nil {
		t.Fatal(err)
	}
	t.Logf("stressor OOM-killed %s after apply; oom_kill %d → %d", took.Round(time.Millisecond), kills0, kills)
}

// BenchmarkApplyRevert: start a 16 MiB stressor (ramp 0) and revert it.
// Apply returns once the stressor has mapped its memory; revert includes
// the kill, the reap and the marker scan of /proc.
func BenchmarkApplyRevert(b *testing.B) {
	e := testEnv{}
	if os.Getenv("CHAOSD_IN_VM") == "1" {
		e = vmV2(b)
	} else {
		e = hostV1(b)
	}
	d := e.driver(b)
	rel := e.newCgroup(b, 256*mib)
	f := memFault("bench", rel, agentapi.Memory{SizeBytes: 16 * mib})
	prep, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		b.Fatal(err)
	}
	var applyT, revertT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		st, err := d.Apply(context.Background(), f, prep)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := d.Revert(context.Background(), f, st); err != nil {
			b.Fatal(err)
		}
		applyT += t1.Sub(t0)
		revertT += time.Since(t1)
	}
	b.ReportMetric(float64(applyT.Microseconds())/float64(b.N), "apply-µs/op")
	b.ReportMetric(float64(revertT.Microseconds())/float64(b.N), "revert-µs/op")
}
