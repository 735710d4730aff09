package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
	"github.com/chaosd/chaosd/lab/petclinic"
)

// The random-kill tests prove the agent's central promise: whatever moment
// it dies at, during inject, hold or revert of any fault kind, a restarted
// agent leaves no tagged kernel state, no stressor process and no Spring
// Boot assault behind. And: faults whose lease is not renewed are reverted
// within lease + 1s by the agent alone.

// randomKillTrials is the number of trials (at least 50 in CI). Override
// with CHAOSD_RANDOM_KILL_TRIALS.
func randomKillTrials() int {
	if n, err := strconv.Atoi(os.Getenv("CHAOSD_RANDOM_KILL_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 60
}

// world is what the faults act on: a network namespace with a routed
// veth (for partition and latency), a memory cgroup (for memory) and a
// Spring Boot stand-in on loopback (for exception and app-latency).
type world struct {
	t      testing.TB
	nsPath string // visible to the agent process
	nlh    *netlink.Handle
	cgroup string // relative to the memory hierarchy's root
	cgDir  string
	// svcs are Spring Boot stand-ins: [0] for exception, [1] for
	// app-latency (one Chaos Monkey fault per service at a time).
	svcs     [2]*httptest
	kinds    []agentapi.Kind
	monkeyOK [2]string // actuator settings before any fault
	statusOK [2]int
}

type httptest struct {
	url string
	srv *http.Server
}

func newWorld(t testing.TB, caps map[string]bool) *world {
	t.Helper()
	w := &world{t: t}

	// An unnamed namespace that lives as long as this process holds its fd;
	// the agent process opens it through /proc/<pid>/fd/<fd>.
	ns := kubepodtest.NewNS(t)
	t.Cleanup(func() { ns.Close() })
	w.nsPath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
	var err error
	w.nlh, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.nlh.Close)
	w.kinds = []agentapi.Kind{agentapi.KindPartition}
	if caps[string(agentapi.KindLatency)] {
		la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rk0", TxQLen: 1000}, PeerName: "rk1"}
		if err := w.nlh.LinkAdd(la); err != nil {
			t.Fatalf("veth: %v", err)
		}
		for _, name := range []string{"lo", "rk0", "rk1"} {
			l, _ := w.nlh.LinkByName(name)
			_ = w.nlh.LinkSetUp(l)
		}
		l, _ := w.nlh.LinkByName("rk0")
		addr, _ := netlink.ParseAddr("10.99.7.1/24")
		if err := w.nlh.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		w.kinds = append(w.kinds, agentapi.KindLatency)
	}

	if caps[string(agentapi.KindMemory)] {
		w.cgroup, w.cgDir = makeTestCgroup(t)
		w.kinds = append(w.kinds, agentapi.KindMemory)
	}

	// Spring Boot stand-ins with the Chaos Monkey actuator on loopback.
	for i := range w.svcs {
		s, err := petclinic.New(petclinic.DefaultConfig(petclinic.CustomersService), zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: s.Handler()}
		go srv.Serve(ln) //nolint:errcheck
		t.Cleanup(func() { srv.Close(); s.ChaosMonkey.Close() })
		w.svcs[i] = &httptest{url: "http://" + ln.Addr().String(), srv: srv}
		w.statusOK[i], w.monkeyOK[i] = w.monkey(i)
	}
	w.kinds = append(w.kinds, agentapi.KindException, agentapi.KindAppLatency)
	return w
}

// makeTestCgroup creates a memory cgroup with a 256 MiB limit, v2 or v1.
func makeTestCgroup(t testing.TB) (rel, dir string) {
	t.Helper()
	rel = fmt.Sprintf("chaosd-rk-%d", os.Getpid())
	root, limitFile := "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		root, limitFile = "/sys/fs/cgroup", "memory.max"
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644)
	}
	dir = filepath.Join(root, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("processes left in the test cgroup: %s", b)
		}
		_ = os.Remove(dir)
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.Itoa(256<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	return rel, dir
}

func (w *world) monkey(i int) (int, string) {
	w.t.Helper()
	get := func(p string) (int, string) {
		resp, err := http.Get(w.svcs[i].url + "/actuator/chaosmonkey" + p)
		if err != nil {
			w.t.Fatalf("actuator: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/status")
	_, assaults := get("/assaults")
	_, watchers := get("/watchers")
	return code, assaults + watchers
}

func (w *world) fault(kind agentapi.Kind, id string, lease time.Duration) agentapi.Fault {
	f := agentapi.Fault{ID: id, RunID: "rk", Kind: kind, Deadline: time.Now().Add(time.Minute), LeaseSeconds: lease.Seconds()}
	switch kind {
	case agentapi.KindPartition:
		f.Partition = &agentapi.Partition{CIDRs: []string{"10.98.0.0/16"}}
	case agentapi.KindLatency:
		f.Latency = &agentapi.Latency{CIDRs: []string{"10.99.7.0/24"}, DelayMs: 50}
	case agentapi.KindMemory:
		f.Memory = &agentapi.Memory{Cgroup: w.cgroup, SizeBytes: 16 << 20, RampSeconds: 0.2}
	case agentapi.KindException:
		f.SpringBoot = &agentapi.SpringBoot{URL: w.svcs[0].url, Level: 2}
	case agentapi.KindAppLatency:
		f.SpringBoot = &agentapi.SpringBoot{URL: w.svcs[1].url, Level: 1, LatencyRangeStartMs: 10, LatencyRangeEndMs: 20}
	}
	return f
}

// leftovers lists every trace of any fault: tagged nftables tables and
// qdiscs, stressor processes, a Spring Boot actuator not as it was.
func (w *world) leftovers() []string {
	w.t.Helper()
	var out []string
	for _, tb := range taggedTables(w.t, w.nsPath) {
		out = append(out, "nftables table "+tb)
	}
	qs, err := w.nlh.QdiscList(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, q := range qs {
		if maj := q.Attrs().Handle >> 16; maj >= 0xCD00 && maj <= 0xCDFF {
			out = append(out, fmt.Sprintf("qdisc %s %x: on link %d", q.Type(), maj, q.Attrs().LinkIndex))
		}
	}
	for _, pid := range stressorPIDs() {
		out = append(out, "stressor process "+pid)
	}
	for i := range w.svcs {
		if code, m := w.monkey(i); code != w.statusOK[i] || m != w.monkeyOK[i] {
			out = append(out, fmt.Sprintf("Chaos Monkey of service %d changed: status %d, %s", i, code, m))
		}
	}
	return out
}

func stressorPIDs() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(StressorCommand)) && bytes.Contains(b, []byte("rk.")) {
			out = append(out, e.Name())
		}
	}
	return out
}

// killableAgent is the agent as a separate process acting on the world's
// namespace from the root namespace (so it sees the cgroup hierarchy).
type killableAgent struct {
	t      testing.TB
	cfg    Config
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	client *agentclient.Client
}

func newKillableAgent(t testing.TB, w *world) *killableAgent {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Node: fmt.Sprintf("rk-%d", os.Getpid()), Socket: filepath.Join(dir, "a.sock"), TokenFile: tok,
		LedgerPath: filepath.Join(dir, "ledger.jsonl"), NetNSPath: w.nsPath, Version: "test"}
	c, _ := agentclient.NewClient("unix://"+cfg.Socket, testToken)
	k := &killableAgent{t: t, cfg: cfg, client: c}
	t.Cleanup(func() {
		if k.cmd != nil && k.cmd.ProcessState == nil {
			_ = k.cmd.Process.Kill()
			_ = k.cmd.Wait()
		}
	})
	return k
}

func (k *killableAgent) start() agentapi.Status {
	k.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(k.cfg)
	k.cmd = exec.Command(exe, "-test.run=^$")
	k.cmd.Env = append(os.Environ(), childEnv+"=1", childCfgEnv+"="+string(b))
	k.stderr = &bytes.Buffer{}
	k.cmd.Stderr = k.stderr
	if err := k.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := k.client.Status(context.Background()); err == nil {
			return st
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("agent not ready:\n%s", k.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (k *killableAgent) kill9() {
	_ = k.cmd.Process.Signal(syscall.SIGKILL) // by PID: the process this test started
	_ = k.cmd.Wait()
}

func (k *killableAgent) stop() {
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	if err := k.cmd.Wait(); err != nil {
		k.t.Errorf("agent exit on SIGTERM: %v\n%s", err, k.stderr)
	}
}

// startWorld builds a world for every fault kind this kernel supports (the
// agent says which itself) and starts an agent process on it.
func startWorld(t testing.TB) (*world, *killableAgent) {
	t.Helper()
	w0 := newWorld(t, nil)
	k0 := newKillableAgent(t, w0)
	st := k0.start()
	k0.stop()
	w := newWorld(t, st.Capabilities)
	t.Logf("kinds covered: %v (unavailable here: %v)", w.kinds, st.Unavailable)
	if len(w.kinds) < 3 {
		t.Fatalf("too few fault kinds to test: %v", w.kinds)
	}
	k := newKillableAgent(t, w)
	k.start()
	return w, k
}

func testRandomKill(t *testing.T) {
	requireRootOnly(t)
	w, k := startWorld(t)
	stages := []string{"inject", "hold", "revert"}
	trials := randomKillTrials()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	ctx := context.Background()
	for i := 0; i < trials; i++ {
		kind := w.kinds[i%len(w.kinds)]
		stage := stages[(i/len(w.kinds))%len(stages)]
		f := w.fault(kind, fmt.Sprintf("rk.%d.%s", i, kind), time.Minute)
		// Kill somewhere within the first ~30ms of the stage: inject and
		// revert take a few to a few tens of milliseconds.
		delay := time.Duration(rng.IntN(30_000)) * time.Microsecond
		switch stage {
		case "inject":
			go k.client.Inject(ctx, f) //nolint:errcheck
			time.Sleep(delay)
		case "hold":
			if _, err := k.client.Inject(ctx, f); err != nil {
				t.Fatalf("trial %d: inject %s: %v\n%s", i, kind, err, k.stderr)
			}
			time.Sleep(delay)
		case "revert":
			if _, err := k.client.Inject(ctx, f); err != nil {
				t.Fatalf("trial %d: inject %s: %v\n%s", i, kind, err, k.stderr)
			}
			go k.client.Revert(ctx, f.ID) //nolint:errcheck
			time.Sleep(delay)
		}
		k.kill9()
		k.start() // start-up recovery runs before the API answers
		if left := w.leftovers(); len(left) > 0 {
			t.Fatalf("trial %d (%s, SIGKILL %s into %s): left behind after restart: %v\nagent log:\n%s",
				i, kind, delay, stage, left, k.stderr)
		}
	}
	k.stop()
	if left := w.leftovers(); len(left) > 0 {
		t.Fatalf("left behind after shutdown: %v", left)
	}
	t.Logf("%d trials over %d kinds and 3 stages: nothing left behind", trials, len(w.kinds))
}

func testLeaseExpiryAllKinds(t *testing.T) {
	requireRootOnly(t)
	w, k := startWorld(t)
	defer k.stop()
	ctx := context.Background()
	const lease = time.Second
	var ids []string
	start := time.Now()
	for _, kind := range w.kinds {
		f := w.fault(kind, "rk.lease."+string(kind), lease)
		if _, err := k.client.Inject(ctx, f); err != nil {
			t.Fatalf("inject %s: %v", kind, err)
		}
		ids = append(ids, f.ID)
	}
	// Nobody renews: the controller is gone. Every fault must be reverted
	// by lease + 1s after it was applied.
	deadline := start.Add(lease + time.Second)
	for {
		all, err := k.client.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, s := range all {
			if s.State == agentapi.StateActive {
				active++
			}
		}
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fault(s) still active %s after apply with a %s lease: %+v", active, time.Since(start), lease, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	all, _ := k.client.List(ctx)
	for _, s := range all {
		if s.RevertReason != agentapi.ReasonLease || !s.Verified {
			t.Errorf("fault %s: reason %q verified %v, want lease-expired and verified", s.Fault.ID, s.RevertReason, s.Verified)
		}
	}
	if left := w.leftovers(); len(left) > 0 {
		t.Fatalf("left behind after lease expiry: %v", left)
	}
	t.Logf("%d faults (%v) reverted by lease expiry within %s (lease %s)", len(ids), w.kinds, took.Round(time.Millisecond), lease)
}

// testRevertAgain: a crash of the node can lose revert records not yet
// on disk (a node-bound fault's are written without waiting for the
// disk); the next start then reverts those faults again. For every kind
// that second revert finds nothing, succeeds, verifies, and changes
// nothing (no actuator setting written back over the service's).
func testRevertAgain(t *testing.T) {
	requireRootOnly(t)
	w, k := startWorld(t)
	ctx := context.Background()
	var ids []string
	for _, kind := range w.kinds {
		f := w.fault(kind, "rk.again."+string(kind), time.Minute)
		if _, err := k.client.Inject(ctx, f); err != nil {
			t.Fatalf("inject %s: %v\n%s", kind, err, k.stderr)
		}
		if st, err := k.client.Revert(ctx, f.ID); err != nil || !st.Verified {
			t.Fatalf("revert %s: %+v %v", kind, st, err)
		}
		ids = append(ids, f.ID)
	}
	k.kill9()
	// What the crash lost: every revert record.
	data, err := os.ReadFile(k.cfg.LedgerPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `"op":"reverted"`) {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(k.cfg.LedgerPath, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	k.start()
	defer k.stop()
	all, err := k.client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := map[string]bool{}
	for _, s := range all {
		if s.RevertReason == agentapi.ReasonStartup && s.State == agentapi.StateReverted && s.Verified && s.Error == "" {
			again[s.Fault.ID] = true
		}
	}
	for _, id := range ids {
		if !again[id] {
			t.Errorf("fault %s: not reverted again at start-up, verified and without error: %+v", id, all)
		}
	}
	if strings.Contains(k.stderr.String(), `"level":"error"`) || strings.Contains(k.stderr.String(), "\tERROR\t") {
		t.Errorf("the second reverts logged errors:\n%s", k.stderr)
	}
	if left := w.leftovers(); len(left) > 0 {
		t.Fatalf("after reverting again: %v", left)
	}
	t.Logf("%d kinds (%v) reverted a second time at start-up: harmless", len(ids), w.kinds)
}

// TestIntegrationRevertAgainIsHarmless: every kind this host supports.
func TestIntegrationRevertAgainIsHarmless(t *testing.T) { testRevertAgain(t) }

// TestVMRevertAgainIsHarmless: the same on the stock kernel (latency).
func TestVMRevertAgainIsHarmless(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("covers latency and cgroup v2: run via hack/vmtest.sh (make test does)")
	}
	testRevertAgain(t)
}

func requireRootOnly(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, cgroups and nftables")
	}
}

// TestIntegrationRandomKill runs the random-kill trials on this host's
// kernel (every kind it supports).
func TestIntegrationRandomKill(t *testing.T) { testRandomKill(t) }

// TestIntegrationLeaseExpiryRevertsEveryKind: lease + 1s, every kind.
func TestIntegrationLeaseExpiryRevertsEveryKind(t *testing.T) { testLeaseExpiryAllKinds(t) }

// TestVMRandomKill runs the same trials on the stock kernel under QEMU,
// where latency (netem) and cgroup v2 are available.
func TestVMRandomKill(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("covers latency and cgroup v2: run via hack/vmtest.sh (make test does)")
	}
	testRandomKill(t)
}

// TestVMLeaseExpiryRevertsEveryKind is the lease test on the stock kernel.
func TestVMLeaseExpiryRevertsEveryKind(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("covers latency and cgroup v2: run via hack/vmtest.sh (make test does)")
	}
	testLeaseExpiryAllKinds(t)
}

// BenchmarkInjectRevert measures, per fault kind this kernel supports,
// the time from the API call to the fault being in place, of one lease
// renewal, and from the revert call to the fault being gone and verified,
// on one node: the agent as its own process, over its unix socket (real
// HTTP), ledger writes included. It reports medians over the iterations:
// inject-p50-µs, renew-p50-µs, revert-p50-µs (revert and verify) and
// total-p50-µs (inject + revert of one iteration, the renewal not
// counted): for partition, the figure to hold against
// partition.BenchmarkPartitionFloor's total-p50-µs.
func BenchmarkInjectRevert(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: network namespaces, cgroups and nftables")
	}
	w, k := startWorld(b)
	defer k.stop()
	ctx := context.Background()
	for _, kind := range w.kinds {
		b.Run(string(kind), func(b *testing.B) {
			inject := make([]time.Duration, 0, b.N)
			renew := make([]time.Duration, 0, b.N)
			revert := make([]time.Duration, 0, b.N)
			total := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				f := w.fault(kind, fmt.Sprintf("rk.bench.%s.%d", kind, i), time.Minute)
				t0 := time.Now()
				if _, err := k.client.Inject(ctx, f); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				// A renewal verifies the fault and, for partition, latency
				// and memory, moves its own expiry (kernel or stressor).
				if _, err := k.client.Renew(ctx, f.ID, time.Minute); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				st, err := k.client.Revert(ctx, f.ID)
				if err != nil || !st.Verified {
					b.Fatal(st, err)
				}
				t3 := time.Now()
				inject = append(inject, t1.Sub(t0))
				renew = append(renew, t2.Sub(t1))
				revert = append(revert, t3.Sub(t2))
				total = append(total, t1.Sub(t0)+t3.Sub(t2))
			}
			b.ReportMetric(p50µs(inject), "inject-p50-µs")
			b.ReportMetric(p50µs(renew), "renew-p50-µs")
			b.ReportMetric(p50µs(revert), "revert-p50-µs")
			b.ReportMetric(p50µs(total), "total-p50-µs")
		})
	}
}

// p50µs is the median of ds in microseconds.
func p50µs(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return float64(m.Nanoseconds()) / 1e3
}
