package petclinic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// errMalformed marks a request that could not even be built.
var errMalformed = errors.New("malformed request")

// StatusError is a non-2xx answer from an upstream service.
type StatusError struct {
	Service string
	Code    int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d", e.Service, e.Code)
}

// upstream is an instrumented JSON client for one downstream service.
type upstream struct {
	name    string // client_name tag: the target service
	base    string
	client  *http.Client
	metrics *Metrics
	// chaos, when set, attacks every call as the watched component comp
	// (restTemplate or webClient watcher).
	chaos *ChaosMonkey
	comp  Component
}

// chaosError is a Chaos Monkey exception assault on an outbound call.
type chaosError struct{ exception string }

func (e *chaosError) Error() string { return "Chaos Monkey - " + e.exception }

// watched makes Chaos Monkey attack u's calls as component c.
func (u *upstream) watched(cm *ChaosMonkey, c Component) *upstream {
	u.chaos, u.comp = cm, c
	return u
}

func newUpstream(name, base string, timeout time.Duration, m *Metrics) *upstream {
	return &upstream{
		name:    name,
		base:    base,
		client:  &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
		metrics: m,
	}
}

// getJSON GETs base+path, records http_client_requests_seconds under the
// uri template and decodes a 2xx body into out.
func (u *upstream) getJSON(ctx context.Context, uri, path string, out any) error {
	start := time.Now()
	var status int
	var err error
	var a assault
	if u.chaos != nil {
		a = u.chaos.decide(u.comp)
	}
	sleep(ctx, a.latency)
	switch {
	case a.exception != "":
		err = &chaosError{exception: a.exception}
	case ctx.Err() != nil:
		err = ctx.Err()
	default:
		status, err = u.do(ctx, path, out)
	}
	st, outcome, exc := clientTags(status, err)
	u.metrics.client.observe(time.Since(start), u.name, http.MethodGet, uri, st, outcome, exc)
	if err != nil {
		return fmt.Errorf("GET %s%s: %w", u.base, path, err)
	}
	if status < 200 || status > 299 {
		return &StatusError{Service: u.name, Code: status}
	}
	return nil
}

func (u *upstream) do(ctx context.Context, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errMalformed, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode body: %w", err)
	}
	return resp.StatusCode, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// springError mimics Spring Boot's default error body.
func springError(w http.ResponseWriter, r *http.Request, status int, exception string) {
	setException(w, exception)
	writeJSON(w, status, map[string]any{
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"status":    status,
		"error":     http.StatusText(status),
		"path":      r.URL.Path,
	})
}
