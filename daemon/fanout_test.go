package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/internal/agentsim"
	"github.com/chaosd/chaosd/probes/promtest"
)

// simDir is a short directory for a simulated fleet's sockets and
// ledgers, on tmpfs where there is one (the ledgers' fsyncs then cost
// nothing: the profile is the agents' whole latency).
func simDir(t testing.TB) string {
	t.Helper()
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "sim")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fleetHarness is a chaosd whose cluster c1 is a simulated fleet of n
// agents (agentsim: real agent cores, drivers that take the profile's
// time), reached with chaosd's real agent client on unix sockets, and a
// real Prometheus. cfg, when set, changes the fleet's configuration.
func fleetHarness(t *testing.T, n int, exp string, sim func(*agentsim.Config), cfg func(*Config)) (*harness, *agentsim.Fleet) {
	t.Helper()
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	sc := agentsim.Config{Dir: simDir(t), Agents: n, Profile: agentsim.Before, Token: "agent-secret"}
	if sim != nil {
		sim(&sc)
	}
	fleet, err := agentsim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fleet.Stop(); err != nil {
			t.Errorf("stop the simulated fleet: %v", err)
		}
	})
	h := newHarness(t, prom, healthy, map[string]string{"cut": exp})
	cl := Cluster{Name: "c1"}
	for _, nd := range fleet.Nodes() {
		cl.Agents = append(cl.Agents, AgentNode{Node: nd.Name, Endpoint: nd.Endpoint})
	}
	h.cfg.Clusters, h.cfg.Lease = []Cluster{cl}, "" // the default lease
	if cfg != nil {
		cfg(h.cfg)
	}
	if err := h.cfg.validate(); err != nil {
		t.Fatal(err)
	}
	h.start()
	return h, fleet
}

// eventAt returns the time of the run's first event starting with prefix.
func eventAt(r api.Run, prefix string) time.Time {
	for _, ev := range r.Events {
		if strings.HasPrefix(ev.Message, prefix) {
			return ev.Time
		}
	}
	return time.Time{}
}

// TestIntegrationThousandAgentsKeepTheDefaultLease: a partition on 1,000
// agents (today's partition latency, ~15 ms an inject) held for 12s with
// the default lease (5s) passes: no lease runs out (the agents would
// revert and answer 410), and chaosd reverts every fault itself. Injected
// one at a time, every such run ended in error beyond ~160 agents.
func TestIntegrationThousandAgentsKeepTheDefaultLease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 1,000 simulated agents for ~25s")
	}
	h, fleet := fleetHarness(t, 1000, fmt.Sprintf(testExperiment, "cut", "12s", ""), nil, nil)
	run, err := h.client.StartRun(context.Background(), api.StartRequest{Experiment: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	final := h.wait(run.ID, 2*time.Minute)
	if final.Verdict != api.VerdictPass {
		t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
	}
	if len(final.Faults) != 1000 {
		t.Fatalf("%d fault records, want 1000", len(final.Faults))
	}
	for _, f := range final.Faults {
		if f.InjectedAt == nil || f.RevertedAt == nil || !f.Verified || f.RevertReason != "requested" || f.Error != "" {
			t.Fatalf("fault on %s: reverted %v by %q (%s), verified %v, error %q; want reverted on request and verified",
				f.Node, f.RevertedAt, f.RevertedBy, f.RevertReason, f.Verified, f.Error)
		}
	}
	if fleet.Active() != 0 || fleet.Applies() != 1000 {
		t.Errorf("the fleet holds %d fault(s) after %d applies, want 0 after 1000", fleet.Active(), fleet.Applies())
	}
	t.Logf("1000 agents: all in place %s after the inject began, all reverted %s after the revert began (noisy: not asserted)",
		final.Times.Injected.Sub(eventAt(final, "injecting")).Round(time.Millisecond),
		final.Times.Reverted.Sub(eventAt(final, "reverting")).Round(time.Millisecond))
}

// TestIntegrationFailedInjectAmongHundredAgents: one agent of 100 fails
// its inject while the others fan out (8 at a time): the run ends in
// error naming that node, no inject starts after the failure, every fault
// that went in is reverted, and each fault's record says what became of
// it.
func TestIntegrationFailedInjectAmongHundredAgents(t *testing.T) {
	h, fleet := fleetHarness(t, 100, fmt.Sprintf(testExperiment, "cut", "10s", ""),
		func(c *agentsim.Config) { c.FailInject = []string{"n37"} }, func(c *Config) { c.FanOut = 8 })
	run, err := h.client.StartRun(context.Background(), api.StartRequest{Experiment: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	final := h.wait(run.ID, time.Minute)
	if final.Verdict != api.VerdictError || !strings.Contains(final.Reason, "inject: fault cut on node n37: ") ||
		!strings.Contains(final.Reason, "operation not permitted") {
		t.Fatalf("verdict %s (%s), want error naming node n37", final.Verdict, final.Reason)
	}
	var injected int
	for _, f := range final.Faults {
		switch {
		case f.Node == "n37":
			if !strings.Contains(f.Error, "operation not permitted") {
				t.Errorf("record of n37: error %q", f.Error)
			}
		case f.InjectedAt != nil:
			injected++
			if f.RevertedAt == nil || !f.Verified {
				t.Errorf("fault on %s went in but is not recorded as reverted: %+v", f.Node, f)
			}
		case !strings.HasPrefix(f.Error, "not injected: "):
			t.Errorf("fault on %s neither injected nor said not to be: %+v", f.Node, f)
		}
	}
	if injected == 0 || injected == 99 || fleet.Active() != 0 {
		t.Errorf("%d of the other 99 went in (want some, not all: the failure stops the fan-out); the fleet still holds %d", injected, fleet.Active())
	}
}

// TestIntegrationHaltDuringFanOut: a halt while a fan-out to 100 agents is
// under way (20 faults in place, the next injects stuck in their agents)
// stops starting injects, reverts everything (the agents' halt and
// chaosd's revert) and ends the run aborted.
func TestIntegrationHaltDuringFanOut(t *testing.T) {
	const inPlace, fanOut = 20, 8
	h, fleet := fleetHarness(t, 100, fmt.Sprintf(testExperiment, "cut", "30s", ""),
		func(c *agentsim.Config) { c.HoldAfter = inPlace }, func(c *Config) { c.FanOut = fanOut })
	ctx := context.Background()
	run, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "cut"})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the fan-out is stuck: 20 in place, fanOut held.
	deadline := time.Now().Add(time.Minute)
	for fleet.Applies() < inPlace+fanOut || fleet.Active() < inPlace {
		if time.Now().After(deadline) {
			t.Fatalf("the fan-out never got stuck: %d applies, %d in place", fleet.Applies(), fleet.Active())
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := h.client.Halt(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AbortedRuns) != 1 || len(res.Agents) != 100 {
		t.Errorf("halt aborted %v, reached %d agents", res.AbortedRuns, len(res.Agents))
	}
	final := h.wait(run.ID, time.Minute)
	if final.Verdict != api.VerdictAborted || !strings.Contains(final.Reason, "aborted by user during inject: halt") {
		t.Fatalf("verdict %s (%s), want aborted during inject", final.Verdict, final.Reason)
	}
	if fleet.Active() != 0 || fleet.Applies() != inPlace+fanOut {
		t.Errorf("after the halt the fleet holds %d fault(s), %d injects reached it; want 0, and no inject after the halt (%d)",
			fleet.Active(), fleet.Applies(), inPlace+fanOut)
	}
	notAsked := 0
	for _, f := range final.Faults {
		if f.InjectedAt != nil && (f.RevertedAt == nil || !f.Verified) {
			t.Errorf("fault on %s went in but is not recorded as reverted: %+v", f.Node, f)
		}
		if strings.HasPrefix(f.Error, "not injected: aborted by user during inject: halt") {
			notAsked++
		}
	}
	if notAsked != 100-inPlace-fanOut {
		t.Errorf("%d faults recorded as never asked for, want %d", notAsked, 100-inPlace-fanOut)
	}
}
