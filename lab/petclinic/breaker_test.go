package petclinic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

var errBoom = errors.New("boom")

func newTestBreaker(t *testing.T, cfg BreakerConfig) (*Breaker, *fakeClock, *prometheus.Registry) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	reg := prometheus.NewRegistry()
	b, err := NewBreaker(cfg, reg, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, clk, reg
}

func call(b *Breaker, fail bool) error {
	return b.Execute(context.Background(), func(context.Context) error {
		if fail {
			return errBoom
		}
		return nil
	})
}

func TestBreakerStateMachine(t *testing.T) {
	cfg := DefaultBreakerConfig()
	b, clk, _ := newTestBreaker(t, cfg)

	// Below minimumNumberOfCalls nothing trips, even at 100% failures.
	for i := 0; i < 4; i++ {
		if err := call(b, true); !errors.Is(err, errBoom) {
			t.Fatalf("call %d: got %v, want the call's own error", i, err)
		}
	}
	if got := b.State(); got != StateClosed {
		t.Fatalf("after 4 failures: state %s, want closed", got)
	}
	// The fifth failure reaches minCalls with a 100% failure rate.
	_ = call(b, true)
	if got := b.State(); got != StateOpen {
		t.Fatalf("after 5 failures: state %s, want open", got)
	}
	// OPEN: not permitted, the function is not called.
	called := false
	err := b.Execute(context.Background(), func(context.Context) error { called = true; return nil })
	if !errors.Is(err, ErrCallNotPermitted) || called {
		t.Fatalf("open: err=%v called=%v, want ErrCallNotPermitted without a call", err, called)
	}
	clk.advance(cfg.WaitDurationInOpenState - time.Millisecond)
	if got := b.State(); got != StateOpen {
		t.Fatalf("before waitDurationInOpenState: state %s, want open", got)
	}
	clk.advance(time.Millisecond)
	if got := b.State(); got != StateHalfOpen {
		t.Fatalf("after waitDurationInOpenState: state %s, want half_open", got)
	}

	// HALF_OPEN: 3 permits; a 4th concurrent call is not permitted.
	release := make(chan struct{})
	done := make(chan error, 3)
	started := make(chan struct{}, 3)
	for i := 0; i < 3; i++ {
		go func() {
			done <- b.Execute(context.Background(), func(context.Context) error { started <- struct{}{}; <-release; return nil })
		}()
	}
	for i := 0; i < 3; i++ {
		<-started
	}
	if err := call(b, false); !errors.Is(err, ErrCallNotPermitted) {
		t.Fatalf("half-open with permits exhausted: got %v, want ErrCallNotPermitted", err)
	}
	close(release)
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.State(); got != StateClosed {
		t.Fatalf("after 3 successful half-open calls: state %s, want closed", got)
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	cfg := DefaultBreakerConfig()
	b, clk, _ := newTestBreaker(t, cfg)
	for i := 0; i < 5; i++ {
		_ = call(b, true)
	}
	clk.advance(cfg.WaitDurationInOpenState)
	_ = call(b, false)
	_ = call(b, true)
	if got := b.State(); got != StateHalfOpen {
		t.Fatalf("after 2 of 3 half-open calls: state %s, want half_open", got)
	}
	_ = call(b, true) // 2/3 failed = 66% >= 50%
	if got := b.State(); got != StateOpen {
		t.Fatalf("state %s, want open", got)
	}
}

func TestBreakerThreshold(t *testing.T) {
	tests := []struct {
		name    string
		outcome []bool // true = failure
		want    BreakerState
	}{
		{"below threshold", []bool{true, false, false, true, false, false, false, false, false, false}, StateClosed},
		{"exactly threshold", []bool{false, false, false, true, true, true}, StateOpen},
		{"old failures slide out", []bool{true, true, false, false, false, false, false, false, false, false, false, false, false, true, true}, StateClosed},
		{"window of 10 at 50%", []bool{false, false, false, false, false, true, true, true, true, true}, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTestBreaker(t, DefaultBreakerConfig())
			for _, f := range tt.outcome {
				_ = call(b, f)
			}
			if got := b.State(); got != tt.want {
				t.Fatalf("state %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBreakerStaleResultIgnored(t *testing.T) {
	b, _, _ := newTestBreaker(t, DefaultBreakerConfig())
	gen, ok := b.acquire() // a call permitted while closed ...
	if !ok {
		t.Fatal("closed breaker refused a call")
	}
	for i := 0; i < 5; i++ {
		_ = call(b, true)
	}
	b.record(gen, time.Millisecond, false) // ... that ends after the trip
	if got := b.State(); got != StateOpen {
		t.Fatalf("state %s, want open", got)
	}
}

func TestBreakerMetrics(t *testing.T) {
	cfg := DefaultBreakerConfig()
	b, _, reg := newTestBreaker(t, cfg)
	_ = call(b, false)
	for i := 0; i < 5; i++ {
		_ = call(b, true) // the 4th trips it (4/5 = 80%), the 5th is not permitted
	}
	_ = call(b, false) // not permitted
	samples := scrape(t, reg)
	for _, s := range allStates {
		want := 0.0
		if s == StateOpen {
			want = 1
		}
		mustSample(t, samples, "resilience4j_circuitbreaker_state", map[string]string{"name": cfg.Name, "state": string(s)}, want)
	}
	mustSample(t, samples, "resilience4j_circuitbreaker_not_permitted_calls_total", map[string]string{"name": cfg.Name, "kind": "not_permitted"}, 2)
	mustSample(t, samples, "resilience4j_circuitbreaker_calls_seconds_count", map[string]string{"name": cfg.Name, "kind": "successful"}, 1)
	mustSample(t, samples, "resilience4j_circuitbreaker_calls_seconds_count", map[string]string{"name": cfg.Name, "kind": "failed"}, 4)
	mustSample(t, samples, "resilience4j_circuitbreaker_calls_seconds_count", map[string]string{"name": cfg.Name, "kind": "ignored"}, 0)
}

func TestBreakerConfigValidate(t *testing.T) {
	bad := DefaultBreakerConfig()
	bad.FailureRateThreshold = 0
	if _, err := NewBreaker(bad, nil, nil, nil); err == nil {
		t.Fatal("threshold 0 accepted")
	}
}
