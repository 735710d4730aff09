package prom

import (
	"context"
	"testing"
	"time"

	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/probes/promtest"
)

func TestAlertsQuery(t *testing.T) {
	got := AlertsQuery("VisitsDown", map[string]string{"team": "pet\"clinic", "severity": "page"})
	if want := `ALERTS{alertname="VisitsDown",severity="page",team="pet\"clinic"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestIntegrationAlertStates reads real ALERTS series: a rule without a
// for clause fires at once, one with a long for stays pending, one whose
// condition never holds never shows.
func TestIntegrationAlertStates(t *testing.T) {
	srv := promtest.StartWith(t, promtest.Options{ScrapeInterval: 250 * time.Millisecond, Rules: `groups:
  - name: t
    rules:
      - alert: Firing
        expr: vector(1)
        labels: {severity: page}
      - alert: Pending
        expr: vector(1)
        for: 1h
      - alert: Never
        expr: vector(0) > 1
`})
	e, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	start := time.Now()
	time.Sleep(2 * time.Second)
	end := time.Now()
	last := func(name string, labels map[string]string) string {
		t.Helper()
		pts, err := e.AlertStates(ctx, name, labels, start, end, 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n := int(end.Sub(start)/(250*time.Millisecond)) + 1; len(pts) != n {
			t.Fatalf("%s: %d points, want %d", name, len(pts), n)
		}
		return pts[len(pts)-1].State
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"Firing", nil, probes.AlertFiring},
		{"Firing", map[string]string{"severity": "page"}, probes.AlertFiring},
		{"Firing", map[string]string{"severity": "info"}, probes.AlertInactive},
		{"Pending", nil, probes.AlertPending},
		{"Never", nil, probes.AlertInactive},
	} {
		if got := last(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s %v: state %q, want %q", tc.name, tc.labels, got, tc.want)
		}
	}
}
