package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
	"github.com/chaosd/chaosd/agent/ledger"
	"github.com/chaosd/chaosd/agent/partition"
)

// The slow-driver tests prove that the agent never waits on one fault's
// driver to act on another: while one fault's Apply is stuck (ignoring its
// context, the worst case), other faults are injected, renewed, expire and
// are halted on time, and the stuck fault is reverted as soon as its Apply
// returns.

// slowKind is a fault kind only these tests know.
const slowKind agentapi.Kind = "test-slow"

// slowDriver is a stateful fake driver of slowKind: it keeps which faults
// are "in place" and when each was applied and reverted. The Apply of a
// fault listed in block sleeps that long first and ignores its context.
type slowDriver struct {
	block map[string]time.Duration // fault ID → Apply holds this long (set before use)
	gates map[string]chan struct{} // fault ID → Apply holds until it is closed (set before use)
	// revertGates: fault ID → Revert holds until it is closed (set before use).
	revertGates map[string]chan struct{}
	entered     chan string // a blocked Apply began

	mu         sync.Mutex
	inPlace    map[string]bool
	appliedAt  map[string]time.Time // when Apply returned
	revertedAt map[string]time.Time // when Revert removed it
}

func newSlowDriver(block map[string]time.Duration) *slowDriver {
	return &slowDriver{block: block, gates: map[string]chan struct{}{}, revertGates: map[string]chan struct{}{}, entered: make(chan string, len(block)+1),
		inPlace: map[string]bool{}, appliedAt: map[string]time.Time{}, revertedAt: map[string]time.Time{}}
}

func (d *slowDriver) Kind() agentapi.Kind         { return slowKind }
func (d *slowDriver) Probe(context.Context) error { return nil }

func (d *slowDriver) Prepare(_ context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	return json.Marshal(f.ID)
}

func (d *slowDriver) Apply(_ context.Context, f agentapi.Fault, _ json.RawMessage) (json.RawMessage, error) {
	if hold := d.block[f.ID]; hold > 0 {
		d.entered <- f.ID
		time.Sleep(hold) // a driver stuck in a call that does not honour ctx
	}
	if gate := d.gates[f.ID]; gate != nil {
		d.entered <- f.ID
		<-gate
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inPlace[f.ID] = true
	d.appliedAt[f.ID] = time.Now()
	return nil, nil
}

func (d *slowDriver) Revert(_ context.Context, f agentapi.Fault, _ json.RawMessage) error {
	if gate := d.revertGates[f.ID]; gate != nil {
		<-gate
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inPlace[f.ID] {
		delete(d.inPlace, f.ID)
		d.revertedAt[f.ID] = time.Now()
	}
	return nil
}

func (d *slowDriver) Remaining(_ context.Context, f agentapi.Fault, _ json.RawMessage) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inPlace[f.ID] {
		return "test fault " + f.ID, nil
	}
	return "", nil
}

func (d *slowDriver) Prune(_ context.Context, keep []json.RawMessage) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := map[string]bool{}
	for _, raw := range keep {
		var id string
		if json.Unmarshal(raw, &id) == nil {
			kept[id] = true
		}
	}
	var removed []string
	for id := range d.inPlace {
		if !kept[id] {
			delete(d.inPlace, id)
			removed = append(removed, "test fault "+id)
		}
	}
	return removed, nil
}

func (d *slowDriver) left() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id := range d.inPlace {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (d *slowDriver) times(id string) (applied, reverted time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.appliedAt[id], d.revertedAt[id]
}

func slowFault(id string, lease float64) agentapi.Fault {
	return agentapi.Fault{ID: id, RunID: "run-slow", Kind: slowKind, Deadline: time.Now().Add(time.Minute), LeaseSeconds: lease}
}

// nftWorld is where the partition faults of these tests go: the fake
// nftables, or (as root) the real kernel in a network namespace the test
// created.
type nftWorld struct {
	name   string
	driver func(t testing.TB, ctl *ControlPorts) Driver
	tables func(t testing.TB) []string // tagged tables installed
}

func fakeNFT() nftWorld {
	k := partition.NewFake()
	return nftWorld{
		name:   "fake-nftables",
		driver: func(t testing.TB, ctl *ControlPorts) Driver { return fakePartition(t, k, ctl) },
		tables: func(testing.TB) []string { ts, _ := k.ListTagged(context.Background()); return ts },
	}
}

func kernelNFT(t testing.TB) nftWorld {
	nsPath := unnamedNetNS(t)
	return nftWorld{
		name: "nftables",
		driver: func(t testing.TB, ctl *ControlPorts) Driver {
			d, err := partition.New(partition.Config{NetNSPath: nsPath, ExemptTCP: ctl.TCP}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		},
		tables: func(t testing.TB) []string {
			ap, err := partition.NewApplier(nsPath)
			if err != nil {
				t.Fatal(err)
			}
			defer ap.Close()
			ts, err := ap.ListTagged(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return ts
		},
	}
}

// unnamedNetNS creates a network namespace that lives as long as this
// process holds its fd (closed at cleanup) and returns its path.
func unnamedNetNS(t testing.TB) string {
	t.Helper()
	ns := kubepodtest.NewNS(t)
	t.Cleanup(func() { ns.Close() })
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
}

// nftWorlds are the partition backends this machine can test with.
func nftWorlds(t *testing.T) []nftWorld {
	ws := []nftWorld{fakeNFT()}
	if os.Geteuid() == 0 {
		ws = append(ws, kernelNFT(t))
	} else {
		t.Log("not root: partition faults only on the fake nftables")
	}
	return ws
}

// startSlowAgent runs an agent in-process with the partition driver of w
// and slow.
func startSlowAgent(t *testing.T, w nftWorld, slow *slowDriver) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdagt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken), 0o600)
	cfg := Config{Node: "node-slow", Socket: filepath.Join(dir, "a.sock"), TokenFile: tok,
		LedgerPath: filepath.Join(dir, "ledger.jsonl"), Version: "test", Control: new(ControlPorts)}
	return startWith(t, func(ctx context.Context, cfg Config) error {
		return runWith(ctx, cfg, zaptest.NewLogger(t), w.driver(t, cfg.Control), slow)
	}, cfg, dir)
}

// waitFor polls cond every 5ms for up to within.
func waitFor(within time.Duration, cond func() bool) bool {
	for end := time.Now().Add(within); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

type injectResult struct {
	st  agentapi.FaultStatus
	err error
	at  time.Time
}

func statusOf(t *testing.T, h *harness, id string) agentapi.FaultStatus {
	t.Helper()
	all, err := h.client.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Fault.ID == id {
			return s
		}
	}
	return agentapi.FaultStatus{}
}

const (
	stuckFor  = 10 * time.Second // how long the stuck Apply holds
	slowLease = time.Second
)

func testSlowDriver(t *testing.T) {
	for _, w := range nftWorlds(t) {
		t.Run(w.name, func(t *testing.T) { testStuckApply(t, w) })
	}
	t.Run("shutdown", testShutdownWithStuckApply)
}

// testStuckApply: one fault's Apply holds stuckFor; meanwhile another
// fault's lease expires on time, a halt reverts everything else within 1s
// and answers within haltWait, and the stuck fault is reverted as soon as
// its Apply returns.
func testStuckApply(t *testing.T, w nftWorld) {
	slow := newSlowDriver(map[string]time.Duration{"stuck": stuckFor})
	h := startSlowAgent(t, w, slow)
	ctx := context.Background()

	stuckRes := make(chan injectResult, 1)
	go func() {
		st, err := h.client.Inject(ctx, slowFault("stuck", 60))
		stuckRes <- injectResult{st, err, time.Now()}
	}()
	select {
	case <-slow.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck fault's Apply never began")
	}
	stuckSince := time.Now()

	// Other faults go in at once, of the same kind and of another.
	t0 := time.Now()
	lease, err := h.client.Inject(ctx, pfault("lease", slowLease.Seconds(), time.Minute))
	injectTook := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if injectTook > time.Second {
		t.Errorf("inject of another fault took %v while one Apply is stuck", injectTook)
	}
	for _, f := range []agentapi.Fault{slowFault("other", 60), pfault("part", 60, time.Minute)} {
		if _, err := h.client.Inject(ctx, f); err != nil {
			t.Fatalf("inject %s: %v", f.ID, err)
		}
	}
	// The stuck fault answers at once too: not listed, 409 on renew and on
	// a second inject of its ID.
	t0 = time.Now()
	if _, err := h.client.Renew(ctx, "other", time.Minute); err != nil {
		t.Fatalf("renew of another fault: %v", err)
	}
	if _, err := h.client.Renew(ctx, "stuck", time.Minute); apiStatus(err) != 409 {
		t.Errorf("renew of the fault being injected: %v, want 409", err)
	}
	if _, err := h.client.Inject(ctx, slowFault("stuck", 60)); apiStatus(err) != 409 {
		t.Errorf("second inject of the ID in flight: %v, want 409", err)
	}
	if s := statusOf(t, h, "stuck"); s.Fault.ID != "" {
		t.Errorf("the fault being injected is listed: %+v", s)
	}
	if took := time.Since(t0); took > time.Second {
		t.Errorf("renew, duplicate inject and list took %v while one Apply is stuck", took)
	}

	// The lease of "lease" runs out: reverted within lease + 1s by the
	// agent's own timer.
	var leaseSt agentapi.FaultStatus
	if !waitFor(slowLease+2*time.Second, func() bool {
		leaseSt = statusOf(t, h, "lease")
		return leaseSt.State == agentapi.StateReverted
	}) {
		t.Fatalf("lease fault not reverted %v after apply: %+v", time.Since(lease.AppliedAt), leaseSt)
	}
	leaseTook := leaseSt.RevertedAt.Sub(lease.AppliedAt)
	if leaseSt.RevertReason != agentapi.ReasonLease || !leaseSt.Verified || leaseTook > slowLease+time.Second {
		t.Errorf("lease fault: reason %q verified %v after %v, want %q, verified, within %v",
			leaseSt.RevertReason, leaseSt.Verified, leaseTook, agentapi.ReasonLease, slowLease+time.Second)
	}
	if ts := w.tables(t); len(ts) != 1 || ts[0] != partition.TableName("part") {
		t.Errorf("tables after the lease expiry: %v, want only part's", ts)
	}

	// Halt: everything not stuck is reverted at once; the answer names
	// the stuck fault and comes within haltWait.
	haltAt := time.Now()
	_, err = h.client.Halt(ctx)
	haltTook := time.Since(haltAt)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(ae.Message, "stuck") {
		t.Errorf("halt with a stuck apply: %v, want 500 naming the stuck fault", err)
	}
	if haltTook > haltWait+time.Second {
		t.Errorf("halt answered after %v, want within %v", haltTook, haltWait+time.Second)
	}
	var haltReverts []time.Duration
	for _, id := range []string{"other", "part"} {
		s := statusOf(t, h, id)
		took := s.RevertedAt.Sub(haltAt)
		haltReverts = append(haltReverts, took)
		if s.State != agentapi.StateReverted || s.RevertReason != agentapi.ReasonHalt || !s.Verified || took > time.Second {
			t.Errorf("%s after halt: %s (%s) verified %v, %v after the halt; want reverted by halt, verified, within 1s",
				id, s.State, s.RevertReason, s.Verified, took)
		}
	}
	if _, rev := slow.times("other"); rev.IsZero() || rev.Sub(haltAt) > time.Second {
		t.Errorf("fake driver: other reverted %v after the halt", rev.Sub(haltAt))
	}
	if ts := w.tables(t); len(ts) != 0 {
		t.Errorf("tables after halt: %v", ts)
	}
	if left := slow.left(); len(left) != 0 {
		t.Errorf("test faults in place after halt: %v (the stuck one is not applied yet)", left)
	}

	// The stuck Apply returns: the fault is reverted at once, and the
	// inject answers 409 with its status.
	var res injectResult
	select {
	case res = <-stuckRes:
	case <-time.After(stuckFor + 5*time.Second):
		t.Fatal("the stuck inject never answered")
	}
	applied, reverted := slow.times("stuck")
	stuckRevert := reverted.Sub(applied)
	if applied.IsZero() || reverted.IsZero() || stuckRevert > time.Second {
		t.Errorf("stuck fault: applied %v, reverted %v after its Apply returned; want within 1s", applied, stuckRevert)
	}
	if !errors.As(res.err, &ae) || ae.Status != 409 || ae.Fault == nil || ae.Fault.State != agentapi.StateReverted ||
		ae.Fault.RevertReason != agentapi.ReasonHalt || !ae.Fault.Verified {
		t.Errorf("answer to the stuck inject: %v (status %+v), want 409 with the fault reverted by the halt and verified", res.err, ae.Fault)
	}
	if s := statusOf(t, h, "stuck"); s.State != agentapi.StateReverted || s.RevertReason != agentapi.ReasonHalt {
		t.Errorf("stuck fault listed as %+v", s)
	}
	if left := slow.left(); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	all, _ := h.client.List(ctx)
	for _, s := range all {
		if s.State == agentapi.StateActive {
			t.Errorf("still active: %+v", s)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if ts := w.tables(t); len(ts) != 0 {
		t.Errorf("tables after stop: %v", ts)
	}
	t.Logf("%s: with one Apply stuck for %v: inject of another fault %v; lease %v fault reverted %v after apply; "+
		"halt answered in %v (other faults reverted %v after it); stuck fault reverted %v after its Apply returned (%v after it began)",
		w.name, stuckFor, injectTook.Round(time.Microsecond), slowLease, leaseTook.Round(time.Millisecond),
		haltTook.Round(time.Millisecond), roundAll(haltReverts), stuckRevert.Round(time.Microsecond),
		reverted.Sub(stuckSince).Round(time.Millisecond))
}

// testShutdownWithStuckApply: the agent stops (SIGTERM, ctx end) while
// one Apply is stuck: the other faults are reverted at once, the stuck one
// as soon as its Apply returns, and Run returns then, within
// shutdownRevert; its inject answers 503.
func testShutdownWithStuckApply(t *testing.T) {
	const hold = 2 * time.Second
	slow := newSlowDriver(map[string]time.Duration{"stuck": hold})
	w := fakeNFT()
	h := startSlowAgent(t, w, slow)
	ctx := context.Background()
	stuckRes := make(chan injectResult, 1)
	go func() {
		st, err := h.client.Inject(ctx, slowFault("stuck", 60))
		stuckRes <- injectResult{st, err, time.Now()}
	}()
	<-slow.entered
	for _, f := range []agentapi.Fault{slowFault("other", 60), pfault("part", 60, time.Minute)} {
		if _, err := h.client.Inject(ctx, f); err != nil {
			t.Fatalf("inject %s: %v", f.ID, err)
		}
	}
	stopAt := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	stopTook := time.Since(stopAt)
	_, otherRev := slow.times("other")
	if otherRev.IsZero() || otherRev.Sub(stopAt) > time.Second {
		t.Errorf("other fault reverted %v after the stop began", otherRev.Sub(stopAt))
	}
	applied, reverted := slow.times("stuck")
	if applied.IsZero() || reverted.IsZero() || reverted.Sub(applied) > time.Second {
		t.Errorf("stuck fault: applied %v, reverted %v after its Apply returned", applied, reverted.Sub(applied))
	}
	if left := slow.left(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if ts := w.tables(t); len(ts) != 0 {
		t.Errorf("tables left: %v", ts)
	}
	res := <-stuckRes
	if apiStatus(res.err) != 503 {
		t.Errorf("answer to the stuck inject at shutdown: %v, want 503", res.err)
	}
	data, _ := os.ReadFile(h.cfg.LedgerPath)
	if len(strings.TrimSpace(string(data))) != 0 {
		t.Errorf("ledger not empty after shutdown: %s", data)
	}
	t.Logf("shutdown with one Apply stuck for %v: Run returned after %v; other fault reverted %v after the stop began; "+
		"stuck fault reverted %v after its Apply returned",
		hold, stopTook.Round(time.Millisecond), otherRev.Sub(stopAt).Round(time.Millisecond), reverted.Sub(applied).Round(time.Microsecond))
}

// TestCompactionKeepsInFlightIntent: a ledger compaction while a fault's
// Apply runs keeps its intent (a crash then would still revert it), and
// the applied record that follows lands in the compacted ledger.
func TestCompactionKeepsInFlightIntent(t *testing.T) {
	slow := newSlowDriver(nil)
	gate := make(chan struct{})
	slow.gates["held"] = gate
	h := startSlowAgent(t, fakeNFT(), slow)
	ctx := context.Background()
	res := make(chan injectResult, 1)
	go func() {
		st, err := h.client.Inject(ctx, slowFault("held", 60))
		res <- injectResult{st, err, time.Now()}
	}()
	<-slow.entered
	for i := 0; i < compactEvery; i++ {
		id := fmt.Sprintf("c%d", i)
		if _, err := h.client.Inject(ctx, pfault(id, 60, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Revert(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// appliedInLedger fails the test unless the ledger holds exactly the
	// held fault, not reverted.
	appliedInLedger := func() bool {
		data, _ := os.ReadFile(h.cfg.LedgerPath)
		es, _ := ledger.Replay(data)
		if len(es) != 1 || es[0].Fault.ID != "held" || es[0].Reverted {
			t.Fatalf("ledger after %d reverts with one apply in flight: %+v", compactEvery, es)
		}
		return es[0].Applied
	}
	if appliedInLedger() {
		t.Fatal("ledger says applied before Apply returned")
	}
	close(gate)
	if r := <-res; r.err != nil || r.st.State != agentapi.StateActive {
		t.Fatalf("inject: %+v %v", r.st, r.err)
	}
	if !appliedInLedger() {
		t.Fatal("ledger lost the applied record")
	}
}

// TestHaltWithStuckRevert: a halt answers within haltWait when one
// fault's Revert is stuck, naming it, reverts the others at once, and
// that fault ends reverted once its Revert returns; renew answers 410
// meanwhile, at once.
func TestHaltWithStuckRevert(t *testing.T) {
	slow := newSlowDriver(nil)
	gate := make(chan struct{})
	slow.revertGates["stuck"] = gate
	h := startSlowAgent(t, fakeNFT(), slow)
	ctx := context.Background()
	for _, f := range []agentapi.Fault{slowFault("stuck", 60), slowFault("other", 60)} {
		if _, err := h.client.Inject(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	haltAt := time.Now()
	_, err := h.client.Halt(ctx)
	haltTook := time.Since(haltAt)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(ae.Message, "stuck") || !strings.Contains(ae.Message, "revert") {
		t.Errorf("halt with a stuck revert: %v, want 500 naming the fault's revert", err)
	}
	if haltTook > haltWait+time.Second {
		t.Errorf("halt answered after %v", haltTook)
	}
	if _, rev := slow.times("other"); rev.IsZero() || rev.Sub(haltAt) > time.Second {
		t.Errorf("other fault reverted %v after the halt", rev.Sub(haltAt))
	}
	t0 := time.Now()
	if _, err := h.client.Renew(ctx, "stuck", time.Minute); apiStatus(err) != 410 || time.Since(t0) > time.Second {
		t.Errorf("renew of the fault being reverted: %v after %v, want 410 at once", err, time.Since(t0))
	}
	close(gate)
	var st agentapi.FaultStatus
	if !waitFor(2*time.Second, func() bool {
		st = statusOf(t, h, "stuck")
		return st.State == agentapi.StateReverted
	}) || st.RevertReason != agentapi.ReasonHalt || !st.Verified {
		t.Fatalf("stuck fault after its Revert returned: %+v", st)
	}
	if left := slow.left(); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	t.Logf("halt with one Revert stuck answered in %v", haltTook.Round(time.Millisecond))
}

// TestControlPortExempt: the port the agent's TCP listener got (":0") is
// exempt in every partition plan: published through Config.Control.
func TestControlPortExempt(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, func(c *Config) { c.TCPAddr, c.InsecurePlaintext = "127.0.0.1:0", true })
	ports := h.cfg.Control.TCP()
	if len(ports) != 1 || ports[0] == 0 {
		t.Fatalf("published control ports: %v", ports)
	}
	if _, err := h.client.Inject(context.Background(), pfault("ex", 60, time.Minute)); err != nil {
		t.Fatal(err)
	}
	p, ok := k.Plan(partition.TableName("ex"))
	if !ok {
		t.Fatal("no table")
	}
	want := fmt.Sprintf("tcp dport %d accept", ports[0])
	if !strings.Contains(p.String(), want) {
		t.Fatalf("plan does not exempt the control port (%q):\n%s", want, p)
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// TestSlowDriverDoesNotBlockOtherFaults runs on the host (as root also
// with the kernel's nftables in a namespace it creates).
func TestSlowDriverDoesNotBlockOtherFaults(t *testing.T) { testSlowDriver(t) }

// TestVMSlowDriverDoesNotBlockOtherFaults is the same on the stock kernel
// under QEMU (one emulated core: the timing bounds hold there too).
func TestVMSlowDriverDoesNotBlockOtherFaults(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("the same test on the stock kernel under QEMU: run via hack/vmtest.sh (make test does)")
	}
	testSlowDriver(t)
}
