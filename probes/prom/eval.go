// Package prom evaluates probes (package probes) against a Prometheus
// server with client_golang's API client: instant queries for probe
// rounds, range queries to place a change between two rounds, and the
// server's scrape interval.
package prom

import (
	"github.com/chaosd/chaosd/probes"

	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// DefaultTimeout bounds one query unless WithTimeout says otherwise.
const DefaultTimeout = 5 * time.Second

// Option configures an Evaluator.
type Option func(*options)

type options struct {
	rt      http.RoundTripper
	timeout time.Duration
	lg      *zap.Logger
}

// WithRoundTripper sets the HTTP transport (TLS, auth headers, proxies).
// The caller owns it: Close does not close its idle connections.
func WithRoundTripper(rt http.RoundTripper) Option {
	return func(o *options) { o.rt = rt }
}

// WithTimeout bounds each query (and Ping); it is also sent to Prometheus
// as the query's evaluation timeout. Default DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithLogger sets the logger; nil means no logging. Name it at the call
// site (lg.Named("probes")).
func WithLogger(lg *zap.Logger) Option {
	return func(o *options) { o.lg = lg }
}

// Evaluator runs probes against one Prometheus server. It is safe for
// concurrent use.
type Evaluator struct {
	address string
	api     v1.API
	timeout time.Duration
	lg      *zap.Logger
	own     *http.Transport // nil when the caller supplied the transport
}

// New returns an Evaluator for the Prometheus HTTP API at address (e.g.
// "http://127.0.0.1:9090"). It does not contact the server; use Ping for a
// preflight check.
func New(address string, opts ...Option) (*Evaluator, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("prometheus client for %q: timeout must be positive, got %s", address, o.timeout)
	}
	if o.lg == nil {
		o.lg = zap.NewNop()
	}
	e := &Evaluator{address: address, timeout: o.timeout, lg: o.lg}
	rt := o.rt
	if rt == nil {
		// Our own transport, not the shared default, so Close can drop
		// its idle connections.
		if t, ok := api.DefaultRoundTripper.(*http.Transport); ok {
			e.own = t.Clone()
		} else {
			e.own = http.DefaultTransport.(*http.Transport).Clone()
		}
		rt = e.own
	}
	c, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %q: %w", address, err)
	}
	e.api = v1.NewAPI(c)
	return e, nil
}

// Address returns the Prometheus address the Evaluator queries.
func (e *Evaluator) Address() string { return e.address }

// Close releases idle connections of the Evaluator's own transport. The
// Evaluator stays usable; Close only matters to callers that must not leave
// goroutines behind (tests, shutdown).
func (e *Evaluator) Close() {
	if e.own != nil {
		e.own.CloseIdleConnections()
	}
}

// Ping checks that Prometheus answers queries by running vector(1). An
// error wraps probes.ErrUnreachable when the server could not be reached (or did
// not answer in time), probes.ErrQuery when it answered wrongly.
func (e *Evaluator) Ping(ctx context.Context) error {
	v, err := e.query(ctx, "", "vector(1)", time.Time{})
	if err != nil {
		return fmt.Errorf("ping prometheus at %s: %w", e.address, err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value != 1 {
		return fmt.Errorf("ping prometheus at %s: %w: vector(1) returned %v", e.address, probes.ErrQuery, v)
	}
	return nil
}

// Eval runs p's query as an instant query at at (zero means now) and
// judges the result:
//
//   - a vector is the normal case, a scalar counts as one series; a range
//     vector or a string is an error;
//   - an empty vector fails with Error "empty result" unless probes.OnEmpty is
//     pass (then OK, Value NaN);
//   - NaN fails with Error "NaN" (0/0 means there was nothing to measure);
//     ±Inf compares like any number;
//   - more than one series needs probes.Match: without it the result is not OK
//     and Error asks for all or any; with all every series must hold and
//     Value is the worst series, with any one series must hold and Value
//     is the best;
//   - an invalid probe, a query error, a timeout or an unreachable server
//     is not OK with Error and Err set, never a silent 0.
//
// Warnings from Prometheus are logged, not failures. probes.Result.Time is the
// evaluation time used.
func (e *Evaluator) Eval(ctx context.Context, p probes.Probe, at time.Time) probes.Result {
	if at.IsZero() {
		at = time.Now()
	}
	r := probes.Result{Probe: p.Name, Time: at, Value: math.NaN()}
	if err := p.Validate(); err != nil {
		r.Err = fmt.Errorf("%w: %w", probes.ErrInvalidProbe, err)
		r.Error = r.Err.Error()
		return r
	}
	v, err := e.query(ctx, p.Name, p.Query, at)
	var apiErr *v1.Error
	if errors.As(err, &apiErr) && apiErr.Type == v1.ErrBadResponse && strings.Contains(apiErr.Msg, `value type "string"`) {
		// client_golang cannot decode string results; judge it like one.
		v, err = &model.String{}, nil
	}
	if err != nil {
		r.Err = err
		r.Error = err.Error()
	} else {
		r = judge(p, v, r)
	}
	e.lg.Debug("probe evaluated",
		zap.String("probe", p.Name),
		zap.Bool("ok", r.OK),
		zap.Float64("value", r.Value),
		zap.String("error", r.Error))
	return r
}

// query runs one instant query with the per-query timeout and classifies
// its error.
func (e *Evaluator) query(ctx context.Context, probe, q string, at time.Time) (model.Value, error) {
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	v, warnings, _, err := e.api.Query(qctx, q, at, v1.WithTimeout(e.timeout))
	for _, w := range warnings {
		e.lg.Warn("prometheus query warning",
			zap.String("probe", probe),
			zap.String("query", q),
			zap.String("warning", w))
	}
	if err == nil {
		return v, nil
	}
	return nil, classify(ctx, qctx, err, e.timeout)
}

// classify turns a client error into probes.ErrUnreachable (no answer) or
// probes.ErrQuery (a wrong answer), or says the caller gave up.
func classify(ctx, qctx context.Context, err error, timeout time.Duration) error {
	var apiErr *v1.Error
	switch {
	case ctx.Err() != nil:
		// The caller gave up; say so rather than blame Prometheus.
		return fmt.Errorf("query canceled: %w", context.Cause(ctx))
	case errors.As(err, &apiErr) && (apiErr.Type == v1.ErrServer || apiErr.Type == "unavailable"):
		return fmt.Errorf("%w: %w%s", probes.ErrUnreachable, err, detail(apiErr))
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: %w%s", probes.ErrQuery, err, detail(apiErr))
	case qctx.Err() != nil:
		return fmt.Errorf("%w: no answer within %s: %w", probes.ErrUnreachable, timeout, err)
	default:
		return fmt.Errorf("%w: %w", probes.ErrUnreachable, err)
	}
}

// detail returns the start of a non-API error body (e.g. "404 page not
// found" from something that is not Prometheus), for the error message.
func detail(e *v1.Error) string {
	d := strings.Join(strings.Fields(e.Detail), " ")
	if d == "" {
		return ""
	}
	if len(d) > 120 {
		d = d[:120] + "..."
	}
	return " (" + d + ")"
}

// judge turns the query result v into series and judges them against p
// (probes.Judge); r carries the probe name and time.
func judge(p probes.Probe, v model.Value, r probes.Result) probes.Result {
	r.OK = false
	r.Value = math.NaN()
	var series []probes.SeriesValue
	switch v := v.(type) {
	case model.Vector:
		series = make([]probes.SeriesValue, 0, len(v))
		for _, s := range v {
			series = append(series, probes.SeriesValue{Labels: s.Metric.String(), Value: float64(s.Value)})
		}
	case *model.Scalar:
		series = []probes.SeriesValue{{Labels: "{}", Value: float64(v.Value)}}
	case model.Matrix:
		r.Error = "range vector result: use an instant query"
		return r
	case *model.String:
		r.Error = "string result: the query must return a number"
		return r
	case nil:
		r.Error = "no result"
		return r
	default:
		r.Error = fmt.Sprintf("unexpected result type %s", v.Type())
		return r
	}
	return probes.Judge(p, series, r)
}
