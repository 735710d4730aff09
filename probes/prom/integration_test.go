package prom

import (
	"github.com/chaosd/chaosd/probes"

	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/probes/promtest"
)

// exporter serves a registry with a gauge chaosd_test_level{shard} (a=1,
// b=2, c=3) and a counter chaosd_test_events_total on 127.0.0.1.
type exporter struct {
	level  *prometheus.GaugeVec
	events prometheus.Counter
	target string // host:port
}

func startExporter(t *testing.T) *exporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	x := &exporter{
		level: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chaosd_test_level", Help: "Test gauge with one series per shard.",
		}, []string{"shard"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chaosd_test_events_total", Help: "Test counter.",
		}),
	}
	reg.MustRegister(x.level, x.events)
	x.level.WithLabelValues("a").Set(1)
	x.level.WithLabelValues("b").Set(2)
	x.level.WithLabelValues("c").Set(3)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	x.target = strings.TrimPrefix(srv.URL, "http://")
	return x
}

// waitFor evaluates p until it holds or 15s pass, and returns the last result.
func waitFor(t *testing.T, e *Evaluator, p probes.Probe) probes.Result {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.Eval(t.Context(), p, time.Time{})
		if r.OK || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestIntegrationEval(t *testing.T) {
	x := startExporter(t)
	url := promtest.Start(t, x.target)
	e := newEvaluator(t, url, WithLogger(zaptest.NewLogger(t)))

	if err := e.Ping(t.Context()); err != nil {
		t.Fatalf("Ping(%s) = %v, want nil", url, err)
	}

	b := `chaosd_test_level{shard="b"}` // 2
	t.Run("comparators", func(t *testing.T) {
		tests := []struct {
			op   probes.Op
			th   float64
			want bool
		}{
			{probes.OpLT, 3, true}, {probes.OpLT, 2, false},
			{probes.OpLE, 2, true}, {probes.OpLE, 1.5, false},
			{probes.OpGT, 1, true}, {probes.OpGT, 2, false},
			{probes.OpGE, 2, true}, {probes.OpGE, 2.5, false},
			{probes.OpEQ, 2, true}, {probes.OpEQ, 3, false},
			{probes.OpNE, 3, true}, {probes.OpNE, 2, false},
		}
		for _, tt := range tests {
			p := probes.Probe{Name: "level", Query: b, Op: tt.op, Threshold: f(tt.th)}
			t.Run(p.Condition(), func(t *testing.T) {
				r := e.Eval(t.Context(), p, time.Time{})
				if r.OK != tt.want || r.Value != 2 || r.Error != "" || r.Err != nil || len(r.Series) != 1 {
					t.Fatalf("2 %s: got %+v, want OK=%v value 2", p.Condition(), r, tt.want)
				}
			})
		}
	})

	t.Run("between", func(t *testing.T) {
		tests := []struct {
			min, max float64
			want     bool
		}{{1.5, 2.5, true}, {2, 2, true}, {2, 3, true}, {0, 2, true}, {2.1, 3, false}, {0, 1.9, false}}
		for _, tt := range tests {
			p := probes.Probe{Name: "level", Query: b, Op: probes.OpBetween, Min: f(tt.min), Max: f(tt.max)}
			t.Run(p.Condition(), func(t *testing.T) {
				if r := e.Eval(t.Context(), p, time.Time{}); r.OK != tt.want || r.Value != 2 {
					t.Fatalf("2 %s: got %+v, want OK=%v", p.Condition(), r, tt.want)
				}
			})
		}
	})

	t.Run("series labels", func(t *testing.T) {
		r := e.Eval(t.Context(), probes.Probe{Name: "level", Query: b, Op: probes.OpGE, Threshold: f(0)}, time.Time{})
		want := fmt.Sprintf(`chaosd_test_level{instance=%q, job="test", shard="b"}`, x.target)
		if len(r.Series) != 1 || r.Series[0].Labels != want || !r.Series[0].OK {
			t.Fatalf("Series = %+v, want one with labels %s", r.Series, want)
		}
	})

	t.Run("empty", func(t *testing.T) {
		p := probes.Probe{Name: "none", Query: `chaosd_test_level{shard="nope"}`, Op: probes.OpGE, Threshold: f(0)}
		if r := e.Eval(t.Context(), p, time.Time{}); r.OK || r.Error != "empty result" || r.Err != nil || !math.IsNaN(r.Value) {
			t.Fatalf("empty: got %+v, want not OK with Error empty result", r)
		}
		p.OnEmpty = probes.OnEmptyPass
		if r := e.Eval(t.Context(), p, time.Time{}); !r.OK || r.Error != "" {
			t.Fatalf("empty with onEmpty pass: got %+v, want OK", r)
		}
	})

	t.Run("NaN", func(t *testing.T) {
		for _, q := range []string{"vector(0)/vector(0)", "0/0"} {
			p := probes.Probe{Name: "nan", Query: q, Op: probes.OpNE, Threshold: f(1)}
			if r := e.Eval(t.Context(), p, time.Time{}); r.OK || r.Error != "NaN" || !math.IsNaN(r.Value) {
				t.Fatalf("%s: got %+v, want not OK with Error NaN", q, r)
			}
		}
	})

	t.Run("Inf compares", func(t *testing.T) {
		p := probes.Probe{Name: "inf", Query: "vector(1)/vector(0)", Op: probes.OpGT, Threshold: f(1e308)}
		if r := e.Eval(t.Context(), p, time.Time{}); !r.OK || !math.IsInf(r.Value, 1) {
			t.Fatalf("+Inf > 1e308: got %+v, want OK", r)
		}
	})

	t.Run("scalar", func(t *testing.T) {
		p := probes.Probe{Name: "scalar", Query: "scalar(" + b + ")", Op: probes.OpEQ, Threshold: f(2)}
		if r := e.Eval(t.Context(), p, time.Time{}); !r.OK || r.Value != 2 || len(r.Series) != 1 {
			t.Fatalf("scalar: got %+v, want OK 2", r)
		}
	})

	t.Run("wrong result types", func(t *testing.T) {
		for q, want := range map[string]string{
			"chaosd_test_level[1m]": "range vector result: use an instant query",
			`"hello"`:               "string result: the query must return a number",
		} {
			if r := e.Eval(t.Context(), probes.Probe{Name: "t", Query: q, Op: probes.OpGE, Threshold: f(0)}, time.Time{}); r.OK || r.Error != want {
				t.Fatalf("%s: got %+v, want Error %q", q, r, want)
			}
		}
	})

	t.Run("syntax error", func(t *testing.T) {
		r := e.Eval(t.Context(), probes.Probe{Name: "bad", Query: "sum(chaosd_test_level", Op: probes.OpGE, Threshold: f(0)}, time.Time{})
		if r.OK || !errors.Is(r.Err, probes.ErrQuery) || !strings.Contains(r.Error, "parse error") || !math.IsNaN(r.Value) {
			t.Fatalf("syntax error: got %+v, want not OK, probes.ErrQuery, Error with the parse error", r)
		}
	})

	t.Run("multi-series", func(t *testing.T) {
		q := "chaosd_test_level" // 1, 2, 3
		tests := []struct {
			name      string
			match     probes.Match
			op        probes.Op
			th        float64
			wantOK    bool
			wantValue float64
			wantErr   string
		}{
			{"no match is ambiguous", probes.MatchSingle, probes.OpGE, 0, false, math.NaN(), "3 series: set match: all or any"},
			{"all hold", probes.MatchAll, probes.OpGE, 1, true, 1, ""},
			{"all, one fails", probes.MatchAll, probes.OpGT, 1, false, 1, ""},
			{"any holds", probes.MatchAny, probes.OpGT, 2.5, true, 3, ""},
			{"any, none holds", probes.MatchAny, probes.OpGT, 5, false, 3, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := probes.Probe{Name: "multi", Query: q, Op: tt.op, Threshold: f(tt.th), Match: tt.match}
				r := e.Eval(t.Context(), p, time.Time{})
				sameValue := r.Value == tt.wantValue || math.IsNaN(r.Value) && math.IsNaN(tt.wantValue)
				if r.OK != tt.wantOK || !sameValue || r.Error != tt.wantErr || len(r.Series) != 3 {
					t.Fatalf("got %+v, want OK=%v value %v error %q and 3 series", r, tt.wantOK, tt.wantValue, tt.wantErr)
				}
			})
		}
	})

	// Last: these change the exporter's values.
	t.Run("value change is seen, past value stays", func(t *testing.T) {
		before := time.Now()
		x.level.WithLabelValues("b").Set(7)
		p := probes.Probe{Name: "level", Query: b, Op: probes.OpEQ, Threshold: f(7)}
		if r := waitFor(t, e, p); !r.OK || r.Value != 7 {
			t.Fatalf("after setting 7: got %+v, want OK 7 within 15s", r)
		}
		if r := e.Eval(t.Context(), p, before); r.OK || r.Value != 2 || !r.Time.Equal(before) {
			t.Fatalf("evaluated at %s (before the change): got %+v, want value 2", before, r)
		}
	})

	t.Run("counter change is seen", func(t *testing.T) {
		p := probes.Probe{Name: "events", Query: "chaosd_test_events_total", Op: probes.OpGE, Threshold: f(5)}
		if r := e.Eval(t.Context(), p, time.Time{}); r.OK || r.Value != 0 {
			t.Fatalf("before: got %+v, want value 0, not OK", r)
		}
		x.events.Add(5)
		if r := waitFor(t, e, p); !r.OK || r.Value != 5 {
			t.Fatalf("after Add(5): got %+v, want OK 5 within 15s", r)
		}
	})
}

// TestIntegrationEvalAtPastTime backfills deterministic history with
// promtool and evaluates at past instants.
func TestIntegrationEvalAtPastTime(t *testing.T) {
	// 60 minutes of history ending 30 minutes ago, one sample per 15s:
	// 10 for the first half, 20 for the second.
	base := time.Now().Add(-90 * time.Minute).Truncate(time.Minute)
	var om strings.Builder
	om.WriteString("# HELP chaosd_backfill Backfilled test gauge.\n# TYPE chaosd_backfill gauge\n")
	for s := 0; s <= 3600; s += 15 {
		v := 10
		if s >= 1800 {
			v = 20
		}
		fmt.Fprintf(&om, "chaosd_backfill{phase=\"x\"} %d %d\n", v, base.Unix()+int64(s))
	}
	om.WriteString("# EOF\n")
	srv := promtest.StartWith(t, promtest.Options{OpenMetrics: om.String()})
	e := newEvaluator(t, srv.URL)

	p := probes.Probe{Name: "backfill", Query: `chaosd_backfill{phase="x"}`, Op: probes.OpLT, Threshold: f(15)}
	tests := []struct {
		name      string
		at        time.Time
		wantOK    bool
		wantValue float64
		wantErr   string
	}{
		{"first half", base.Add(15 * time.Minute), true, 10, ""},
		{"second half", base.Add(45 * time.Minute), false, 20, ""},
		{"just before the step", base.Add(30*time.Minute - time.Second), true, 10, ""},
		{"before any data", base.Add(-time.Minute), false, math.NaN(), "empty result"},
		{"now, long after the last sample", time.Time{}, false, math.NaN(), "empty result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.Eval(t.Context(), p, tt.at)
			sameValue := r.Value == tt.wantValue || math.IsNaN(r.Value) && math.IsNaN(tt.wantValue)
			if r.OK != tt.wantOK || !sameValue || r.Error != tt.wantErr {
				t.Fatalf("at %s: got %+v, want OK=%v value %v error %q", tt.at, r, tt.wantOK, tt.wantValue, tt.wantErr)
			}
		})
	}

	t.Run("range finds the change between two rounds", func(t *testing.T) {
		// Rounds 1 minute apart around the step at base+30m: the range
		// evaluation at 15s steps places the change exactly.
		from, to := base.Add(29*time.Minute+10*time.Second), base.Add(30*time.Minute+10*time.Second)
		rs, err := e.EvalRange(t.Context(), p, from, to, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 5 {
			t.Fatalf("got %d results for 5 steps", len(rs))
		}
		firstFail := time.Time{}
		for _, r := range rs {
			if !r.OK && firstFail.IsZero() {
				firstFail = r.Time
			}
		}
		// Samples every 15s from base; the 20 at base+30m is the value
		// from then on (Prometheus takes the latest sample at or before
		// each step).
		if want := base.Add(30*time.Minute + 10*time.Second); !firstFail.Equal(want) {
			t.Fatalf("first failing step %s, want %s; results %+v", firstFail, want, rs)
		}
		// Start times with sub-millisecond digits (probe rounds have them)
		// must still line up with Prometheus' millisecond steps.
		odd := from.Add(547637592 * time.Nanosecond)
		rs, err = e.EvalRange(t.Context(), p, odd, to, 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r.Error != "" || !r.Time.Equal(odd.Add(time.Duration(i)*250*time.Millisecond)) {
				t.Fatalf("step %d: %+v (every step has data; times are the requested steps)", i, r)
			}
		}
		if _, err := e.EvalRange(t.Context(), probes.Probe{Name: "bad", Query: "sum(", Op: probes.OpEQ, Threshold: f(1)}, from, to, time.Second); !errors.Is(err, probes.ErrQuery) {
			t.Fatalf("bad query: err %v, want ErrQuery", err)
		}
	})

	t.Run("scrape interval", func(t *testing.T) {
		d, err := e.ScrapeInterval(t.Context())
		if err != nil || d != time.Second {
			t.Fatalf("ScrapeInterval = %s, %v; want promtest's 1s", d, err)
		}
	})
}

func TestIntegrationPingUnreachable(t *testing.T) {
	// A Prometheus that went away: the subtest's cleanup stops it.
	var url string
	t.Run("up", func(t *testing.T) {
		url = promtest.Start(t)
		e := newEvaluator(t, url)
		if err := e.Ping(t.Context()); err != nil {
			t.Fatalf("Ping while up = %v", err)
		}
	})
	e := newEvaluator(t, url)
	if err := e.Ping(t.Context()); !errors.Is(err, probes.ErrUnreachable) {
		t.Fatalf("Ping after Prometheus stopped = %v, want ErrUnreachable", err)
	}
	r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "vector(1)", Op: probes.OpEQ, Threshold: f(1)}, time.Time{})
	if r.OK || !errors.Is(r.Err, probes.ErrUnreachable) || !math.IsNaN(r.Value) {
		t.Fatalf("Eval after Prometheus stopped = %+v, want not OK, probes.ErrUnreachable, no value", r)
	}
}
