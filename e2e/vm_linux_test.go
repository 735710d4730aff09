package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments/library"
	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/truth"
)

// TestVMLatencyC1C2 runs the library's latency-c1-c2 end to end in the
// lab, inside the stock Debian kernel under QEMU (hack/vmexec), which has
// the netem qdisc the host kernel lacks: chaosctl → chaosd → the C1
// agents' HTB + u32 + netem → Prometheus probes → verdict. It checks the
// verdict is pass, the effect probe proved the delay (gateway → visits
// calls take >= 200ms on average), the steady state held throughout, the
// impact and RTO data agree with the load generator's ground truth, and
// no tc, rule or nftables state is left in any lab namespace afterwards.
//
// hack/vmtest-lab.sh (run by make test) boots the VM with the binaries the
// lab needs copied in; on the host this test skips. What differs from the
// lab on a host (load, scrape interval, two timeouts) is explained at
// vmScrapeInterval, vmLoadRPS and vmKnobs.
func TestVMLatencyC1C2(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("runs inside the stock-kernel VM (netem): hack/vmtest-lab.sh, which make test runs")
	}
	requireRoot(t)
	if _, err := os.Stat("/sys/module/sch_netem"); err != nil {
		t.Fatalf("the VM's kernel has no sch_netem loaded: %v", err)
	}
	if _, err := os.Stat(filepath.Join(binDir, "chaosd")); err != nil {
		t.Fatalf("no chaosd in the guest's CHAOSD_BIN_DIR %q (list the binaries in CHAOSD_VM_FILES): %v", binDir, err)
	}
	start := time.Now()
	// The library's experiment, byte for byte, from the copy built into
	// the binaries.
	spec, err := fs.ReadFile(library.FS(), "latency-c1-c2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	expDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(expDir, "latency-c1-c2.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	l := startLabConfig(t, lab.Config{
		Name: "vm-latency", Prefix: "cvl", BinDir: binDir, ExperimentsDir: expDir,
		StartControlPlane: true, ScrapeInterval: vmScrapeInterval, LoadRPS: vmLoadRPS, NoCAdvisor: true, NoAlerting: true,
		Knobs: vmKnobs, Logger: zaptest.NewLogger(t),
	})
	t.Logf("lab up and warm after %s", time.Since(start).Round(100*time.Millisecond))
	before := kernelState(t, l)

	runStart := time.Now()
	cpu0, procs0 := guestCPU(t), procCPU(l)
	stalls := watchStalls(t)
	code, run, stderr := runJSON(t, l, "latency-c1-c2")
	busy := cpu0.busySince(guestCPU(t))
	t.Logf("run %s took %s: exit %d, verdict %s: %s; guest CPU busy %.0f%%", run.ID, time.Since(runStart).Round(100*time.Millisecond),
		code, run.Verdict, run.Reason, 100*busy)
	logProcCPU(t, procs0, procCPU(l), time.Since(runStart))
	stalls()
	logScrapeHealth(t, l, time.Since(runStart))
	logCallOutcomes(t, l, time.Since(runStart))
	if code != 0 || run.Verdict != api.VerdictPass {
		hint := ""
		if busy >= 0.9 {
			hint = fmt.Sprintf(" (the guest's one emulated core was %.0f%% busy: the host gave QEMU too little CPU for the lab, see vmexec's host CPU line; rerun on a quieter host)", 100*busy)
		}
		t.Fatalf("exit %d verdict %s: %s%s\n%s", code, run.Verdict, run.Reason, hint, stderr)
	}

	// The faults: one per C1 node, injected, reverted and verified gone
	// by the agents.
	if len(run.Faults) != 2 {
		t.Errorf("latency-c1-c2 targets both C1 nodes; got %d fault records", len(run.Faults))
	}
	for _, f := range run.Faults {
		if f.Kind != "latency" || f.InjectedAt == nil || f.RevertedAt == nil || !f.Verified {
			t.Errorf("fault %s on %s not injected and verified reverted: %+v", f.Name, f.Node, f)
		}
	}

	// The effect probe proved the delay.
	eff := phaseProbes(run, api.PhaseEffects)
	if len(eff) != 1 || eff[0].Name != "gateway-to-visits-latency" || eff[0].Evaluations == 0 || !eff[0].Last.OK || eff[0].Last.Value < 0.2 {
		t.Fatalf("effects phase did not prove gateway -> visits latency >= 200ms: %+v", eff)
	}
	t.Logf("effect probe: %d evaluations, proven at %s with mean gateway -> visits latency %.0fms",
		eff[0].Evaluations, eff[0].Last.Time.Sub(*run.Times.Injected).Round(time.Millisecond), eff[0].Last.Value*1000)
	if at := promScalar(t, l, effectQuery(t), *run.Times.Injected); at >= 0.2 {
		// The proof then owes something to a slow guest; the check over
		// the whole fault window below does not.
		t.Logf("note: the effect probe read %.0fms already at the injection (the guest was slow just before it)", at*1000)
	}

	// The steady state held while the delay lasted (the run would have
	// failed otherwise; the record says so probe by probe).
	obs := phaseProbes(run, api.PhaseObserving)
	if len(obs) != 3 {
		t.Errorf("want the 3 steady-state probes judged while the fault lasted, got %+v", obs)
	}
	for _, p := range obs {
		if p.Evaluations == 0 || p.Failures != 0 {
			t.Errorf("steady-state probe %s during the fault: %d evaluations, %d failures (first %v)", p.Name, p.Evaluations, p.Failures, p.FirstFailure)
		}
	}
	if run.BlindSeconds > 0 {
		t.Logf("probes were blind for %.1fs", run.BlindSeconds)
	}

	// Independently of the run: Prometheus' mean gateway -> visits call
	// time over the whole fault window and over as long a window before it.
	tm := run.Times
	window := tm.Reverted.Sub(*tm.Injected).Truncate(time.Second)
	during := promScalar(t, l, meanVisitsLatency(window), *tm.Reverted)
	baseline := promScalar(t, l, meanVisitsLatency(20*time.Second), *tm.Injected)
	t.Logf("mean gateway -> visits call time: %.0fms over the %s fault window, %.0fms over the 20s before it", during*1000, window, baseline*1000)
	if during < 0.2 {
		t.Errorf("mean gateway -> visits call time during the fault %.3fs < 200ms", during)
	}
	if baseline >= 0.2 {
		t.Errorf("mean gateway -> visits call time before the fault %.3fs is already >= 200ms: the effect probe proves nothing (the VM too slow?)", baseline)
	}

	checkImpactAgainstTruth(t, l, run)

	// Nothing left behind: every lab namespace's links, qdiscs, rules and
	// nftables tables are what they were before the run, with no netem
	// and no agent table (chaosd_* partitions, cdlat_* latency marks)
	// anywhere.
	after := kernelState(t, l)
	for ns, b := range before {
		if a := after[ns]; !slices.Equal(a, b) {
			t.Errorf("kernel state of %s changed by the run:\nbefore %v\nafter  %v", ns, b, a)
		}
	}
	for ns, items := range after {
		for _, it := range items {
			if strings.Contains(it, "netem") || strings.Contains(it, "table chaosd") || strings.Contains(it, "table cdlat") {
				t.Errorf("fault state left in %s: %s", ns, it)
			}
		}
	}
	t.Logf("test took %s in the guest", time.Since(start).Round(100*time.Millisecond))
}

// vmScrapeInterval is the lab Prometheus' scrape interval (and scrape
// timeout) in the VM, eight times the default. A scrape that times out
// leaves the target's series stale, and a steady-state probe reading them
// empty is a violation: on the emulated core, with the host busy, a
// scrape answered in 1.2-2s at the moment of the inject (when chaosd, the
// agents and the probes all work at once). With 2s to answer it does not
// time out; the probes' $__rate_interval windows widen with it (the
// effect probe's fixed 5s rate window still holds two or three samples),
// and the run times changes to its 1s probe interval, as it does whenever
// scrapes are no finer than that.
const vmScrapeInterval = 2 * time.Second

// phaseProbes returns the probe summaries of phase.
func phaseProbes(run api.Run, phase api.Phase) []api.ProbeSummary {
	for _, p := range run.Phases {
		if p.Phase == phase {
			return p.Probes
		}
	}
	return nil
}

// checkImpactAgainstTruth checks the run's impact and RTO data against
// what the load generator's users saw. A delay within every timeout need
// not hurt anyone: then the run must report no impact, an RTO of 0, and
// no user request may have failed since the injection. With impact, the
// RTO must match the ground truth's to within one probe interval plus one
// scrape interval: in the VM the data a probe round reads is up to a
// scrape interval old, so impact and recovery are each seen up to that
// much plus a round late.
func checkImpactAgainstTruth(t *testing.T, l *lab.Lab, run api.Run) {
	t.Helper()
	tm := run.Times
	if tm.FirstImpact != nil {
		t.Logf("the run saw impact at %s", tm.FirstImpact.Format(time.RFC3339Nano))
		compareRTOWithTruth(t, l, run, 1+vmScrapeInterval.Seconds())
		return
	}
	if run.RTO.MeasuredSeconds == nil || *run.RTO.MeasuredSeconds != 0 || tm.Recovered == nil {
		t.Errorf("no impact, so the RTO must be 0 and the run recovered: rto %+v, times %+v", run.RTO, tm)
	}
	time.Sleep(2 * time.Second) // let the truth file flush the last seconds
	secs, err := truth.Read(l.TruthFile)
	if err != nil {
		t.Fatal(err)
	}
	ok, failed := 0, 0
	from := tm.Injected.Add(-truth.Slack).Unix()
	for _, s := range secs {
		if s.Unix >= from {
			ok += s.OK
			failed += s.Failed
			if s.Failed > 0 {
				t.Logf("ground truth: %d failed request(s) sent %s after the injection (%s after the revert), completed by %s after it",
					s.Failed, s.FirstFailed.Sub(*tm.Injected).Round(time.Millisecond), s.FirstFailed.Sub(*tm.Reverted).Round(time.Millisecond),
					s.LastFailed.Sub(*tm.Injected).Round(time.Millisecond))
			}
		}
	}
	t.Logf("ground truth since the injection: %d user requests ok, %d failed", ok, failed)
	if rto, err := truth.RTO(secs, *tm.Injected); err != nil || rto != 0 || failed > 0 {
		t.Errorf("the run saw no impact but users did: %d failed requests, ground-truth RTO %s (%v)", failed, rto, err)
	}
	if ok == 0 {
		t.Errorf("the ground truth holds no user request after the injection")
	}
}

// effectQuery is the library experiment's effect probe query.
func effectQuery(t *testing.T) string {
	t.Helper()
	exps, err := library.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exps {
		if e.Metadata.Name == "latency-c1-c2" && e.Spec.Effects != nil && len(e.Spec.Effects.Probes) == 1 {
			return e.Spec.Effects.Probes[0].Query
		}
	}
	t.Fatal("the library's latency-c1-c2 has no single effect probe")
	return ""
}

// meanVisitsLatency is the gateway's mean call time to visits-service
// over window, as the effect probe computes it over 5s.
func meanVisitsLatency(window time.Duration) string {
	w := strconv.Itoa(int(window.Seconds())) + "s"
	return `sum(increase(http_client_requests_seconds_sum{job="api-gateway",client_name="visits-service"}[` + w + `]))` +
		` / sum(increase(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service"}[` + w + `]))`
}

// promScalar evaluates q at the instant at in the lab's Prometheus and
// returns its single value.
func promScalar(t *testing.T, l *lab.Lab, q string, at time.Time) float64 {
	t.Helper()
	u := l.PrometheusURL + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}.Encode()
	resp, err := l.HTTPClient(10 * time.Second).Get(u)
	if err != nil {
		t.Fatalf("query prometheus: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode prometheus answer to %s: %v", q, err)
	}
	if body.Status != "success" || len(body.Data.Result) != 1 {
		t.Fatalf("prometheus query %s: status %s %s, %d series", q, body.Status, body.Error, len(body.Data.Result))
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("prometheus query %s: value %q: %v", q, s, err)
	}
	return v
}

// kernelState lists, per lab namespace, what a fault could leave behind:
// links, qdiscs, policy-routing rules and nftables tables, one sorted
// line each. It reads the kernel through netlink, not through the agents.
func kernelState(t *testing.T, l *lab.Lab) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, ns := range l.Namespaces {
		items, err := namespaceState(ns)
		if err != nil {
			t.Fatalf("read the kernel state of %s: %v", ns, err)
		}
		out[ns] = items
	}
	return out
}

func namespaceState(name string) ([]string, error) {
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	var items []string
	links, err := retryDump(nl.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, lk := range links {
		a := lk.Attrs()
		items = append(items, fmt.Sprintf("link %s %s", a.Name, lk.Type()))
		qs, err := retryDump(func() ([]netlink.Qdisc, error) { return nl.QdiscList(lk) })
		if err != nil {
			return nil, fmt.Errorf("list qdiscs of %s: %w", a.Name, err)
		}
		for _, q := range qs {
			qa := q.Attrs()
			items = append(items, fmt.Sprintf("qdisc %s dev %s handle %s parent %s", q.Type(), a.Name,
				netlink.HandleStr(qa.Handle), netlink.HandleStr(qa.Parent)))
		}
	}
	rules, err := retryDump(func() ([]netlink.Rule, error) { return nl.RuleList(netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		items = append(items, fmt.Sprintf("rule %d family %d table %d type %d", r.Priority, r.Family, r.Table, r.Type))
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		return nil, err
	}
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, tb := range tables {
		items = append(items, fmt.Sprintf("table %s family %d", tb.Name, tb.Family))
	}
	slices.Sort(items)
	return items, nil
}

// retryDump retries a netlink dump the kernel interrupted.
func retryDump[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// cpuTimes are the guest's busy and total CPU time (in USER_HZ ticks).
type cpuTimes struct{ busy, total uint64 }

// guestCPU reads the first line of /proc/stat.
func guestCPU(t *testing.T) cpuTimes {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var c cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	return c
}

// busySince is the busy share of the CPU time between c and later.
func (c cpuTimes) busySince(later cpuTimes) float64 {
	if later.total <= c.total {
		return 0
	}
	return float64(later.busy-c.busy) / float64(later.total-c.total)
}

// logScrapeHealth logs, per scrape job, how many scrapes failed and the
// slowest scrape over the last window: the lab's margin in the VM.
func logScrapeHealth(t *testing.T, l *lab.Lab, window time.Duration) {
	t.Helper()
	w := strconv.Itoa(int(window.Seconds())+1) + "s"
	for _, job := range []string{"api-gateway", "visits-service", "customers-service", "chaosd"} {
		sel := `{job="` + job + `"}`
		failed := promScalar(t, l, `sum(count_over_time(up`+sel+`[`+w+`]) - sum_over_time(up`+sel+`[`+w+`]))`, time.Now())
		slowest := promScalar(t, l, `max(max_over_time(scrape_duration_seconds`+sel+`[`+w+`]))`, time.Now())
		t.Logf("scrapes of %s over the run: %.0f failed, slowest %.0fms", job, failed, slowest*1000)
	}
}

// procCPU returns the CPU time (user + system, in USER_HZ ticks) of each
// lab process by name.
func procCPU(l *lab.Lab) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range l.Procs() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
		if err != nil {
			continue
		}
		_, rest, ok := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseUint(f[11], 10, 64)
		stime, _ := strconv.ParseUint(f[12], 10, 64)
		out[p.Name] = utime + stime
	}
	return out
}

// logProcCPU logs each lab process's share of one CPU between two
// procCPU readings d apart.
func logProcCPU(t *testing.T, before, after map[string]uint64, d time.Duration) {
	t.Helper()
	var parts []string
	for name, a := range after {
		ticks := float64(a - before[name])
		parts = append(parts, fmt.Sprintf("%s %.1f%%", name, 100*ticks/100/d.Seconds())) // USER_HZ is 100
	}
	slices.Sort(parts)
	t.Logf("CPU share of the lab processes during the run: %s", strings.Join(parts, ", "))
}

// vmLoadRPS is the load generator's rate in the VM, against the lab's
// default of 20: each user request is seven HTTP calls and their metrics
// on the one emulated core, which with 20/s the guest cannot carry (5/s
// saturated it once the host ran three busy threads besides). Three a
// second still puts several requests in every scrape interval, so the
// probes' irate does not divide 0 by 0.
const vmLoadRPS = 3

// vmKnobs double the two timeouts a slow call meets on its way: the
// gateway's TimeLimiter on the visits call (1s) and the load generator's
// per-request timeout (2s). The 200ms (x2, there and back) delay is real
// time, but the stand-ins' own work runs several times slower on an
// emulated core that the host may also stall for a few hundred
// milliseconds: with the native budgets, a delayed call's headroom
// (about 550ms) is the same order as the emulator's slowness, and the
// run would judge the emulator instead of the fault.
var vmKnobs = map[string][]string{
	"api-gateway": {"--visits-timeout=2s"},
	"loadgen":     {"--timeout=4s"},
}

// watchStalls samples the clock every 50ms until the returned function is
// called, which logs the longest gap between samples and how many gaps
// exceeded 200ms: how long the guest stood still (the host not running
// the VM, or the guest's core saturated).
func watchStalls(t *testing.T) func() {
	t.Helper()
	done := make(chan struct{})
	result := make(chan string, 1)
	go func() {
		const period = 50 * time.Millisecond
		var longest, stalled time.Duration
		n := 0
		last := time.Now()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- fmt.Sprintf("longest stall %s, %d stalls > 200ms totalling %s", longest.Round(time.Millisecond), n, stalled.Round(time.Millisecond))
				return
			case <-tick.C:
				now := time.Now()
				gap := now.Sub(last) - period
				last = now
				longest = max(longest, gap)
				if gap > 200*time.Millisecond {
					n++
					stalled += gap
				}
			}
		}
	}()
	return func() {
		close(done)
		t.Logf("clock sampled every 50ms in the guest: %s", <-result)
	}
}

// logCallOutcomes logs the gateway's calls to visits-service over the
// last window by outcome, and the slowest.
func logCallOutcomes(t *testing.T, l *lab.Lab, window time.Duration) {
	t.Helper()
	w := strconv.Itoa(int(window.Seconds())+1) + "s"
	q := `sum by (outcome, status, exception) (increase(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service"}[` + w + `]))`
	u := l.PrometheusURL + "/api/v1/query?" + url.Values{"query": {q}}.Encode()
	resp, err := l.HTTPClient(10 * time.Second).Get(u)
	if err != nil {
		t.Logf("query prometheus: %v", err)
		return
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Logf("decode: %v", err)
		return
	}
	var parts []string
	for _, r := range body.Data.Result {
		parts = append(parts, fmt.Sprintf("%s/%s/%s %v", r.Metric["outcome"], r.Metric["status"], r.Metric["exception"], r.Value[1]))
	}
	slowest := promScalar(t, l, `max(max_over_time(http_client_requests_seconds_max{job="api-gateway",client_name="visits-service"}[`+w+`]))`, time.Now())
	t.Logf("gateway -> visits calls over the run: %s; slowest %.0fms", strings.Join(parts, ", "), slowest*1000)
}
