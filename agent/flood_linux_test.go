package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/internal/serve/floodtest"
)

// Flood figures: how many unauthenticated clients, for how long. Bounded
// so the test stays a test: loopback TCP and the unix socket only.
const (
	floodConns    = 400 // per listener, at once
	floodDuration = 6 * time.Second
	// floodRSSLimit is what the agent may reach under the flood: half the
	// DaemonSet's 128 MiB limit (manifests/base/agent-daemonset.yaml).
	floodRSSLimit = 64 << 20
)

// procMem reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMem(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			peak = n << 10
		}
	}
	return rss, peak
}

// TestIntegrationFloodKeepsAgentBounded: a real agent process holds a
// node partition while floodConns unauthenticated clients on each of its
// listeners (loopback TCP and the unix socket) send headers that never
// end, for floodDuration. Its peak RSS stays under floodRSSLimit (before
// the listeners were bounded it grew past 300 MiB and a 128 MiB limit
// OOM-killed it), the partition stays in place and active, and the API
// answers and renews it once the flood ends.
func TestIntegrationFloodKeepsAgentBounded(t *testing.T) {
	requireRootOnly(t)
	pn := newPodNet(t, -1)
	pn.servers(t)
	k := startNodeAgent(t, pn, "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := l.Addr().String()
	l.Close()
	k.cfg.TCPAddr = tcpAddr
	// Plain HTTP on purpose: the flood is of HTTP headers that never end
	// (with TLS the same connection cap and handshake timeout apply one
	// layer below).
	k.cfg.InsecurePlaintext = true
	k.start()
	ctx := context.Background()
	cut := func() bool {
		_, out := dialQuick(pn.node, peerAddr+":8000", 100*time.Millisecond)
		return !out
	}
	f := agentapi.Fault{ID: "flood.cut", RunID: "flood", Kind: agentapi.KindPartition,
		Partition: &agentapi.Partition{CIDRs: []string{peerCIDR}},
		Deadline:  time.Now().Add(2 * time.Minute), LeaseSeconds: 60}
	if _, err := k.client.Inject(ctx, f); err != nil {
		t.Fatalf("inject: %v\n%s", err, k.stderr)
	}
	if !cut() {
		t.Fatal("traffic flows during the partition")
	}
	pid := k.cmd.Process.Pid
	before, _ := procMem(t, pid)

	stop := time.Now().Add(floodDuration)
	var wg sync.WaitGroup
	var tcpDials, tcpSent, unixDials, unixSent int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		tcpDials, tcpSent = floodtest.Flood("tcp", tcpAddr, "/v1/faults", floodConns, stop)
	}()
	go func() {
		defer wg.Done()
		unixDials, unixSent = floodtest.Flood("unix", k.cfg.Socket, "/v1/faults", floodConns, stop)
	}()
	var maxRSS int64
	for time.Now().Before(stop) {
		rss, _ := procMem(t, pid)
		maxRSS = max(maxRSS, rss)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	after, peak := procMem(t, pid)
	// The line bench.sh puts in the report.
	t.Logf("FLOOD agent RSS before %.1f MiB, peak %.1f MiB (VmHWM), after %.1f MiB; %d+%d clients at once for %v "+
		"(tcp: %d connections, %.0f MiB of header sent; unix: %d connections, %.0f MiB)",
		mib(before), mib(peak), mib(after), floodConns, floodConns, floodDuration,
		tcpDials, mib(tcpSent), unixDials, mib(unixSent))
	if peak > floodRSSLimit || maxRSS > floodRSSLimit {
		t.Errorf("agent peak RSS %.1f MiB under the flood, want at most %.0f MiB", mib(max(peak, maxRSS)), mib(floodRSSLimit))
	}
	if k.cmd.ProcessState != nil {
		t.Fatalf("agent exited under the flood:\n%s", k.stderr)
	}
	if !cut() {
		t.Error("the partition was lifted under the flood")
	}
	st, err := k.client.Renew(ctx, f.ID, time.Minute)
	if err != nil || st.State != agentapi.StateActive {
		t.Fatalf("renew after the flood: %+v, %v", st, err)
	}
	if _, err := k.client.Revert(ctx, f.ID); err != nil {
		t.Fatalf("revert: %v", err)
	}
	k.stop()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
