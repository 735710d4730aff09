package petclinic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BreakerState is a resilience4j circuit breaker state.
type BreakerState string

// The states resilience4j exposes in resilience4j_circuitbreaker_state.
const (
	StateClosed      BreakerState = "closed"
	StateOpen        BreakerState = "open"
	StateHalfOpen    BreakerState = "half_open"
	StateDisabled    BreakerState = "disabled"
	StateForcedOpen  BreakerState = "forced_open"
	StateMetricsOnly BreakerState = "metrics_only"
)

var allStates = []BreakerState{StateClosed, StateOpen, StateHalfOpen, StateDisabled, StateForcedOpen, StateMetricsOnly}

// ErrCallNotPermitted is resilience4j's CallNotPermittedException: the
// breaker is open, or half-open with every permit taken.
var ErrCallNotPermitted = errors.New("CircuitBreaker does not permit further calls")

// BreakerConfig mirrors resilience4j's COUNT_BASED CircuitBreakerConfig.
type BreakerConfig struct {
	Name                                  string
	SlidingWindowSize                     int
	MinimumNumberOfCalls                  int
	FailureRateThreshold                  float64 // percent
	WaitDurationInOpenState               time.Duration
	PermittedNumberOfCallsInHalfOpenState int
}

// DefaultBreakerConfig is the lab's getOwnerDetails configuration.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		Name:                                  "getOwnerDetails",
		SlidingWindowSize:                     10,
		MinimumNumberOfCalls:                  5,
		FailureRateThreshold:                  50,
		WaitDurationInOpenState:               5 * time.Second,
		PermittedNumberOfCallsInHalfOpenState: 3,
	}
}

// Validate checks the configuration like resilience4j's builder does.
func (c BreakerConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("circuit breaker name is empty")
	case c.SlidingWindowSize < 1:
		return fmt.Errorf("slidingWindowSize must be >= 1, got %d", c.SlidingWindowSize)
	case c.MinimumNumberOfCalls < 1:
		return fmt.Errorf("minimumNumberOfCalls must be >= 1, got %d", c.MinimumNumberOfCalls)
	case c.FailureRateThreshold <= 0 || c.FailureRateThreshold > 100:
		return fmt.Errorf("failureRateThreshold must be in (0,100], got %g", c.FailureRateThreshold)
	case c.WaitDurationInOpenState < time.Millisecond:
		return fmt.Errorf("waitDurationInOpenState must be >= 1ms, got %s", c.WaitDurationInOpenState)
	case c.PermittedNumberOfCallsInHalfOpenState < 1:
		return fmt.Errorf("permittedNumberOfCallsInHalfOpenState must be >= 1, got %d", c.PermittedNumberOfCallsInHalfOpenState)
	}
	return nil
}

// Breaker is a COUNT_BASED circuit breaker modelled on resilience4j with
// automaticTransitionFromOpenToHalfOpenEnabled=true.
type Breaker struct {
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(from, to BreakerState)

	mu         sync.Mutex
	state      BreakerState
	generation uint64    // bumps on every transition; stale results are not recorded
	window     []bool    // ring of outcomes (true = failure) for the current state
	next       int       // ring write index
	filled     int       // outcomes recorded in the ring
	openedAt   time.Time // when OPEN was entered
	permits    int       // half-open permits left
	timer      *time.Timer

	stateGauge   *prometheus.GaugeVec
	calls        *timer
	notPermitted prometheus.Counter
	failureRate  prometheus.Gauge
}

// NewBreaker builds a closed breaker and registers its resilience4j
// metrics on reg (nil: not registered). now may be nil (time.Now).
func NewBreaker(cfg BreakerConfig, reg prometheus.Registerer, now func() time.Time, onChange func(from, to BreakerState)) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("circuit breaker %q: %w", cfg.Name, err)
	}
	if now == nil {
		now = time.Now
	}
	b := &Breaker{
		cfg:      cfg,
		now:      now,
		onChange: onChange,
		state:    StateClosed,
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resilience4j_circuitbreaker_state",
			Help: "The states of the circuit breaker",
		}, []string{"name", "state"}),
		calls: newTimer("resilience4j_circuitbreaker_calls_seconds", "Total number of calls which failed, succeeded or were ignored",
			[]string{"kind", "name"}),
		notPermitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resilience4j_circuitbreaker_not_permitted_calls_total",
			Help: "Total number of not permitted calls",
		}, []string{"kind", "name"}).WithLabelValues("not_permitted", cfg.Name),
		failureRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resilience4j_circuitbreaker_failure_rate",
			Help: "The failure rate of the circuit breaker",
		}, []string{"name"}).WithLabelValues(cfg.Name),
	}
	b.resetWindow(cfg.SlidingWindowSize)
	for _, k := range []string{"successful", "failed", "ignored"} {
		b.calls.touch(k, cfg.Name)
	}
	b.setGauges()
	if reg != nil {
		for _, c := range []prometheus.Collector{b.stateGauge, b.calls, b.notPermitted, b.failureRate} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register circuit breaker metrics: %w", err)
			}
		}
	}
	return b, nil
}

// State reports the current state, applying a due OPEN → HALF_OPEN
// transition first.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.transitionIfDue()
	return b.state
}

// Execute runs fn if the breaker permits it and records its outcome; an
// error from fn (including a timeout) is a failure. It returns
// ErrCallNotPermitted, without calling fn, when the call is not permitted.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	gen, ok := b.acquire()
	if !ok {
		b.notPermitted.Inc()
		return ErrCallNotPermitted
	}
	start := b.now()
	err := fn(ctx)
	b.record(gen, b.now().Sub(start), err != nil)
	return err
}

func (b *Breaker) acquire() (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.transitionIfDue()
	switch b.state {
	case StateClosed:
		return b.generation, true
	case StateHalfOpen:
		if b.permits > 0 {
			b.permits--
			return b.generation, true
		}
	}
	return 0, false
}

func (b *Breaker) record(gen uint64, d time.Duration, failed bool) {
	kind := "successful"
	if failed {
		kind = "failed"
	}
	b.calls.observe(d, kind, b.cfg.Name)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.transitionIfDue()
	if gen != b.generation || (b.state != StateClosed && b.state != StateHalfOpen) {
		return // the call was permitted by an earlier state
	}
	b.window[b.next] = failed
	b.next = (b.next + 1) % len(b.window)
	if b.filled < len(b.window) {
		b.filled++
	}
	rate, enough := b.rate()
	if enough {
		b.failureRate.Set(rate)
	}
	switch b.state {
	case StateClosed:
		if enough && rate >= b.cfg.FailureRateThreshold {
			b.transition(StateOpen)
		}
	case StateHalfOpen:
		if enough {
			if rate >= b.cfg.FailureRateThreshold {
				b.transition(StateOpen)
			} else {
				b.transition(StateClosed)
			}
		}
	}
}

// rate is the failure rate in percent of the recorded outcomes and
// whether enough calls were recorded to evaluate it.
func (b *Breaker) rate() (float64, bool) {
	need := b.cfg.MinimumNumberOfCalls
	if b.state == StateHalfOpen {
		need = b.cfg.PermittedNumberOfCallsInHalfOpenState
	}
	need = min(need, len(b.window))
	if b.filled < need {
		return -1, false
	}
	failures := 0
	for i := 0; i < b.filled; i++ {
		if b.window[i] {
			failures++
		}
	}
	return float64(failures) * 100 / float64(b.filled), true
}

func (b *Breaker) transitionIfDue() {
	if b.state == StateOpen && !b.now().Before(b.openedAt.Add(b.cfg.WaitDurationInOpenState)) {
		b.transition(StateHalfOpen)
	}
}

func (b *Breaker) resetWindow(n int) {
	b.window = make([]bool, n)
	b.next, b.filled = 0, 0
}

func (b *Breaker) transition(to BreakerState) {
	from := b.state
	b.state = to
	b.generation++
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	switch to {
	case StateClosed:
		b.resetWindow(b.cfg.SlidingWindowSize)
	case StateOpen:
		b.openedAt = b.now()
		// Automatic transition to half-open: wake up when the wait is over
		// so the state (and its gauge) moves without a call.
		b.timer = time.AfterFunc(b.cfg.WaitDurationInOpenState, func() { b.State() })
	case StateHalfOpen:
		b.resetWindow(b.cfg.PermittedNumberOfCallsInHalfOpenState)
		b.permits = b.cfg.PermittedNumberOfCallsInHalfOpenState
	}
	b.failureRate.Set(-1)
	b.setGauges()
	if b.onChange != nil {
		b.onChange(from, to)
	}
}

func (b *Breaker) setGauges() {
	for _, s := range allStates {
		v := 0.0
		if s == b.state {
			v = 1
		}
		b.stateGauge.WithLabelValues(b.cfg.Name, string(s)).Set(v)
	}
}

// Close stops the breaker's half-open timer.
func (b *Breaker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}
