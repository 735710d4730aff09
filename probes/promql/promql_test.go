package promql

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		q        string
		fns      []string
		windows  []time.Duration
		rateVar  bool
		lookback time.Duration // with $__rate_interval = 1s
	}{
		{q: `max(breaker_state{state="closed"})`},
		{q: `sum(irate(x[5s])) / sum(irate(y[5s]))`, fns: []string{"irate"}, windows: []time.Duration{5 * time.Second, 5 * time.Second}, lookback: 5 * time.Second},
		{q: `sum(rate(x{a="[1m]"}[$__rate_interval]))`, fns: []string{"rate"}, rateVar: true, lookback: time.Second},
		{q: `max_over_time(rate(x[30s])[5m:1m])`, fns: []string{"max_over_time", "rate"}, windows: []time.Duration{5 * time.Minute, 30 * time.Second}, lookback: 5 * time.Minute},
	} {
		info, err := Analyze(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		if !slices.Equal(info.Functions, tc.fns) || !slices.Equal(info.Windows, tc.windows) || info.UsesRateInterval != tc.rateVar {
			t.Errorf("%s: got %+v, want functions %v windows %v rate interval %v", tc.q, info, tc.fns, tc.windows, tc.rateVar)
		}
		if got := info.Lookback(time.Second); got != tc.lookback {
			t.Errorf("%s: lookback %s, want %s", tc.q, got, tc.lookback)
		}
	}
}

func TestAnalyzeRefusesBadPromQL(t *testing.T) {
	for _, q := range []string{`sum(rate(x[5s])`, `rate(x)`, `x[` + sentinel + `]`} {
		if _, err := Analyze(q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
}

func TestWindowAndExpand(t *testing.T) {
	// Lab: scrape 250ms, judged every scrape: four scrapes.
	if got := Window(250*time.Millisecond, 250*time.Millisecond); got != time.Second {
		t.Errorf("Window(250ms, 250ms) = %s, want 1s", got)
	}
	// Judged every 30s round against a 15s scrape: the round plus a scrape.
	if got := Window(30*time.Second, 15*time.Second); got != time.Minute {
		t.Errorf("Window(30s, 15s) = %s, want 1m", got)
	}
	q := Expand(`rate(a[$__rate_interval]) / rate(b[$__rate_interval])`, 1500*time.Millisecond)
	if strings.Contains(q, "$") || !strings.Contains(q, "[1s500ms]") {
		t.Errorf("Expand: %s", q)
	}
	if _, err := Analyze(q); err != nil {
		t.Errorf("expanded query does not parse: %v", err)
	}
}
