package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/lab/petclinic"
	"github.com/chaosd/chaosd/lab/truth"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run as root in CI)")
	}
	if _, err := os.Stat(DefaultPrometheus); err != nil {
		t.Fatalf("%s missing: apt-get install prometheus", DefaultPrometheus)
	}
	if _, err := os.Stat(DefaultAlertmanager); err != nil {
		t.Fatalf("%s missing: apt-get install prometheus-alertmanager (hack/deps.sh)", DefaultAlertmanager)
	}
}

// buildBins builds the lab's own binaries once per test binary.
func buildBins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/petclinic", "./cmd/loadgen", "./cmd/cadvisor", "./cmd/alertsink")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build lab binaries: %v\n%s", err, out)
	}
	t.Logf("built lab binaries in %s", time.Since(start).Round(time.Millisecond))
	return dir
}

func testConfig(t *testing.T, bin string) Config {
	n := rand.IntN(1 << 20)
	return Config{
		Name:   fmt.Sprintf("it-%d-%x", os.Getpid(), n),
		Prefix: fmt.Sprintf("t%05x", n),
		BinDir: bin,
		Logger: zaptest.NewLogger(t),
	}
}

// hostNet snapshots the host namespace's links, addresses, routes and rules.
func hostNet(t *testing.T) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, args := range [][]string{
		{"-o", "link", "show"}, {"-o", "addr", "show"}, {"route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"}, {"rule", "show"},
	} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %v: %v", args, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			// Drop link counters/state that change by themselves.
			if i := strings.Index(line, " link/"); i > 0 && args[1] == "link" {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" {
				set[strings.Join(args, " ")+": "+line] = true
			}
		}
	}
	return set
}

func assertHostUntouched(t *testing.T, before map[string]bool, prefix string) {
	t.Helper()
	for line := range hostNet(t) {
		if before[line] {
			continue
		}
		labish := strings.Contains(line, "10.0.") || strings.Contains(line, "10.1.") || strings.Contains(line, "10.254.") ||
			strings.Contains(line, prefix+"-")
		for _, dev := range []string{"eth0@", "mgmt0", "tgw0", " br0", " c1n1", " c1n2", " c2n1", " c2n2", " c1@", " c2@", " n1@", " n2@"} {
			labish = labish || strings.Contains(line, dev)
		}
		if labish {
			t.Errorf("host namespace gained a lab entry: %s", line)
		} else {
			t.Logf("host namespace changed (not by the lab?): %s", line)
		}
	}
}

// promQuery returns the single value of an instant query, or an error.
func promQuery(ctx context.Context, l *Lab, q string) (float64, error) {
	c := l.HTTPClient(3 * time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", l.PrometheusURL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d series", q, len(body.Data.Result))
	}
	var v float64
	_, err = fmt.Sscan(body.Data.Result[0].Value[1].(string), &v)
	return v, err
}

func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getIn(ctx context.Context, c *http.Client, u string) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestIntegrationLab(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	cfg := testConfig(t, buildBins(t))
	cfg.Knobs = map[string][]string{"visits-service": {"--customers-reconnect=never"}}
	before := hostNet(t)

	start := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("lab up in %s", time.Since(start).Round(time.Millisecond))
	down := false
	t.Cleanup(func() {
		if !down {
			_ = l.Down(context.Background())
		}
	})
	if l.StateDir != filepath.Join(DefaultStateRoot, cfg.Name) {
		t.Errorf("state dir %s", l.StateDir)
	}
	mgmt := l.HTTPClient(3 * time.Second)

	t.Run("gateway answers owner details with visits over mgmt", func(t *testing.T) {
		for id := 1; id <= 10; id++ {
			code, body, err := getIn(ctx, mgmt, fmt.Sprintf("%s/api/gateway/owners/%d", l.GatewayURL, id))
			if err != nil || code != 200 {
				t.Fatalf("owner %d: %v HTTP %d", id, err, code)
			}
			var od petclinic.OwnerDetails
			if err := json.Unmarshal(body, &od); err != nil {
				t.Fatal(err)
			}
			for _, p := range od.Pets {
				if len(p.Visits) == 0 {
					t.Errorf("owner %d pet %d: no visits", id, p.ID)
				}
			}
		}
	})

	t.Run("prometheus scrapes the three jobs; breaker closed", func(t *testing.T) {
		for _, job := range []string{"api-gateway", "customers-service", "visits-service"} {
			eventually(t, 15*time.Second, job, func() error {
				v, err := promQuery(ctx, l, fmt.Sprintf(`up{job=%q}`, job))
				if err == nil && v != 1 {
					err = fmt.Errorf("up = %v", v)
				}
				return err
			})
		}
		eventually(t, 15*time.Second, "breaker closed", func() error {
			v, err := promQuery(ctx, l, `resilience4j_circuitbreaker_state{job="api-gateway",name="getOwnerDetails",state="closed"}`)
			if err == nil && v != 1 {
				err = fmt.Errorf("closed = %v", v)
			}
			return err
		})
		eventually(t, 15*time.Second, "load reaches the gateway", func() error {
			v, err := promQuery(ctx, l, `sum(http_server_requests_seconds_count{job="api-gateway",uri="/api/gateway/owners/{ownerId}",outcome="SUCCESS"})`)
			if err == nil && v < 5 {
				err = fmt.Errorf("count = %v", v)
			}
			return err
		})
	})

	t.Run("isolation", func(t *testing.T) {
		assertHostUntouched(t, before, cfg.Prefix)
		// mgmt has no path into either cluster; only the TGW joins them.
		for _, dst := range []string{"10.0.1.10", "10.1.1.10"} {
			if out, err := l.Exec(RoleMgmt, "ip", "route", "get", dst); err == nil {
				t.Errorf("mgmt has a route to %s: %s", dst, out)
			}
		}
		out, err := l.Exec("c2-n1", "ip", "route", "get", "10.0.2.10")
		if err != nil || !strings.Contains(string(out), "via 10.1.1.1") {
			t.Errorf("c2-n1 → customers not via its VPC router: %s %v", out, err)
		}
		if out, err := l.Exec(RoleTGW, "cat", "/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("tgw ip_forward: %q %v", out, err)
		}
		if out, err := l.Exec(RoleMgmt, "cat", "/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(out)) != "0" {
			t.Errorf("mgmt ip_forward: %q %v", out, err)
		}
	})

	t.Run("visits never reconnects to customers", func(t *testing.T) {
		visitsURL := "http://10.254.0.13:8082/pets/visits?petId=1"
		// Cut C2 → customers inside c2-n1 only.
		if _, err := l.Exec("c2-n1", "ip", "route", "add", "blackhole", "10.0.2.10/32"); err != nil {
			t.Fatal(err)
		}
		code, _, err := getIn(ctx, mgmt, visitsURL)
		if err != nil || code != 500 {
			t.Fatalf("during the cut: %v HTTP %d, want 500", err, code)
		}
		if _, err := l.Exec("c2-n1", "ip", "route", "del", "blackhole", "10.0.2.10/32"); err != nil {
			t.Fatal(err)
		}
		c2 := HTTPClientIn(l.Namespaces[RoleC2N1], 3*time.Second)
		if code, _, err := getIn(ctx, c2, "http://10.0.2.10:8081/owners/1"); err != nil || code != 200 {
			t.Fatalf("customers not reachable from c2-n1 after the cut: %v HTTP %d", err, code)
		}
		time.Sleep(time.Second)
		if code, _, err := getIn(ctx, mgmt, visitsURL); err != nil || code != 500 {
			t.Fatalf("after the cut: %v HTTP %d, want visits still failing (reconnect=never)", err, code)
		}
		// The gateway hides it behind 200s with empty visits.
		code, body, err := getIn(ctx, mgmt, l.GatewayURL+"/api/gateway/owners/1")
		if err != nil || code != 200 || !strings.Contains(string(body), `"visits":[]`) {
			t.Fatalf("gateway: %v HTTP %d %s, want 200 with empty visits", err, code, body)
		}
		eventually(t, 15*time.Second, "breaker leaves closed", func() error {
			v, err := promQuery(ctx, l, `resilience4j_circuitbreaker_state{name="getOwnerDetails",state="closed"}`)
			if err == nil && v != 0 {
				err = fmt.Errorf("closed = %v", v)
			}
			return err
		})
		eventually(t, 5*time.Second, "ground truth records failures", func() error {
			secs, err := truth.Read(l.TruthFile)
			if err != nil {
				return err
			}
			var ok, failed int
			for _, s := range secs {
				ok += s.OK
				failed += s.Failed
			}
			if ok == 0 || failed == 0 {
				return fmt.Errorf("ok=%d failed=%d over %d seconds", ok, failed, len(secs))
			}
			return nil
		})
	})

	procs := l.Procs()
	start = time.Now()
	if err := DownByName(ctx, cfg.Name); err != nil {
		t.Fatalf("DownByName: %v", err)
	}
	down = true
	t.Logf("lab down in %s", time.Since(start).Round(time.Millisecond))
	assertGone(t, cfg, procs)
	assertHostUntouched(t, before, cfg.Prefix)
}

func assertGone(t *testing.T, cfg Config, procs []Proc) {
	t.Helper()
	nss, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if strings.HasPrefix(ns, cfg.Prefix+"-") {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	for _, p := range procs {
		if alive(p.PID) {
			t.Errorf("process %s (pid %d) left behind", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(filepath.Join(DefaultStateRoot, cfg.Name)); !os.IsNotExist(err) {
		t.Errorf("state dir left behind: %v", err)
	}
}

func TestIntegrationUpFailureCleansUp(t *testing.T) {
	requireRoot(t)
	cfg := testConfig(t, buildBins(t))
	cfg.Knobs = map[string][]string{"api-gateway": {"--breaker-window=0"}} // invalid: the gateway exits
	before := hostNet(t)
	l, err := Up(t.Context(), cfg)
	if err == nil {
		_ = l.Down(context.Background())
		t.Fatal("Up succeeded with a gateway that cannot start")
	}
	t.Logf("Up failed as it should: %v", err)
	assertGone(t, cfg, nil)
	assertHostUntouched(t, before, cfg.Prefix)
}
