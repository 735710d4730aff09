// Package e2e runs experiments end to end in the local two-cluster lab:
// chaosctl → chaosd → agents → kernel, Prometheus probes → verdict →
// report, judged against the load generator's ground truth.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
	"github.com/chaosd/chaosd/internal/chromiumtest"
	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/truth"
)

var binDir string

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// setup uses CHAOSD_BIN_DIR (make test builds into bin/) or builds the
// binaries into a temporary directory.
func setup(m *testing.M) (int, error) {
	if d := os.Getenv("CHAOSD_BIN_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "chaosd")); err == nil {
			binDir = d
			return m.Run(), nil
		}
	}
	tmp, err := os.MkdirTemp("", "chaosd-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", tmp+"/", "../cmd/chaosd", "../cmd/chaosctl", "../lab/cmd/petclinic", "../lab/cmd/loadgen", "../lab/cmd/cadvisor", "../lab/cmd/alertsink")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("build binaries: %w", err)
	}
	binDir = tmp
	return m.Run(), nil
}

func requireRoot(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the lab needs Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root (network namespaces); CI runs this as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the lab needs iproute2's ip command (hack/deps.sh installs it)")
	}
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startLab(t *testing.T, name, prefix, experimentsDir string, knobs map[string][]string) *lab.Lab {
	t.Helper()
	return startLabConfig(t, lab.Config{
		Name: name, Prefix: prefix, BinDir: binDir, ExperimentsDir: experimentsDir,
		StartControlPlane: true, Knobs: knobs, Logger: zaptest.NewLogger(t),
	})
}

// startLabConfig brings up the lab cfg describes and takes it down when
// the test ends, checking that no namespace is left.
func startLabConfig(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	prefix := cfg.Prefix
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			for _, f := range []string{"chaosd.log", "agent-c1-n1.log", "visits-service.log", "api-gateway.log"} {
				if b, err := os.ReadFile(filepath.Join(l.StateDir, "logs", f)); err == nil {
					t.Logf("--- %s (tail) ---\n%s", f, tailLines(string(b), 30))
				}
			}
		}
		if err := l.Down(ctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, prefix+"-") {
				t.Errorf("namespace %s left after lab down", line)
			}
		}
	})
	// The steady state is judged over the 30s before the inject
	// (spec.steadyState.baseline): let the load fill it.
	time.Sleep(31 * time.Second)
	return l
}

// settle waits until the previous run is a whole steady-state baseline
// (30s) in the past: the next run's baseline must not judge the previous
// run's fault.
func settle(run api.Run) {
	if run.FinishedAt != nil {
		time.Sleep(time.Until(run.FinishedAt.Add(31 * time.Second)))
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// chaosctl runs the CLI against the lab and returns its exit code, stdout
// and stderr.
func chaosctl(t *testing.T, l *lab.Lab, args ...string) (int, []byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "chaosctl"), args...)
	cmd.Env = append(os.Environ(), l.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("chaosctl %v: %v", args, err)
	}
	return code, stdout.Bytes(), stderr.String()
}

// assertNoFaultLeft checks that no chaosd nftables table is left in any
// lab node.
func assertNoFaultLeft(t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, role := range []string{"c1n1", "c1n2", "c2n1", "c2n2"} {
		ns, ok := l.Namespaces[role]
		if !ok {
			t.Fatalf("lab has no namespace for role %s: %v", role, l.Namespaces)
		}
		out, err := l.Exec(ns, "nft", "list", "tables")
		if err != nil {
			t.Fatalf("nft list tables in %s: %v: %s", ns, err, out)
		}
		if strings.Contains(string(out), "chaosd_") || strings.Contains(string(out), "cdlat_") {
			t.Errorf("fault left behind in %s:\n%s", ns, out)
		}
	}
}

func TestIntegrationPartitionC1C2PassesWithRTOMatchingGroundTruth(t *testing.T) {
	requireRoot(t)
	l := startLab(t, "e2e-pass", "cep", repoPath(t, "experiments/library"), nil)

	code, stdout, stderr := chaosctl(t, l, "run", "partition-c1-c2", "--wait", "-o", "json")
	t.Logf("chaosctl stderr:\n%s", stderr)
	var run api.Run
	if err := json.Unmarshal(stdout, &run); err != nil {
		t.Fatalf("chaosctl -o json printed no run record (exit %d): %v\n%s", code, err, stdout)
	}
	if code != 0 || run.Verdict != api.VerdictPass {
		t.Fatalf("exit %d, verdict %s: %s", code, run.Verdict, run.Reason)
	}
	assertNoFaultLeft(t, l)
	for _, f := range run.Faults {
		if f.RevertedAt == nil || !f.Verified {
			t.Errorf("fault %s on %s not verified reverted: %+v", f.Name, f.Node, f)
		}
	}
	if len(run.Faults) != 2 {
		t.Errorf("partition-c1-c2 targets both C1 nodes; got %d fault records", len(run.Faults))
	}
	checkRTOAgainstTruth(t, l, run)
	checkReport(t, l, run)
}

// checkReport has chaosctl write the run's HTML and Markdown reports and
// loads the page in a real headless Chromium: the verdict, the RTO and
// every probe's curve, from the lab's Prometheus, on a timeline with the
// fault window. $CHAOSD_REPORT_SCREENSHOTS, when set, keeps the page and
// a screenshot of it.
func checkReport(t *testing.T, l *lab.Lab, run api.Run) {
	t.Helper()
	probes := []string{"owner-details-breaker-closed", "gateway-to-visits-success", "gateway-success", "gateway-mostly-failing"}
	code, md, stderr := chaosctl(t, l, "report", run.ID, "-o", "md")
	if code != 0 || strings.Contains(stderr, "warning") || !bytes.Contains(md, []byte("## Probes over time")) {
		t.Errorf("chaosctl report -o md: exit %d, stderr %q\n%s", code, stderr, md)
	}
	for _, p := range probes {
		if !bytes.Contains(md, []byte("| "+p+" | `")) {
			t.Errorf("Markdown report has no curve row for probe %s", p)
		}
	}

	code, page, stderr := chaosctl(t, l, "report", run.ID, "-o", "html")
	if code != 0 || stderr != "" {
		t.Fatalf("chaosctl report -o html: exit %d, stderr:\n%s", code, stderr)
	}
	t.Run("report in Chromium", func(t *testing.T) {
		chromiumtest.Binary(t)
		dir := t.TempDir()
		if d := os.Getenv("CHAOSD_REPORT_SCREENSHOTS"); d != "" {
			dir = d
		}
		file := filepath.Join(dir, run.ID+".html")
		if err := os.WriteFile(file, page, 0o644); err != nil {
			t.Fatal(err)
		}
		dom := chromiumtest.DumpDOM(t, file)
		want := []string{`id="verdict">PASS<`, "RTO " + report.Seconds(*run.RTO.MeasuredSeconds) + " (target 15m0s)",
			`<svg class="timeline"`, `<rect class="window"`, `<line class="threshold"`}
		for _, p := range probes {
			want = append(want, `data-probe="`+p+`"`)
		}
		for _, w := range want {
			if !strings.Contains(dom, w) {
				t.Errorf("rendered report lacks %q", w)
			}
		}
		if strings.Contains(dom, "probe curves unavailable") || strings.Contains(dom, "no values in Prometheus") {
			t.Errorf("the report has no curves from the lab's Prometheus")
		}
		// Curves from Prometheus: every steady-state probe drawn, and the
		// partition visible as a failing stretch.
		if n := strings.Count(dom, `<path class="curve ok"`); n < 3 {
			t.Errorf("%d healthy curve segments, want one per steady-state probe at least", n)
		}
		if !strings.Contains(dom, `<path class="curve fail"`) && !strings.Contains(dom, `class="strip fail"`) {
			t.Errorf("no failing stretch drawn for the partition")
		}
		chromiumtest.Screenshot(t, file, filepath.Join(dir, run.ID+".png"), 1200, 2600)
	})
}

// checkRTOAgainstTruth checks that a partition run shows impact and
// recovery, timed finer than its probe interval, and that its measured RTO
// is within one probe interval of what the load generator's users saw.
func checkRTOAgainstTruth(t *testing.T, l *lab.Lab, run api.Run) {
	t.Helper()
	// The run places impact and recovery to within Prometheus' scrape
	// interval (its reported resolution); the ground truth is exact to one
	// request interval. The bar is one probe interval.
	interval := 1.0 // partition-c1-c2's probeInterval
	if res := run.RTO.ResolutionSeconds; res >= interval {
		t.Errorf("resolution %.2fs: with the lab's %s scrape interval the run must time changes finer than its probe interval", res, lab.ScrapeInterval)
	}
	compareRTOWithTruth(t, l, run, interval)
}

// compareRTOWithTruth checks that a run shows impact and recovery and that
// its measured RTO is within tolerance (seconds) of the ground truth's.
func compareRTOWithTruth(t *testing.T, l *lab.Lab, run api.Run, tolerance float64) {
	t.Helper()
	tm := run.Times
	if tm.Injected == nil || tm.FirstImpact == nil || tm.Reverted == nil || tm.Recovered == nil || run.RTO.MeasuredSeconds == nil {
		t.Fatalf("the run must show impact and recovery: times %+v rto %+v", tm, run.RTO)
	}

	// Ground truth from the load generator: users saw failures (errors or
	// the breaker's empty fallback) from first impact to recovery.
	time.Sleep(2 * time.Second) // let the truth file flush the last seconds
	secs, err := truth.Read(l.TruthFile)
	if err != nil {
		t.Fatal(err)
	}
	gImpact, gRecovered, ok := truth.Analyze(secs, *tm.Injected)
	if !ok {
		t.Fatalf("ground truth shows no impact and recovery after %s", tm.Injected)
	}
	gRTO := gRecovered.Sub(gImpact).Seconds()
	measured := *run.RTO.MeasuredSeconds
	res := run.RTO.ResolutionSeconds
	t.Logf("measured RTO %.2fs (impact %s, recovered %s); ground truth %.2fs (impact %s, recovered %s); resolution %.2fs",
		measured, tm.FirstImpact.Format(time.RFC3339Nano), tm.Recovered.Format(time.RFC3339Nano),
		gRTO, gImpact.Format(time.RFC3339Nano), gRecovered.Format(time.RFC3339Nano), res)
	if diff := math.Abs(measured - gRTO); diff > tolerance {
		t.Errorf("measured RTO %.2fs differs from ground truth %.2fs by %.2fs (> %.2fs)", measured, gRTO, diff, tolerance)
	}
}

// runJSON runs an experiment to its verdict and decodes the record.
func runJSON(t *testing.T, l *lab.Lab, name string) (int, api.Run, string) {
	t.Helper()
	code, stdout, stderr := chaosctl(t, l, "run", name, "--wait", "-o", "json")
	var run api.Run
	if err := json.Unmarshal(stdout, &run); err != nil {
		t.Fatalf("%s: no run record (exit %d): %v\n%s\n%s", name, code, err, stdout, stderr)
	}
	return code, run, stderr
}

func phaseEvaluations(run api.Run, phase api.Phase) int {
	n := 0
	for _, p := range run.Phases {
		if p.Phase == phase {
			for _, s := range p.Probes {
				n += s.Evaluations
			}
		}
	}
	return n
}

// TestIntegrationFaultKindsInTheLab runs the library's other experiments
// in one lab: the Spring Boot exception assault and the memory stressor
// really take hold (effect checks) and leave nothing behind; latency needs
// netem, which the lab's kernel may lack — then it is refused before
// anything is applied, with the reason (TestVMLatencyC1C2 runs it end to
// end where netem exists).
func TestIntegrationFaultKindsInTheLab(t *testing.T) {
	requireRoot(t)
	l := startLab(t, "e2e-kinds", "cek", repoPath(t, "experiments/library"), nil)
	hc := l.HTTPClient(5 * time.Second)
	visits := "http://10.254.0.13:8082/actuator/chaosmonkey"
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	_, assaultsBefore := get(visits + "/assaults")
	statusBefore, _ := get(visits + "/status")

	var last api.Run
	t.Run("exceptions-visits", func(t *testing.T) {
		code, run, stderr := runJSON(t, l, "exceptions-visits")
		last = run
		if code != 0 || run.Verdict != api.VerdictPass {
			t.Fatalf("exit %d verdict %s: %s\n%s", code, run.Verdict, run.Reason, stderr)
		}
		if phaseEvaluations(run, api.PhaseEffects) == 0 || run.Times.FirstImpact == nil {
			t.Errorf("the assault must be proven (effects) and hurt (first impact): %+v", run.Times)
		}
		_, assaultsAfter := get(visits + "/assaults")
		statusAfter, _ := get(visits + "/status")
		if assaultsAfter != assaultsBefore || statusAfter != statusBefore {
			t.Errorf("Chaos Monkey settings not restored:\nbefore %d %s\nafter  %d %s", statusBefore, assaultsBefore, statusAfter, assaultsAfter)
		}
	})

	t.Run("memory-pressure-customers", func(t *testing.T) {
		settle(last)
		code, run, stderr := runJSON(t, l, "memory-pressure-customers")
		last = run
		if code != 0 || run.Verdict != api.VerdictPass {
			t.Fatalf("exit %d verdict %s: %s\n%s", code, run.Verdict, run.Reason, stderr)
		}
		if phaseEvaluations(run, api.PhaseEffects) == 0 {
			t.Errorf("memory in use was never proven")
		}
		if pids := stressors(t); len(pids) > 0 {
			t.Errorf("stressor processes left: %v", pids)
		}
	})

	t.Run("latency-c1-c2", func(t *testing.T) {
		code, run, stderr := runJSON(t, l, "latency-c1-c2")
		if _, err := os.Stat("/sys/module/sch_netem"); err == nil {
			if code != 0 || run.Verdict != api.VerdictPass {
				t.Fatalf("with netem: exit %d verdict %s: %s\n%s", code, run.Verdict, run.Reason, stderr)
			}
			return
		}
		if code != 3 || run.Verdict != api.VerdictError || !strings.Contains(run.Reason, "netem") || run.Times.Injected != nil {
			t.Fatalf("without netem the run must end in preflight, exit 3, naming netem; got exit %d verdict %s injected %v: %s",
				code, run.Verdict, run.Times.Injected, run.Reason)
		}
	})

	// Last, as it kills an agent for good: the agent holding the
	// assault dies mid-run and is never restarted; chaosd notices within
	// a lease and undoes the assault itself through the actuator.
	t.Run("exceptions-visits with its agent killed", func(t *testing.T) {
		settle(last)
		var agentPID int
		for _, p := range l.Procs() {
			if p.Name == "agent-c2-n1" {
				agentPID = p.PID
			}
		}
		if agentPID == 0 {
			t.Fatalf("no agent-c2-n1 process in the lab: %+v", l.Procs())
		}
		since := time.Now()
		cmd, out := startRun(t, l, "exceptions-visits")
		waitForRun(t, l, "exceptions-visits", since, "assault in place", func(r api.Run) bool {
			return r.Times.Injected != nil && len(r.Faults) > 0 && r.Faults[0].InjectedAt != nil
		})
		if err := syscall.Kill(agentPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		code, run := finishRun(t, cmd, out)
		if code != 3 || run.Verdict != api.VerdictError || !strings.Contains(run.Reason, "has not answered") {
			t.Fatalf("exit %d verdict %s: %s; want exit 3, error: the agent stopped answering", code, run.Verdict, run.Reason)
		}
		f := run.Faults[0]
		if f.RevertedBy != "chaosd" || !f.Verified || f.RevertedAt == nil {
			t.Fatalf("fault record %+v: want undone and verified by chaosd", f)
		}
		t.Logf("agent killed; chaosd undid the assault %.1fs later (%s)", f.RevertedAt.Sub(killed).Seconds(), f.RevertReason)
		_, assaultsAfter := get(visits + "/assaults")
		statusAfter, _ := get(visits + "/status")
		if assaultsAfter != assaultsBefore || statusAfter != statusBefore {
			t.Errorf("Chaos Monkey settings not restored without the agent:\nbefore %d %s\nafter  %d %s", statusBefore, assaultsBefore, statusAfter, assaultsAfter)
		}
	})
	assertNoFaultLeft(t, l)
}

// stressors lists processes running a memory stressor.
func stressors(t *testing.T) []string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "agent-stressor") {
			out = append(out, e.Name())
		}
	}
	return out
}
