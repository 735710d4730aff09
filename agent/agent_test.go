package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/agent/ledger"
	"github.com/chaosd/chaosd/agent/memory"
	"github.com/chaosd/chaosd/agent/nftexpiry"
	"github.com/chaosd/chaosd/agent/partition"
)

func TestMain(m *testing.M) {
	// The memory driver starts its stressor as this binary in the hidden
	// mode, as chaosd's main does.
	if len(os.Args) > 1 && os.Args[1] == StressorCommand {
		os.Exit(memory.StressorMain(os.Args[2:]))
	}
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

const testToken = "s3cret-token"

type harness struct {
	dir    string
	cfg    Config
	client *agentclient.Client
	stop   func() error
}

// startAgent runs the agent in-process with the partition driver on the
// fake nftables k until the test ends.
func startAgent(t testing.TB, k *partition.Fake, mod func(*Config)) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdagt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken+"\n"), 0o600)
	cfg := Config{Node: "node-1", Socket: filepath.Join(dir, "a.sock"), TokenFile: tok,
		LedgerPath: filepath.Join(dir, "ledger.jsonl"), Version: "test", Control: new(ControlPorts)}
	if mod != nil {
		mod(&cfg)
	}
	return startWith(t, func(ctx context.Context, cfg Config) error {
		return runWith(ctx, cfg, zaptest.NewLogger(t), fakePartition(t, k, cfg.Control))
	}, cfg, dir)
}

// fakePartition is the partition driver on the fake nftables k, exempting
// the control channel's ports published in ctl.
func fakePartition(t testing.TB, k *partition.Fake, ctl *ControlPorts) Driver {
	t.Helper()
	d, err := partition.New(partition.Config{Backend: k, ExemptTCP: ctl.TCP}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runWith builds an agent with drivers and runs it until ctx ends.
func runWith(ctx context.Context, cfg Config, lg *zap.Logger, drivers ...Driver) error {
	a, err := New(cfg, lg, drivers...)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func startWith(t testing.TB, runFn func(context.Context, Config) error, cfg Config, dir string) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFn(ctx, cfg) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	c, err := agentclient.NewClient("unix://"+cfg.Socket, testToken)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			select {
			case e := <-done:
				t.Fatalf("agent exited: %v", e)
			default:
			}
			t.Fatalf("agent not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &harness{dir: dir, cfg: cfg, client: c, stop: stop}
}

func pfault(id string, lease float64, deadline time.Duration) agentapi.Fault {
	return agentapi.Fault{ID: id, RunID: "run-1", Kind: agentapi.KindPartition,
		Partition: &agentapi.Partition{CIDRs: []string{"192.0.2.0/24"}},
		Deadline:  time.Now().Add(deadline), LeaseSeconds: lease}
}

func apiStatus(err error) int {
	var ae *agentapi.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestAuth(t *testing.T) {
	h := startAgent(t, partition.NewFake(), nil)
	ctx := context.Background()
	for _, tc := range []struct{ name, header string }{
		{"no token", ""},
		{"wrong token", "Bearer nope"},
		{"token prefix", "Bearer " + testToken[:4]},
		{"basic scheme", "Basic " + testToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/status", "/v1/faults", "/healthz"} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := unixHTTP(h.cfg.Socket).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", path, resp.StatusCode)
				}
			}
		})
	}
	bad, _ := agentclient.NewClient("unix://"+h.cfg.Socket, "wrong")
	if _, err := bad.Inject(ctx, pfault("x", 5, time.Minute)); apiStatus(err) != 401 {
		t.Fatalf("inject with wrong token: %v", err)
	}
	if _, err := h.client.Status(ctx); err != nil {
		t.Fatalf("right token: %v", err)
	}
	fi, err := os.Stat(h.cfg.Socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
}

func TestValidation(t *testing.T) {
	h := startAgent(t, partition.NewFake(), nil)
	ctx := context.Background()
	mk := func(mod func(*agentapi.Fault)) agentapi.Fault { f := pfault("v", 5, time.Minute); mod(&f); return f }
	for _, tc := range []struct {
		name, field string
		f           agentapi.Fault
	}{
		{"no id", "id", mk(func(f *agentapi.Fault) { f.ID = "" })},
		{"kind", "kind", mk(func(f *agentapi.Fault) { f.Kind = "latency" })},
		{"past deadline", "deadline", mk(func(f *agentapi.Fault) { f.Deadline = time.Now().Add(-time.Second) })},
		{"zero lease", "leaseSeconds", mk(func(f *agentapi.Fault) { f.LeaseSeconds = 0 })},
		{"negative lease", "leaseSeconds", mk(func(f *agentapi.Fault) { f.LeaseSeconds = -1 })},
		{"no partition", "partition", mk(func(f *agentapi.Fault) { f.Partition = nil })},
		{"bad cidr", "partition.cidrs[0]", mk(func(f *agentapi.Fault) { f.Partition.CIDRs = []string{"x"} })},
		{"bad direction", "partition.direction", mk(func(f *agentapi.Fault) { f.Partition.Direction = "sideways" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client.Inject(ctx, tc.f)
			var ae *agentapi.APIError
			if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, tc.field) {
				t.Fatalf("err = %v, want 400 naming %q", err, tc.field)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	ctx := context.Background()
	st, err := h.client.Inject(ctx, pfault("run-1.p", 30, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != agentapi.StateActive || !k.Has("run-1.p") || st.Fault.Partition.Direction != "both" {
		t.Fatalf("after inject: %+v, table %v", st, k.Has("run-1.p"))
	}
	if _, err := h.client.Inject(ctx, pfault("run-1.p", 30, time.Minute)); apiStatus(err) != 409 {
		t.Fatalf("duplicate inject: %v", err)
	}
	s, err := h.client.Status(ctx)
	if err != nil || len(s.Faults) != 1 || !s.Capabilities[string(agentapi.KindPartition)] || s.Node != "node-1" {
		t.Fatalf("status: %+v %v", s, err)
	}
	if _, err := h.client.Renew(ctx, "nope", time.Second); apiStatus(err) != 404 {
		t.Fatalf("renew unknown: %v", err)
	}
	if _, err := h.client.Revert(ctx, "nope"); apiStatus(err) != 404 {
		t.Fatalf("revert unknown: %v", err)
	}
	st, err = h.client.Revert(ctx, "run-1.p")
	if err != nil || st.State != agentapi.StateReverted || !st.Verified || st.RevertReason != agentapi.ReasonRequested || k.Has("run-1.p") {
		t.Fatalf("revert: %+v %v", st, err)
	}
	if st2, err := h.client.Revert(ctx, "run-1.p"); err != nil || st2.RevertedAt != st.RevertedAt {
		t.Fatalf("second revert not idempotent: %+v %v", st2, err)
	}
	st, err = h.client.Renew(ctx, "run-1.p", time.Second)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Status != 410 || ae.Fault == nil || ae.Fault.State != agentapi.StateReverted || st.State != agentapi.StateReverted {
		t.Fatalf("renew reverted: %+v %v", st, err)
	}
	// Halt reverts all; the list keeps the reverted ones.
	h.client.Inject(ctx, pfault("a", 30, time.Minute))
	h.client.Inject(ctx, pfault("b", 30, time.Minute))
	sts, err := h.client.Halt(ctx)
	if err != nil || len(sts) != 2 || sts[0].RevertReason != agentapi.ReasonHalt || k.Has("a") || k.Has("b") {
		t.Fatalf("halt: %+v %v", sts, err)
	}
	all, err := h.client.List(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d %v", len(all), err)
	}
	// An ID can be reused once reverted.
	if _, err := h.client.Inject(ctx, pfault("a", 30, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if k.Has("a") {
		t.Fatal("shutdown left the fault")
	}
	if _, err := os.Stat(h.cfg.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket not removed: %v", err)
	}
	if _, err := h.client.Status(ctx); !errors.Is(err, agentapi.ErrUnreachable) {
		t.Fatalf("stopped agent: %v, want ErrUnreachable", err)
	}
}

func TestApplyFailureRevertsPartialState(t *testing.T) {
	k := partition.NewFake()
	k.FailApply(true)
	h := startAgent(t, k, nil)
	_, err := h.client.Inject(context.Background(), pfault("f", 30, time.Minute))
	if apiStatus(err) != 500 || !strings.Contains(err.Error(), "injected apply failure") {
		t.Fatalf("err = %v", err)
	}
	if k.Has("f") {
		t.Fatal("partial state left behind")
	}
	all, _ := h.client.List(context.Background())
	if len(all) != 1 || all[0].State != agentapi.StateFailed {
		t.Fatalf("list: %+v", all)
	}
}

func TestLeaseAndDeadline(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	ctx := context.Background()
	waitReverted := func(id string, within time.Duration) agentapi.FaultStatus {
		t.Helper()
		end := time.Now().Add(within)
		for time.Now().Before(end) {
			all, _ := h.client.List(ctx)
			for _, s := range all {
				if s.Fault.ID == id && s.State == agentapi.StateReverted {
					return s
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s not reverted within %v", id, within)
		return agentapi.FaultStatus{}
	}
	// Lease expiry without renewal.
	start := time.Now()
	h.client.Inject(ctx, pfault("lease", 0.3, time.Minute))
	st := waitReverted("lease", 1300*time.Millisecond)
	if st.RevertReason != agentapi.ReasonLease || k.Has("lease") || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("lease: %+v after %v", st, time.Since(start))
	}
	// Renewal keeps it alive past the lease; the deadline still wins.
	start = time.Now()
	st, err := h.client.Inject(ctx, pfault("renewed", 0.3, 1200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < 900*time.Millisecond {
		st, err = h.client.Renew(ctx, "renewed", 300*time.Millisecond)
		if err != nil {
			t.Fatalf("renew at %v: %v", time.Since(start), err)
		}
		if st.LeaseExpires.After(st.Fault.Deadline) {
			t.Fatalf("lease %v past deadline %v", st.LeaseExpires, st.Fault.Deadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !k.Has("renewed") {
		t.Fatal("renewed fault reverted early")
	}
	for {
		_, err := h.client.Renew(ctx, "renewed", 10*time.Second)
		if err != nil {
			if apiStatus(err) != 410 {
				t.Fatal(err)
			}
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("deadline did not revert a renewed fault")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st = waitReverted("renewed", time.Second)
	if st.RevertReason != agentapi.ReasonDeadline || k.Has("renewed") || time.Since(start) < 1200*time.Millisecond {
		t.Fatalf("deadline: %+v after %v", st, time.Since(start))
	}
}

func TestStartupRecoveryFake(t *testing.T) {
	k := partition.NewFake()
	dir, _ := os.MkdirTemp("", "cdagt")
	t.Cleanup(func() { os.RemoveAll(dir) })
	lpath := filepath.Join(dir, "ledger.jsonl")
	l, _, _, err := ledger.Open(lpath)
	if err != nil {
		t.Fatal(err)
	}
	f1, f2 := pfault("left", 5, time.Hour), pfault("done", 5, time.Hour)
	l.Append(ledger.Record{Op: ledger.OpIntent, ID: f1.ID, Fault: &f1})
	l.Append(ledger.Record{Op: ledger.OpApplied, ID: f1.ID})
	l.Append(ledger.Record{Op: ledger.OpIntent, ID: f2.ID, Fault: &f2})
	l.Append(ledger.Record{Op: ledger.OpReverted, ID: f2.ID, Reason: "requested"})
	l.Close()
	// Torn last line from a crash mid-write.
	fh, _ := os.OpenFile(lpath, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString(`{"op":"intent","id":"torn","fault":{"id":"to`)
	fh.Close()
	k.Apply(context.Background(), partition.Plan{Table: partition.TableName("left")}, time.Minute)
	k.Apply(context.Background(), partition.Plan{Table: "chaosd_orphan"}, time.Minute)
	k.Apply(context.Background(), partition.Plan{Table: "someone_else"}, time.Minute)

	h := startAgent(t, k, func(c *Config) { c.LedgerPath = lpath })
	if k.Has("left") {
		t.Fatal("ledger fault not reverted")
	}
	if ts, _ := k.ListTagged(context.Background()); len(ts) != 0 {
		t.Fatalf("tagged leftovers: %v", ts)
	}
	if ok, _ := k.Exists(context.Background(), "someone_else"); !ok {
		t.Fatal("removed a table that is not ours")
	}
	all, _ := h.client.List(context.Background())
	if len(all) != 1 || all[0].Fault.ID != "left" || all[0].RevertReason != agentapi.ReasonStartup || !all[0].Verified {
		t.Fatalf("list: %+v", all)
	}
	data, _ := os.ReadFile(lpath)
	if es, skipped := ledger.Replay(data); len(es) != 0 || skipped != 0 {
		t.Fatalf("ledger not compacted: %q", data)
	}
}

func TestStaleSocketAndConfig(t *testing.T) {
	dir, _ := os.MkdirTemp("", "cdagt")
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "a.sock")
	h := startAgent(t, partition.NewFake(), func(c *Config) { c.Socket = sock })
	h.stop()
	// A socket file left by a dead agent: bound, never listened on.
	if err := makeStaleSocket(sock); err != nil {
		t.Fatal(err)
	}
	startAgent(t, partition.NewFake(), func(c *Config) { c.Socket = sock })

	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no listener", func(c *Config) { c.Socket, c.TCPAddr = "", "" }, "socket"},
		{"no ledger", func(c *Config) { c.LedgerPath = "" }, "ledger"},
		{"no token", func(c *Config) { c.TokenFile = filepath.Join(dir, "missing") }, "token"},
		{"plain text TCP without the flag", func(c *Config) { c.TCPAddr = "127.0.0.1:0" }, "--insecure-plaintext"},
		{"TLS without the client CA", func(c *Config) {
			c.TCPAddr, c.TLSCertFile, c.TLSKeyFile = "127.0.0.1:0", filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
		}, "mutual TLS"},
		{"world-readable token", func(c *Config) { os.Chmod(c.TokenFile, 0o644) }, "mode 0644"},
		{"group-writable token", func(c *Config) { os.Chmod(c.TokenFile, 0o620) }, "mode 0620"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Socket: filepath.Join(dir, "b.sock"), TokenFile: filepath.Join(dir, "tok"), LedgerPath: filepath.Join(dir, "l")}
			os.Remove(cfg.TokenFile)
			os.WriteFile(cfg.TokenFile, []byte("t"), 0o600)
			tc.mod(&cfg)
			err := runWith(context.Background(), cfg, zaptest.NewLogger(t), fakePartition(t, partition.NewFake(), nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestClientEndpoints(t *testing.T) {
	for _, tc := range []struct {
		ep string
		ok bool
	}{
		{"unix:///run/x.sock", true}, {"http://10.0.0.1:7070", true}, {"https://a:1/", true},
		{"ftp://x", false}, {"unix://", false}, {"http://", false},
	} {
		_, err := agentclient.NewClient(tc.ep, "t")
		if (err == nil) != tc.ok {
			t.Errorf("NewClient(%q) err = %v", tc.ep, err)
		}
	}
	c, _ := agentclient.NewClient("http://127.0.0.1:1", "t")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Status(ctx); !errors.Is(err, agentapi.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestLedgerCompactsWhileRunning(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	ctx := context.Background()
	if _, err := h.client.Inject(ctx, pfault("keep", 60, time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < compactEvery; i++ {
		id := fmt.Sprintf("f%d", i)
		if _, err := h.client.Inject(ctx, pfault(id, 60, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Revert(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(h.cfg.LedgerPath)
	es, skipped := ledger.Replay(data)
	if skipped != 0 || len(es) != 1 || es[0].Fault.ID != "keep" || es[0].Reverted {
		t.Fatalf("ledger after %d reverts: %d entries %+v", compactEvery, len(es), es)
	}
	all, _ := h.client.List(ctx)
	if len(all) != keepReverted+1 {
		t.Fatalf("list holds %d faults, want %d", len(all), keepReverted+1)
	}
}

// TestRenewFindsAVanishedFault: a fault whose kernel state disappears
// behind the agent's back (someone flushes nftables, a node reboots) is
// never renewed as if it held: the next renewal answers 410, the fault
// ends reverted with reason vanished, and the ledger forgets it.
func TestRenewFindsAVanishedFault(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	ctx := context.Background()
	if _, err := h.client.Inject(ctx, pfault("run-1.cut", 30, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Renew(ctx, "run-1.cut", time.Minute); err != nil {
		t.Fatalf("renew of a fault in place: %v", err)
	}
	plan, ok := k.Plan(partition.TableName("run-1.cut"))
	if !ok {
		t.Fatal("no table for the fault")
	}
	if err := k.Remove(ctx, plan.Table); err != nil { // flushed behind the agent's back
		t.Fatal(err)
	}
	st, err := h.client.Renew(ctx, "run-1.cut", time.Minute)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Status != 410 || ae.Fault == nil || ae.Fault.RevertReason != agentapi.ReasonVanished ||
		st.State != agentapi.StateReverted || !strings.Contains(ae.Message, "no longer in place") {
		t.Fatalf("renew of a vanished fault: %+v %v", st, err)
	}
	s, err := h.client.Status(ctx)
	if err != nil || len(s.Faults) != 0 {
		t.Fatalf("active faults after the vanish: %+v %v", s.Faults, err)
	}
}

// TestSelfExpiryInStatus: a partition reports that the kernel ends it by
// itself and when (the lease's end plus the margin), which is never
// before the kernel's own expiry; a renewal moves both; a renewal whose
// refresh fails extends nothing (500); one that finds the sets emptied
// answers 410 vanished.
func TestSelfExpiryInStatus(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	ctx := context.Background()
	f := pfault("run-1.self", 2, time.Minute)
	st, err := h.client.Inject(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	table := partition.TableName(f.ID)
	check := func(what string, st agentapi.FaultStatus) {
		t.Helper()
		kernel, _ := k.ExpiresAt(table)
		if st.SelfExpiry != agentapi.SelfExpiryKernel || !st.SelfExpiresAt.Equal(st.LeaseExpires.Add(nftexpiry.Margin)) {
			t.Fatalf("%s: selfExpiry %q at %v, lease expires %v: want kernel at lease + %v", what, st.SelfExpiry, st.SelfExpiresAt, st.LeaseExpires, nftexpiry.Margin)
		}
		if kernel.After(st.SelfExpiresAt) || kernel.Before(st.LeaseExpires) {
			t.Fatalf("%s: the kernel drops the elements at %v, outside [lease end %v, selfExpiresAt %v]", what, kernel, st.LeaseExpires, st.SelfExpiresAt)
		}
		t.Logf("%s: lease expires %s, kernel expiry %s later, reported %s later", what, st.LeaseExpires.Format(time.StampMilli),
			kernel.Sub(st.LeaseExpires), st.SelfExpiresAt.Sub(st.LeaseExpires))
	}
	check("inject", st)
	st, err = h.client.Renew(ctx, f.ID, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	check("renew", st)
	if time.Until(st.LeaseExpires) < 9*time.Second {
		t.Fatalf("renewal did not extend the lease: %v", st.LeaseExpires)
	}

	k.FailRefresh(true)
	_, err = h.client.Renew(ctx, f.ID, time.Minute)
	if apiStatus(err) != 500 {
		t.Fatalf("renew whose refresh fails: %v, want 500", err)
	}
	k.FailRefresh(false)
	all, _ := h.client.List(ctx)
	if len(all) != 1 || !all[0].LeaseExpires.Equal(st.LeaseExpires) || all[0].State != agentapi.StateActive {
		t.Fatalf("a failed refresh changed the lease: %+v (was %v)", all, st.LeaseExpires)
	}
	check("after failed renew", all[0])

	k.EmptySets(table)
	st, err = h.client.Renew(ctx, f.ID, time.Minute)
	if apiStatus(err) != 410 || st.RevertReason != agentapi.ReasonVanished || k.Has(f.ID) {
		t.Fatalf("renew of a fault whose sets were flushed: %+v %v", st, err)
	}
	data, _ := os.ReadFile(h.cfg.LedgerPath)
	if !strings.Contains(string(data), `"selfExpiry":"kernel"`) {
		t.Errorf("ledger does not say the kernel ends the fault:\n%s", data)
	}
}
