// Package client is chaosctl's (and the lab's) client for chaosd's HTTP
// API; the wire types are in package api.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/chaosd/chaosd/api"
	ep "github.com/chaosd/chaosd/internal/endpoint"
)

// Client talks to chaosd's HTTP API. It is safe for concurrent use.
type Client struct {
	endpoint string // as given, for messages
	base     string
	token    string
	hc       *http.Client
}

// NewClient returns a client for endpoint, which is either
// "unix:///path/to/chaosd.sock" or "http(s)://host:port". token is sent as
// "Authorization: Bearer TOKEN" when non-empty. Requests are bounded only
// by their context.
func NewClient(endpoint, token string, opts ...Option) (*Client, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	hc, base, err := ep.ClientTLS(endpoint, "chaosd", o.tls)
	if err != nil {
		return nil, err
	}
	return &Client{endpoint: endpoint, token: token, hc: hc, base: base}, nil
}

// Option configures a Client.
type Option func(*options)

type options struct{ tls *tls.Config }

// WithTLS sets the TLS configuration of an https endpoint (the CA of
// chaosd's certificate, and a client certificate when chaosd asks for one).
func WithTLS(tc *tls.Config) Option { return func(o *options) { o.tls = tc } }

// Endpoint returns the endpoint the client was made for.
func (c *Client) Endpoint() string { return c.endpoint }

// Health checks GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Experiments lists the experiments chaosd knows.
func (c *Client) Experiments(ctx context.Context) ([]api.ExperimentInfo, error) {
	var out []api.ExperimentInfo
	err := c.do(ctx, http.MethodGet, "/v1/experiments", nil, &out)
	return out, err
}

// StartRun starts a run of an experiment.
func (c *Client) StartRun(ctx context.Context, req api.StartRequest) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, "/v1/runs", req, &out)
	return out, err
}

// Runs lists runs, newest first, without events or live probe values.
func (c *Client) Runs(ctx context.Context) ([]api.Run, error) {
	return c.ListRuns(ctx, nil)
}

// ListRuns lists the runs that the query parameters q keep (see
// daemon/runquery: selector, since, limit), newest first.
func (c *Client) ListRuns(ctx context.Context, q url.Values) ([]api.Run, error) {
	var out []api.Run
	path := "/v1/runs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Preview asks what a run of an experiment started now would touch.
func (c *Client) Preview(ctx context.Context, name string) (api.ExperimentPreview, error) {
	var out api.ExperimentPreview
	err := c.do(ctx, http.MethodGet, "/v1/experiments/"+url.PathEscape(name)+"/preview", nil, &out)
	return out, err
}

// Version asks chaosd for its version.
func (c *Client) Version(ctx context.Context) (api.VersionInfo, error) {
	var out api.VersionInfo
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, &out)
	return out, err
}

// Run returns one run.
func (c *Client) Run(ctx context.Context, id string) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Timeline returns the values of a run's probes over the run, from
// chaosd's Prometheus. A timeline whose Error is set is still an answer:
// Prometheus could not give (all) the curves.
func (c *Client) Timeline(ctx context.Context, id string) (api.Timeline, error) {
	var out api.Timeline
	err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/timeline", nil, &out)
	return out, err
}

// Abort asks chaosd to abort a run (revert its faults at once).
func (c *Client) Abort(ctx context.Context, id string) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/abort", nil, &out)
	return out, err
}

// Agents asks chaosd for the state of every agent it knows.
func (c *Client) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	var out []api.AgentInfo
	err := c.do(ctx, http.MethodGet, "/v1/agents", nil, &out)
	return out, err
}

// Skips lists the schedule triggers that did not start a run, oldest first.
func (c *Client) Skips(ctx context.Context) ([]api.SkipInfo, error) {
	var out []api.SkipInfo
	err := c.do(ctx, http.MethodGet, "/v1/skips", nil, &out)
	return out, err
}

// Halt aborts every run in progress and has every agent (of cluster, or
// all when empty) revert everything it holds.
func (c *Client) Halt(ctx context.Context, cluster string) (api.HaltResult, error) {
	var out api.HaltResult
	path := "/v1/halt"
	if cluster != "" {
		path += "?cluster=" + url.QueryEscape(cluster)
	}
	err := c.do(ctx, http.MethodPost, path, nil, &out)
	return out, err
}

// maxBody bounds what is read from one answer.
const maxBody = 64 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	what := method + " " + path
	ans, err := ep.Call(ctx, c.hc, method, c.base+path, c.token, in, maxBody)
	var te *ep.TransportError
	if errors.As(err, &te) {
		return fmt.Errorf("%w at %s: %s: %w", api.ErrUnreachable, c.endpoint, what, te.Err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	raw := ans.Body
	if ans.Status < 200 || ans.Status > 299 {
		return &api.APIError{Status: ans.Status, Message: errorMessage(ans.Status, raw)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", what, err)
	}
	return nil
}

// errorMessage extracts the message of a non-2xx answer.
func errorMessage(status int, raw []byte) string {
	var e api.Error
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(raw)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	}
	return http.StatusText(status)
}
