package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/agent/latency"
	"github.com/chaosd/chaosd/agent/ledger"
	"github.com/chaosd/chaosd/agent/partition"
)

// pair is two test namespaces joined by a data veth (10.99.1.0/24 and
// fd00:99::/64) and a control veth (10.99.2.0/24). "a" is faulted.
type pair struct{ a, b testNS }

func newPair(t testing.TB) pair {
	t.Helper()
	p := pair{a: newNS(t), b: newNS(t)}
	link(t, p.a, p.b, "data0", "data0", [2]string{"10.99.1.1/24", "10.99.1.2/24"}, [2]string{"fd00:99::1/64", "fd00:99::2/64"})
	link(t, p.a, p.b, "ctl0", "ctl0", [2]string{"10.99.2.1/24", "10.99.2.2/24"})
	return p
}

// tablesIn lists the agent's nftables tables in ns: the partition
// driver's (chaosd_) and the latency driver's (cdlat_).
func tablesIn(t testing.TB, ns testNS) []string { return taggedTables(t, ns.path) }

func taggedTables(t testing.TB, nsPath string) []string {
	t.Helper()
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range ts {
		if strings.HasPrefix(tb.Name, partition.TablePrefix) || strings.HasPrefix(tb.Name, latency.TablePrefix) {
			out = append(out, tb.Name)
		}
	}
	return out
}

func startReal(t testing.TB, nsPath string) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdagt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken), 0o600)
	cfg := Config{Node: "node-a", Socket: filepath.Join(dir, "a.sock"), TokenFile: tok,
		LedgerPath: filepath.Join(dir, "ledger.jsonl"), NetNSPath: nsPath, Version: "test"}
	return startWith(t, func(ctx context.Context, cfg Config) error {
		return Run(ctx, cfg, zaptest.NewLogger(t))
	}, cfg, dir)
}

func TestPrivilegedPartition(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	tcpServer(t, p.a, "10.99.1.1:8000")
	tcpServer(t, p.b, "10.99.1.2:8000")
	tcpServer(t, p.b, "10.99.1.2:8001")
	tcpServer(t, p.a, "[fd00:99::1]:8000")
	tcpServer(t, p.b, "[fd00:99::2]:8000")
	ua := newUDPServer(t, p.a, "10.99.1.1:9000")
	ub := newUDPServer(t, p.b, "10.99.1.2:9000")
	h := startReal(t, p.a.path)
	ctx := context.Background()

	type reach struct {
		aToB, bToA, aToB8001, v6AToB, v6BToA bool
		udpAToB, udpBToA                     bool // echo came back
		udpAtB, udpAtA                       bool // datagram reached the server
	}
	measure := func() reach {
		var r reach
		r.aToB = tcpReach(p.a, "10.99.1.2:8000") == nil
		r.bToA = tcpReach(p.b, "10.99.1.1:8000") == nil
		r.aToB8001 = tcpReach(p.a, "10.99.1.2:8001") == nil
		r.v6AToB = tcpReach(p.a, "[fd00:99::2]:8000") == nil
		r.v6BToA = tcpReach(p.b, "[fd00:99::1]:8000") == nil
		nb, na := ub.got.Load(), ua.got.Load()
		r.udpAToB = udpEcho(p.a, "10.99.1.2:9000")
		r.udpBToA = udpEcho(p.b, "10.99.1.1:9000")
		time.Sleep(20 * time.Millisecond)
		r.udpAtB, r.udpAtA = ub.got.Load() > nb, ua.got.Load() > na
		return r
	}
	open := reach{true, true, true, true, true, true, true, true, true}
	// Let neighbour discovery settle before timing anything.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if tcpReach(p.a, "[fd00:99::2]:8000") == nil && tcpReach(p.b, "[fd00:99::1]:8000") == nil {
			break
		}
	}
	if got := measure(); got != open {
		t.Fatalf("before any fault: %+v", got)
	}
	for _, tc := range []struct {
		name string
		part agentapi.Partition
		want reach
	}{
		{"egress", agentapi.Partition{CIDRs: []string{"10.99.1.2/32"}, Direction: "egress"},
			// Outbound is dropped: A's SYNs and SYN-ACKs, and A's UDP sends;
			// B's datagrams still arrive at A (only the echo is lost).
			reach{aToB: false, bToA: false, aToB8001: false, v6AToB: true, v6BToA: true, udpAtA: true}},
		{"ingress", agentapi.Partition{CIDRs: []string{"10.99.1.0/24"}, Direction: "ingress"},
			reach{aToB: false, bToA: false, aToB8001: false, v6AToB: true, v6BToA: true, udpAtB: true}},
		{"both", agentapi.Partition{CIDRs: []string{"10.99.1.0/24"}},
			reach{v6AToB: true, v6BToA: true}},
		// A range reaching the top of the address space has no
		// interval-end element in the set.
		{"all v4", agentapi.Partition{CIDRs: []string{"0.0.0.0/0"}, AllowWide: true},
			reach{v6AToB: true, v6BToA: true}},
		// The peer's address lies between two ranges of the set.
		{"between ranges", agentapi.Partition{CIDRs: []string{"10.99.1.1/32", "10.99.1.3/32", "10.99.0.0/24", "fd00:99::1/128"}},
			open},
		{"both v6", agentapi.Partition{CIDRs: []string{"fd00:99::/64"}},
			reach{aToB: true, bToA: true, aToB8001: true, udpAToB: true, udpBToA: true, udpAtA: true, udpAtB: true}},
		{"ports", agentapi.Partition{CIDRs: []string{"10.99.1.0/24", "fd00:99::/64"}, Ports: []uint16{8000}},
			// Only flows whose remote port is 8000: A's calls to B:8000 and
			// A's replies... are untouched when A serves 8000 (remote port is
			// ephemeral). UDP 9000 is not listed.
			reach{aToB: false, bToA: true, aToB8001: true, v6AToB: false, v6BToA: true,
				udpAToB: true, udpBToA: true, udpAtA: true, udpAtB: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := agentapi.Fault{ID: "run-p." + strings.ReplaceAll(tc.name, " ", "-"), RunID: "run-p", Kind: agentapi.KindPartition,
				Partition: &tc.part, Deadline: time.Now().Add(time.Minute), LeaseSeconds: 60}
			st, err := h.client.Inject(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if ts := tablesIn(t, p.a); len(ts) != 1 || ts[0] != partition.TableName(f.ID) {
				t.Fatalf("tables in faulted ns: %v", ts)
			}
			if ts := tablesIn(t, p.b); len(ts) != 0 {
				t.Fatalf("tables in peer ns: %v", ts)
			}
			if got := measure(); got != tc.want {
				t.Errorf("during fault:\n got %+v\nwant %+v", got, tc.want)
			}
			st, err = h.client.Revert(ctx, f.ID)
			if err != nil || !st.Verified {
				t.Fatalf("revert: %+v %v", st, err)
			}
			if ts := tablesIn(t, p.a); len(ts) != 0 {
				t.Fatalf("tables after revert: %v", ts)
			}
			if got := measure(); got != open {
				t.Fatalf("after revert: %+v", got)
			}
		})
	}
}

func TestPrivilegedLeaseExpiry(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	h := startReal(t, ns.path)
	ctx := context.Background()
	start := time.Now()
	f := pfault("lease-real", 1, time.Minute)
	if _, err := h.client.Inject(ctx, f); err != nil {
		t.Fatal(err)
	}
	if len(tablesIn(t, ns)) != 1 {
		t.Fatal("fault not in place")
	}
	for len(tablesIn(t, ns)) != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatal("table still present after lease + 1s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("reverted after %v, before the lease ended", el)
	}
	all := waitReverted(ctx, h, 0)
	if len(all) != 1 || all[0].RevertReason != agentapi.ReasonLease || !all[0].Verified {
		t.Fatalf("status: %+v", all)
	}
	// Renewed past its lease, then the deadline reverts it.
	f = pfault("deadline-real", 0.5, 1500*time.Millisecond)
	if _, err := h.client.Inject(ctx, f); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for time.Since(start) < time.Second {
		if _, err := h.client.Renew(ctx, f.ID, 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(tablesIn(t, ns)) != 1 {
		t.Fatal("renewed fault gone before its deadline")
	}
	for len(tablesIn(t, ns)) != 0 {
		h.client.Renew(ctx, f.ID, 10*time.Second)
		if time.Since(start) > 2500*time.Millisecond {
			t.Fatal("deadline did not revert the fault")
		}
		time.Sleep(20 * time.Millisecond)
	}
	all = waitReverted(ctx, h, 1)
	if all[1].RevertReason != agentapi.ReasonDeadline {
		t.Fatalf("status: %+v", all[1])
	}
}

// waitReverted lists the faults once fault i is recorded as reverted (at
// most 2s): the kernel state goes before the revert is recorded, as
// Remaining runs in between.
func waitReverted(ctx context.Context, h *harness, i int) []agentapi.FaultStatus {
	var all []agentapi.FaultStatus
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all, _ = h.client.List(ctx)
		if len(all) > i && all[i].State == agentapi.StateReverted || time.Now().After(end) {
			return all
		}
	}
}

// agentProc is the agent running as its own process inside a namespace.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startProc(t *testing.T, ns testNS, cfg Config) *agentProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	cmd := exec.Command("ip", "netns", "exec", ns.name, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childCfgEnv+"="+string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ap := &agentProc{cmd: cmd, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() // by PID: only the process this test started
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	})
	c, _ := agentclient.NewClient("unix://"+cfg.Socket, testToken)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			return ap
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent process not ready:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ctlDo calls the agent's TCP API from inside ns.
func ctlDo(hc *http.Client, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, nil
}

func TestIntegrationAgentProcess(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	tcpServer(t, p.b, "10.99.1.2:8000")
	tcpServer(t, p.a, "10.99.2.1:9000") // non-agent service on the control subnet
	dir, _ := os.MkdirTemp("", "cdagt")
	t.Cleanup(func() { os.RemoveAll(dir) })
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken), 0o600)
	cfg := Config{Node: "node-a", Socket: filepath.Join(dir, "a.sock"), TCPAddr: "10.99.2.1:7070", InsecurePlaintext: true,
		TokenFile: tok, LedgerPath: filepath.Join(dir, "ledger.jsonl"), Version: "test"}
	ctx := context.Background()
	uc, _ := agentclient.NewClient("unix://"+cfg.Socket, testToken)

	proc := startProc(t, p.a, cfg)
	ctl := nsHTTP(p.b) // chaosd's side of the control network, with keep-alive
	base := "http://10.99.2.1:7070"
	if code, _, err := ctlDo(ctl, "GET", base+"/v1/status", nil); err != nil || code != 200 {
		t.Fatalf("control path before fault: %d %v", code, err)
	}
	// Inject over the control path: cut the data subnet, and also the
	// control subnet itself, to prove the agent's listener is exempt.
	for _, f := range []agentapi.Fault{
		{ID: "crash.data", RunID: "crash", Kind: agentapi.KindPartition, Partition: &agentapi.Partition{CIDRs: []string{"10.99.1.0/24"}},
			Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600},
		{ID: "crash.ctl", RunID: "crash", Kind: agentapi.KindPartition, Partition: &agentapi.Partition{CIDRs: []string{"10.99.2.0/24"}},
			Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600},
	} {
		if code, body, err := ctlDo(ctl, "POST", base+"/v1/faults", f); err != nil || code != 201 {
			t.Fatalf("inject %s over TCP: %d %s %v", f.ID, code, body, err)
		}
	}
	if err := tcpReach(p.a, "10.99.1.2:8000"); err == nil {
		t.Fatal("data path still open during partition")
	}
	if err := tcpReach(p.b, "10.99.2.1:9000"); err == nil {
		t.Fatal("non-agent port on the control subnet still open")
	}
	// The kept-alive connection and a brand-new one both still work.
	if code, _, err := ctlDo(ctl, "POST", base+"/v1/faults/crash.data/renew", agentapi.RenewRequest{LeaseSeconds: 600}); err != nil || code != 200 {
		t.Fatalf("control path (kept alive) during fault: %d %v", code, err)
	}
	if code, _, err := ctlDo(nsHTTP(p.b), "GET", base+"/v1/status", nil); err != nil || code != 200 {
		t.Fatalf("control path (new connection) during fault: %d %v", code, err)
	}
	ctl.CloseIdleConnections()

	// Crash: the fault stays behind in the kernel and in the ledger.
	proc.cmd.Process.Signal(syscall.SIGKILL)
	proc.cmd.Wait()
	if ts := tablesIn(t, p.a); len(ts) != 2 {
		t.Fatalf("after SIGKILL the tables should remain, got %v", ts)
	}
	data, _ := os.ReadFile(cfg.LedgerPath)
	if es, _ := ledger.Replay(data); len(es) != 2 || es[0].Reverted || es[1].Reverted {
		t.Fatalf("ledger after crash: %+v", es)
	}
	// Restart: start-up recovery reverts both.
	proc = startProc(t, p.a, cfg)
	if ts := tablesIn(t, p.a); len(ts) != 0 {
		t.Fatalf("after restart tables remain: %v", ts)
	}
	all, err := uc.List(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("list after restart: %+v %v", all, err)
	}
	for _, s := range all {
		if s.State != agentapi.StateReverted || s.RevertReason != agentapi.ReasonStartup || !s.Verified {
			t.Fatalf("recovered fault: %+v", s)
		}
	}
	if data, _ := os.ReadFile(cfg.LedgerPath); len(bytes.TrimSpace(data)) != 0 {
		t.Fatalf("ledger not compacted after recovery: %s", data)
	}
	if err := tcpReach(p.a, "10.99.1.2:8000"); err != nil {
		t.Fatalf("data path after recovery: %v", err)
	}

	// SIGTERM reverts before exit.
	if _, err := uc.Inject(ctx, agentapi.Fault{ID: "term", Kind: agentapi.KindPartition,
		Partition: &agentapi.Partition{CIDRs: []string{"10.99.1.0/24"}}, Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	if len(tablesIn(t, p.a)) != 1 {
		t.Fatal("fault not in place")
	}
	proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := proc.cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, proc.stderr)
	}
	if ts := tablesIn(t, p.a); len(ts) != 0 {
		t.Fatalf("SIGTERM left tables: %v", ts)
	}
	if !strings.Contains(proc.stderr.String(), `"reason": "shutdown"`) {
		t.Errorf("no shutdown revert logged:\n%s", proc.stderr)
	}
	if _, err := os.Stat(cfg.Socket); !os.IsNotExist(err) {
		t.Errorf("socket left after exit: %v", err)
	}
}

// TestPrivilegedRenewFindsFlushedSets: in the real kernel, a partition
// whose set was flushed, whose chain was flushed, or that lost one
// element behind the agent's back answers 410 vanished on renewal (the
// refresh transaction is refused as a whole), and the rest is cleaned up.
func TestPrivilegedRenewFindsFlushedSets(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	h := startReal(t, ns.path)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(c *nftables.Conn, tb *nftables.Table) error
	}{
		{"set flushed", func(c *nftables.Conn, tb *nftables.Table) error {
			c.FlushSet(&nftables.Set{Table: tb, Name: partition.AddrSet4Name})
			return c.Flush()
		}},
		{"chain flushed", func(c *nftables.Conn, tb *nftables.Table) error {
			c.FlushChain(&nftables.Chain{Table: tb, Name: "output"})
			return c.Flush()
		}},
		{"one port deleted", func(c *nftables.Conn, tb *nftables.Table) error {
			ps := &nftables.Set{Table: tb, Name: partition.PortSetName, KeyType: nftables.TypeInetService}
			if err := c.SetDeleteElements(ps, []nftables.SetElement{{Key: []byte{0x1f, 0x90}}}); err != nil { // 8080
				return err
			}
			return c.Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := agentapi.Fault{ID: "vanish." + strings.ReplaceAll(tc.name, " ", "-"), Kind: agentapi.KindPartition,
				Partition: &agentapi.Partition{CIDRs: []string{"10.99.1.0/24", "fd00:99::/64"}, Ports: []uint16{8080, 8443}},
				Deadline:  time.Now().Add(time.Minute), LeaseSeconds: 30}
			if _, err := h.client.Inject(ctx, f); err != nil {
				t.Fatal(err)
			}
			if _, err := h.client.Renew(ctx, f.ID, 30*time.Second); err != nil {
				t.Fatalf("renew of a whole fault: %v", err)
			}
			hn, err := netns.GetFromPath(ns.path)
			if err != nil {
				t.Fatal(err)
			}
			defer hn.Close()
			c, err := nftables.New(nftables.WithNetNSFd(int(hn)))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.tamper(c, &nftables.Table{Name: partition.TableName(f.ID), Family: nftables.TableFamilyINet}); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			st, err := h.client.Renew(ctx, f.ID, 30*time.Second)
			if apiStatus(err) != 410 || st.RevertReason != agentapi.ReasonVanished || !st.Verified {
				t.Fatalf("renew after %s: %+v %v", tc.name, st, err)
			}
			if ts := tablesIn(t, ns); len(ts) != 0 {
				t.Fatalf("tables left after the vanished fault was cleaned up: %v", ts)
			}
		})
	}
}
