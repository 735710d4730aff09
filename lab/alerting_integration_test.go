package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/lab/alertsink"
)

// promSeries returns the label sets of an instant query's result.
func promSeries(ctx context.Context, l *Lab, q string) ([]map[string]string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", l.PrometheusURL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := l.HTTPClient(3 * time.Second).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	var out []map[string]string
	for _, r := range body.Data.Result {
		out = append(out, r.Metric)
	}
	return out, nil
}

// getJSON GETs u from the mgmt namespace and decodes the answer into v.
func getJSON(ctx context.Context, l *Lab, u string, v any) error {
	code, body, err := getIn(ctx, l.HTTPClient(3*time.Second), u)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d %s", u, code, body)
	}
	return json.Unmarshal(body, v)
}

// amAlert is the part of Alertmanager's GET /api/v2/alerts the test reads.
type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// notified returns the recorded notifications of alertname with status.
func notified(t *testing.T, l *Lab, alertname, status string) []alertsink.Notification {
	t.Helper()
	ns, err := alertsink.Read(l.AlertsFile)
	if err != nil {
		t.Fatalf("read %s: %v", l.AlertsFile, err)
	}
	return alertsink.Of(ns, alertname, status)
}

// TestIntegrationAlerting proves the lab's alerting pipeline without
// chaosd: a TGW cut made by hand inside the lab's C1 node namespaces
// fires PetClinicVisitsCallsFailing in Prometheus, Alertmanager notifies
// the webhook sink, a silence made through Alertmanager's API v2 keeps
// PetClinicGatewayBreakerOpen from notifying while it fires, the 5xx alert
// stays quiet (the breaker's fallback hides the partition), and healing
// sends the resolved notification.
func TestIntegrationAlerting(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	n := rand.IntN(1 << 20)
	cfg := Config{
		Name:   fmt.Sprintf("italert-%d-%x", os.Getpid(), n),
		Prefix: fmt.Sprintf("a%05x", n),
		BinDir: buildBins(t),
		Logger: zaptest.NewLogger(t),
	}
	before := hostNet(t)
	testStart := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("lab up in %s", time.Since(testStart).Round(time.Millisecond))
	down := false
	t.Cleanup(func() {
		if !down {
			_ = l.Down(context.Background())
		}
	})
	const (
		visitsAlert  = "PetClinicVisitsCallsFailing"
		breakerAlert = "PetClinicGatewayBreakerOpen"
		errorsAlert  = "PetClinicGatewayErrors"
	)

	t.Run("prometheus evaluates the rules and knows the alertmanager", func(t *testing.T) {
		eventually(t, 10*time.Second, "active alertmanager", func() error {
			var body struct {
				Data struct {
					Active []struct {
						URL string `json:"url"`
					} `json:"activeAlertmanagers"`
				} `json:"data"`
			}
			if err := getJSON(ctx, l, l.PrometheusURL+"/api/v1/alertmanagers", &body); err != nil {
				return err
			}
			if len(body.Data.Active) != 1 || !strings.HasPrefix(body.Data.Active[0].URL, l.AlertmanagerURL+"/api/v2/alerts") {
				return fmt.Errorf("active alertmanagers %+v, want %s", body.Data.Active, l.AlertmanagerURL)
			}
			return nil
		})
		var rules struct {
			Data struct {
				Groups []struct {
					Name  string `json:"name"`
					File  string `json:"file"`
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(ctx, l, l.PrometheusURL+"/api/v1/rules", &rules); err != nil {
			t.Fatal(err)
		}
		var groups, alerts []string
		for _, g := range rules.Data.Groups {
			groups = append(groups, g.Name)
			if !slices.Contains(l.RuleFiles, g.File) {
				t.Errorf("group %s from %s, not one of the lab's rule files %v", g.Name, g.File, l.RuleFiles)
			}
			for _, r := range g.Rules {
				alerts = append(alerts, r.Name)
				if r.Health == "err" {
					t.Errorf("rule %s: health %s", r.Name, r.Health)
				}
			}
		}
		for _, want := range []string{"petclinic-slo", "chaosd", "petclinic-lab-slo"} {
			if !slices.Contains(groups, want) {
				t.Errorf("rule group %s not loaded (groups %v)", want, groups)
			}
		}
		for _, want := range []string{visitsAlert, breakerAlert, errorsAlert, "ChaosdRunFailed"} {
			if !slices.Contains(alerts, want) {
				t.Errorf("alert %s not loaded", want)
			}
		}
	})

	// Steady state: nothing fires, nothing was sent.
	if s, err := promSeries(ctx, l, `ALERTS{alertname=~"PetClinic.*"}`); err != nil || len(s) != 0 {
		t.Fatalf("PetClinic alerts before the cut: %v %v", s, err)
	}
	if ns, err := alertsink.Read(l.AlertsFile); err != nil || len(ns) != 0 {
		t.Fatalf("notifications before the cut: %v %v", ns, err)
	}

	// Silence the breaker alert through Alertmanager's API v2 before it
	// can fire.
	silence, _ := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": breakerAlert, "isRegex": false, "isEqual": true}},
		"startsAt":  time.Now().UTC().Format(time.RFC3339),
		"endsAt":    time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339),
		"createdBy": "TestIntegrationAlerting",
		"comment":   "the breaker alert is known during this partition; the visits alert pages",
	})
	req, _ := http.NewRequestWithContext(ctx, "POST", l.AlertmanagerURL+"/api/v2/silences", bytes.NewReader(silence))
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.HTTPClient(3 * time.Second).Do(req)
	if err != nil {
		t.Fatalf("create silence: %v", err)
	}
	var created struct {
		SilenceID string `json:"silenceID"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || created.SilenceID == "" {
		t.Fatalf("create silence: HTTP %d %v %+v", resp.StatusCode, err, created)
	}

	// Cut the TGW path by hand: C1's nodes drop everything to C2 (and so
	// the replies to C2), inside the lab's namespaces only.
	cutRule := []string{"ip", "rule", "add", "pref", "1000", "to", C2CIDR.String(), "blackhole"}
	healRule := []string{"ip", "rule", "del", "pref", "1000", "to", C2CIDR.String(), "blackhole"}
	c1 := []string{"c1-n1", "c1-n2"}
	cut := time.Now()
	for _, node := range c1 {
		if _, err := l.Exec(node, cutRule...); err != nil {
			t.Fatal(err)
		}
	}
	healed := false
	heal := func() {
		if healed {
			return
		}
		healed = true
		for _, node := range c1 {
			if _, err := l.Exec(node, healRule...); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(heal)

	var firedAt, notifiedAt time.Time
	eventually(t, 20*time.Second, visitsAlert+" firing in Prometheus", func() error {
		s, err := promSeries(ctx, l, `ALERTS{alertname="`+visitsAlert+`",alertstate="firing"}`)
		if err == nil && len(s) == 0 {
			err = fmt.Errorf("not firing yet")
		}
		return err
	})
	firedAt = time.Now()
	eventually(t, 10*time.Second, visitsAlert+" notified", func() error {
		ns := notified(t, l, visitsAlert, "firing")
		if len(ns) == 0 {
			return fmt.Errorf("no notification yet")
		}
		notifiedAt = ns[0].Received
		if lb := ns[0].Labels; lb["severity"] != "page" || lb["team"] != "petclinic" || lb["cluster"] != "c1" || ns[0].Receiver != AlertReceiver {
			t.Errorf("notification %+v", ns[0])
		}
		if ns[0].StartsAt.Before(cut) {
			t.Errorf("alert starts at %s, before the cut at %s", ns[0].StartsAt, cut)
		}
		return nil
	})
	t.Logf("cut → %s firing in Prometheus (ALERTS, polled every 200ms): %s; → notification received: %s",
		visitsAlert, firedAt.Sub(cut).Round(10*time.Millisecond), notifiedAt.Sub(cut).Round(10*time.Millisecond))

	// The breaker alert fires as well, reaches Alertmanager and is
	// suppressed by the silence: no notification.
	var suppressedAt time.Time
	eventually(t, 10*time.Second, breakerAlert+" suppressed by the silence", func() error {
		if s, err := promSeries(ctx, l, `ALERTS{alertname="`+breakerAlert+`",alertstate="firing"}`); err != nil || len(s) == 0 {
			return fmt.Errorf("not firing in Prometheus: %v %v", s, err)
		}
		var as []amAlert
		if err := getJSON(ctx, l, l.AlertmanagerURL+"/api/v2/alerts?filter="+url.QueryEscape(`alertname="`+breakerAlert+`"`), &as); err != nil {
			return err
		}
		if len(as) != 1 || as[0].Status.State != "suppressed" || !slices.Contains(as[0].Status.SilencedBy, created.SilenceID) {
			return fmt.Errorf("alertmanager holds %+v, want it suppressed by %s", as, created.SilenceID)
		}
		return nil
	})
	suppressedAt = time.Now()
	// Several group_wait/group_interval rounds pass: still nothing sent.
	time.Sleep(3 * time.Second)
	if ns := notified(t, l, breakerAlert, ""); len(ns) != 0 {
		t.Errorf("silenced %s was notified: %+v", breakerAlert, ns)
	}
	t.Logf("%s firing and suppressed %s after the cut; no notification in the %s after",
		breakerAlert, suppressedAt.Sub(cut).Round(10*time.Millisecond), time.Since(suppressedAt).Round(100*time.Millisecond))

	// Heal: the visits alert resolves and says so.
	heal()
	healAt := time.Now()
	partition := healAt.Sub(cut)
	var resolvedAt time.Time
	eventually(t, 30*time.Second, visitsAlert+" resolved notification", func() error {
		ns := notified(t, l, visitsAlert, "resolved")
		if len(ns) == 0 {
			return fmt.Errorf("no resolved notification yet")
		}
		resolvedAt = ns[0].Received
		if ns[0].EndsAt.Before(healAt) || ns[0].EndsAt.After(resolvedAt) {
			t.Errorf("resolved alert ends at %s; healed at %s, notified at %s", ns[0].EndsAt, healAt, resolvedAt)
		}
		return nil
	})
	t.Logf("heal → %s resolved notification: %s (partition lasted %s)", visitsAlert,
		resolvedAt.Sub(healAt).Round(10*time.Millisecond), partition.Round(100*time.Millisecond))
	eventually(t, 15*time.Second, breakerAlert+" resolved in Prometheus", func() error {
		if s, err := promSeries(ctx, l, `ALERTS{alertname=~"PetClinic.*"}`); err != nil || len(s) != 0 {
			return fmt.Errorf("still active: %v %v", s, err)
		}
		return nil
	})
	time.Sleep(2 * time.Second)

	// Over the whole test: the silenced alert was never sent (firing or
	// resolved), and the fallback kept the 5xx alert from even pending.
	if ns := notified(t, l, breakerAlert, ""); len(ns) != 0 {
		t.Errorf("silenced %s was notified: %+v", breakerAlert, ns)
	}
	if ns := notified(t, l, errorsAlert, ""); len(ns) != 0 {
		t.Errorf("%s was notified during a partition the fallback hides: %+v", errorsAlert, ns)
	}
	window := fmt.Sprintf("%ds", int(time.Since(testStart).Seconds())+1)
	if s, err := promSeries(ctx, l, `count_over_time(ALERTS{alertname="`+errorsAlert+`"}[`+window+`])`); err != nil || len(s) != 0 {
		t.Errorf("%s was pending or firing during the partition: %v %v", errorsAlert, s, err)
	}
	if s, err := promSeries(ctx, l, `count_over_time(ALERTS{alertname="`+breakerAlert+`",alertstate="firing"}[`+window+`])`); err != nil || len(s) != 1 {
		t.Errorf("%s never fired (the silence proved nothing): %v %v", breakerAlert, s, err)
	}
	if ns := notified(t, l, visitsAlert, "firing"); len(ns) != 1 {
		t.Errorf("%s firing notified %d times, want once (repeat_interval %s)", visitsAlert, len(ns), AlertRepeatInterval)
	}

	procs := l.Procs()
	if err := DownByName(ctx, cfg.Name); err != nil {
		t.Fatalf("DownByName: %v", err)
	}
	down = true
	assertGone(t, cfg, procs)
	assertHostUntouched(t, before, cfg.Prefix)
	t.Logf("whole test %s", time.Since(testStart).Round(time.Second))
}
