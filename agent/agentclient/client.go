// Package agentclient is chaosd's client for the node agent's HTTP API
// (the contract in agent/agentapi).
package agentclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	ep "github.com/chaosd/chaosd/internal/endpoint"
)

// Client talks to one agent. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*options)

type options struct{ tls *tls.Config }

// WithTLS sets the TLS configuration of https endpoints: the CA of the
// agents' certificates and chaosd's client certificate (agents require
// one on TCP).
func WithTLS(tc *tls.Config) Option { return func(o *options) { o.tls = tc } }

// NewClient returns a client for endpoint "unix:///path/to.sock" or
// "https://host:port" (http works too, where the agent listens in plain
// text on purpose).
func NewClient(endpoint, token string, opts ...Option) (*Client, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	hc, base, err := ep.ClientTLS(endpoint, "agent", o.tls)
	if err != nil {
		return nil, fmt.Errorf("agent %w", err)
	}
	return &Client{token: token, hc: hc, base: base}, nil
}

// Inject applies a fault; it returns once the fault is in place.
func (c *Client) Inject(ctx context.Context, f agentapi.Fault) (agentapi.FaultStatus, error) {
	var st agentapi.FaultStatus
	err := c.do(ctx, http.MethodPost, "/v1/faults", f, &st)
	return st, err
}

// Renew extends a fault's lease (never past its deadline).
func (c *Client) Renew(ctx context.Context, id string, lease time.Duration) (agentapi.FaultStatus, error) {
	var st agentapi.FaultStatus
	err := c.do(ctx, http.MethodPost, "/v1/faults/"+url.PathEscape(id)+"/renew", agentapi.RenewRequest{LeaseSeconds: lease.Seconds()}, &st)
	return st, err
}

// Revert removes a fault; reverting a reverted fault succeeds.
func (c *Client) Revert(ctx context.Context, id string) (agentapi.FaultStatus, error) {
	var st agentapi.FaultStatus
	err := c.do(ctx, http.MethodDelete, "/v1/faults/"+url.PathEscape(id), nil, &st)
	return st, err
}

// List returns every fault the agent knows, recently reverted ones included.
func (c *Client) List(ctx context.Context) ([]agentapi.FaultStatus, error) {
	var sts []agentapi.FaultStatus
	err := c.do(ctx, http.MethodGet, "/v1/faults", nil, &sts)
	return sts, err
}

// agentapi.Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (agentapi.Status, error) {
	var st agentapi.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Halt reverts every active fault and returns their statuses.
func (c *Client) Halt(ctx context.Context) ([]agentapi.FaultStatus, error) {
	var sts []agentapi.FaultStatus
	err := c.do(ctx, http.MethodPost, "/v1/halt", nil, &sts)
	return sts, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ans, err := ep.Call(ctx, c.hc, method, c.base+path, c.token, in, 16<<20)
	var te *ep.TransportError
	if errors.As(err, &te) {
		return fmt.Errorf("%w: %s %s: %w", agentapi.ErrUnreachable, method, path, te.Err)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	data := ans.Body
	if ans.Status < 200 || ans.Status > 299 {
		ae := &agentapi.APIError{Status: ans.Status}
		var e agentapi.Error
		var st agentapi.FaultStatus
		switch {
		case ans.Header.Get("X-Chaosd-Error") != "":
			ae.Message = ans.Header.Get("X-Chaosd-Error")
			if json.Unmarshal(data, &st) == nil && st.Fault.ID != "" {
				ae.Fault = &st
				if p, ok := out.(*agentapi.FaultStatus); ok {
					*p = st
				}
			}
		case json.Unmarshal(data, &e) == nil && e.Error != "":
			ae.Message = e.Error
		default:
			ae.Message = strings.TrimSpace(string(data))
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}
