package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/alertsink"
)

// TestIntegrationVerdictsYouCanBetOn breaks the system, then the tool, in
// one lab and checks that none of it passes: a service failing 1 request
// in 20 before anything is injected, a partition whose rules someone
// flushes mid-run, and a Prometheus frozen through the recovery.
// e2e/testdata/verdicts/partition-short.yaml is partition-c1-c2 with
// shorter phases (10s baseline, 12s fault, 20s recovery timeout).
func TestIntegrationVerdictsYouCanBetOn(t *testing.T) {
	requireRoot(t)
	l := startLab(t, "e2e-verdicts", "cev", repoPath(t, "e2e/testdata/verdicts"), nil)
	const exp = "partition-short"

	t.Run("a flaky system never passes", func(t *testing.T) {
		// Chaos Monkey for Spring Boot on visits-service, as an SRE would
		// set it by hand: every 20th request throws.
		cm := "http://10.254.0.13:8082/actuator/chaosmonkey"
		hc := l.HTTPClient(5 * time.Second)
		saved := httpDo(t, hc, "GET", cm+"/assaults", "")
		savedWatchers := httpDo(t, hc, "GET", cm+"/watchers", "")
		t.Cleanup(func() {
			httpDo(t, hc, "POST", cm+"/disable", "")
			httpDo(t, hc, "POST", cm+"/assaults", saved)
			httpDo(t, hc, "POST", cm+"/watchers", savedWatchers)
		})
		httpDo(t, hc, "POST", cm+"/watchers", `{"restController":true}`)
		httpDo(t, hc, "POST", cm+"/assaults", `{"level":20,"deterministic":true,"latencyActive":false,"exceptionsActive":true,"killApplicationActive":false}`)
		httpDo(t, hc, "POST", cm+"/enable", "")
		time.Sleep(11 * time.Second) // a whole baseline of flaky traffic

		for _, args := range [][]string{{"--dry-run"}, nil} {
			code, run := runArgs(t, l, exp, args...)
			if code != 1 || run.Verdict != api.VerdictFail || !strings.Contains(run.Reason, "steady state not met over the 10s baseline") {
				t.Errorf("run %v: exit %d verdict %s: %s; want exit 1, fail, steady state not met", args, code, run.Verdict, run.Reason)
			}
			if run.Times.Injected != nil {
				t.Errorf("run %v injected into a flaky system", args)
			}
			t.Logf("run %v: %s", args, run.Reason)
		}
	})
	// Let the baseline of the next run be clean.
	time.Sleep(12 * time.Second)

	t.Run("a fault that vanishes never passes", func(t *testing.T) {
		since := time.Now()
		cmd, out := startRun(t, l, exp)
		waitForRun(t, l, exp, since, "faults in place", func(r api.Run) bool {
			return r.Phase == api.PhaseObserving && r.Times.Injected != nil
		})
		// Someone flushes the node's nftables (a CNI reset, an operator).
		ns := l.Namespaces["c1n1"]
		tables, err := l.Exec(ns, "nft", "list", "tables")
		if err != nil {
			t.Fatal(err)
		}
		flushed := 0
		for _, line := range strings.Split(string(tables), "\n") {
			if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "chaosd_") {
				if out, err := l.Exec(ns, "nft", "delete", "table", f[1], f[2]); err != nil {
					t.Fatalf("delete %s: %v %s", f[2], err, out)
				}
				flushed++
			}
		}
		if flushed == 0 {
			t.Fatalf("no chaosd table in %s while the fault is active:\n%s", ns, tables)
		}
		code, run := finishRun(t, cmd, out)
		if code != 3 || run.Verdict != api.VerdictError || !strings.Contains(run.Reason, "vanished") {
			t.Fatalf("exit %d verdict %s: %s; want exit 3, error naming the vanished fault", code, run.Verdict, run.Reason)
		}
		t.Logf("verdict %s: %s", run.Verdict, run.Reason)
		assertNoFaultLeft(t, l)
	})
	time.Sleep(15 * time.Second)

	t.Run("a blind Prometheus gives exit 3", func(t *testing.T) {
		var prom int
		for _, p := range l.Procs() {
			if p.Name == "prometheus" {
				prom = p.PID
			}
		}
		if prom == 0 {
			t.Fatalf("the lab has no prometheus process: %+v", l.Procs())
		}
		since := time.Now()
		cmd, out := startRun(t, l, exp)
		waitForRun(t, l, exp, since, "recovering", func(r api.Run) bool { return r.Phase == api.PhaseRecovering })
		// Freeze the lab's own Prometheus through the whole recovery.
		if err := syscall.Kill(prom, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				_ = syscall.Kill(prom, syscall.SIGCONT)
			}
		}
		t.Cleanup(thaw)
		code, run := finishRun(t, cmd, out)
		thaw()
		if code != 3 || run.Verdict != api.VerdictError || !strings.Contains(run.Reason, "recovery could not be judged") {
			t.Fatalf("exit %d verdict %s: %s; want exit 3, error: recovery could not be judged", code, run.Verdict, run.Reason)
		}
		if run.BlindSeconds < 10 {
			t.Errorf("blindSeconds %.1f: the probes were blind for most of the 20s recovery", run.BlindSeconds)
		}
		t.Logf("verdict %s: %s (blind %.1fs)", run.Verdict, run.Reason, run.BlindSeconds)
	})
	// Prometheus was frozen: let the next baseline be after it thawed.
	time.Sleep(12 * time.Second)

	t.Run("alerts: expected, silenced and forbidden", func(t *testing.T) {
		code, run := runArgs(t, l, "partition-alerts")
		t.Logf("verdict %s: %s", run.Verdict, run.Reason)
		// The breaker's alert is forbidden and fires: the one reason.
		if code != 1 || run.Verdict != api.VerdictFail || !strings.Contains(run.Reason, "alert PetClinicGatewayBreakerOpen fired") ||
			strings.Contains(run.Reason, "PetClinicVisitsCallsFailing") || strings.Contains(run.Reason, "PetClinicGatewayErrors") {
			t.Fatalf("exit %d verdict %s: %s; want exit 1 failing on the forbidden breaker alert only", code, run.Verdict, run.Reason)
		}
		checks := map[string]api.AlertCheck{}
		for _, c := range run.Alerts {
			checks[c.Name] = c
		}
		exp := checks["PetClinicVisitsCallsFailing"]
		if !exp.OK || exp.FiredAt == nil || exp.PendingAt == nil || exp.TTASeconds == nil || *exp.TTASeconds > 20 {
			t.Fatalf("expected alert: %+v", exp)
		}
		// The rule holds its condition for 2s before firing.
		forSecs := exp.FiredAt.Sub(*exp.PendingAt).Seconds()
		if forSecs < 1.5 || forSecs > 4 {
			t.Errorf("pending %s, fired %s: %.2fs apart, want about the rule's for: 2s", exp.PendingAt, exp.FiredAt, forSecs)
		}
		t.Logf("TTA %.2fs after the first impact (%s); the rule's condition held at %s, %.2fs after the impact; fired %.2fs later (for: 2s)",
			*exp.TTASeconds, run.Times.FirstImpact.Format(time.RFC3339Nano), exp.PendingAt.Format(time.RFC3339Nano),
			exp.PendingAt.Sub(*run.Times.FirstImpact).Seconds(), forSecs)
		if c := checks["PetClinicGatewayErrors"]; !c.OK || c.FiredAt != nil {
			t.Errorf("PetClinicGatewayErrors: %+v", c)
		}
		if len(run.Silences) != 1 || run.Silences[0].ExpiredAt == nil || run.Silences[0].ExpiredBy != "run" {
			t.Fatalf("silences %+v: want one, expired by the run", run.Silences)
		}
		sil := run.Silences[0]
		var state struct {
			Status struct{ State string } `json:"status"`
		}
		if err := json.Unmarshal([]byte(httpDo(t, l.HTTPClient(5*time.Second), "GET", l.AlertmanagerURL+"/api/v2/silence/"+sil.ID, "")), &state); err != nil {
			t.Fatal(err)
		}
		if state.Status.State != "expired" {
			t.Errorf("silence %s is %s in Alertmanager after the run", sil.ID, state.Status.State)
		}
		// What the on-call team saw while the silence held: the breaker
		// alert (not silenced), never the planned visits alert.
		time.Sleep(2 * time.Second) // group_interval 1s
		notes, err := alertsink.Read(l.AlertsFile)
		if err != nil {
			t.Fatal(err)
		}
		breaker := false
		for _, n := range notes {
			if n.Received.Before(*run.Times.Injected) || n.Received.After(*sil.ExpiredAt) || !n.Firing() {
				continue
			}
			switch n.Alertname {
			case "PetClinicVisitsCallsFailing":
				t.Errorf("silenced alert notified at %s: %+v", n.Received, n)
			case "PetClinicGatewayBreakerOpen":
				breaker = true
			}
		}
		if !breaker {
			t.Errorf("the unsilenced breaker alert never reached the webhook during the run: %+v", notes)
		}
	})
}

// httpDo sends one request from the lab's mgmt network and returns the
// body; a status >= 300 fails the test.
func httpDo(t *testing.T, hc *http.Client, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// runArgs runs an experiment to its verdict with extra flags.
func runArgs(t *testing.T, l *lab.Lab, name string, args ...string) (int, api.Run) {
	t.Helper()
	code, stdout, stderr := chaosctl(t, l, append([]string{"run", name, "--wait", "-o", "json"}, args...)...)
	var run api.Run
	if err := json.Unmarshal(stdout, &run); err != nil {
		t.Fatalf("%s: no run record (exit %d): %v\n%s\n%s", name, code, err, stdout, stderr)
	}
	return code, run
}

// startRun starts `chaosctl run NAME --wait -o json` in the background.
func startRun(t *testing.T, l *lab.Lab, name string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "chaosctl"), "run", name, "--wait", "-o", "json")
	cmd.Env = append(cmd.Environ(), l.Env()...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// finishRun waits for a run started by startRun and decodes its record.
func finishRun(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) (int, api.Run) {
	t.Helper()
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var run api.Run
	if err := json.Unmarshal(out.Bytes(), &run); err != nil {
		t.Fatalf("no run record (exit %d): %v\n%s", code, err, out)
	}
	return code, run
}

// waitForRun polls chaosd until the newest run of exp created after since
// satisfies cond.
func waitForRun(t *testing.T, l *lab.Lab, exp string, since time.Time, what string, cond func(api.Run) bool) api.Run {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, stdout, _ := chaosctl(t, l, "get", "runs", "-o", "json")
		var runs []api.Run
		if err := json.Unmarshal(stdout, &runs); err == nil {
			var newest *api.Run
			for i := range runs {
				if runs[i].Experiment == exp && !runs[i].CreatedAt.Before(since.Add(-time.Second)) && (newest == nil || runs[i].CreatedAt.After(newest.CreatedAt)) {
					newest = &runs[i]
				}
			}
			if newest != nil && cond(*newest) {
				return *newest
			}
			if newest != nil && newest.Phase == api.PhaseDone {
				t.Fatalf("run %s ended (%s: %s) before %s", newest.ID, newest.Verdict, newest.Reason, what)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no run of %s reached %q within 2m", exp, what)
	return api.Run{}
}
