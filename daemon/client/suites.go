package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/chaosd/chaosd/api"
)

// Suites lists the suites chaosd knows.
func (c *Client) Suites(ctx context.Context) ([]api.SuiteInfo, error) {
	var out []api.SuiteInfo
	err := c.do(ctx, http.MethodGet, "/v1/suites", nil, &out)
	return out, err
}

// StartSuiteRun starts a run of a suite.
func (c *Client) StartSuiteRun(ctx context.Context, req api.SuiteStartRequest) (api.SuiteRun, error) {
	var out api.SuiteRun
	err := c.do(ctx, http.MethodPost, "/v1/suite-runs", req, &out)
	return out, err
}

// SuiteRuns lists suite runs, newest first.
func (c *Client) SuiteRuns(ctx context.Context) ([]api.SuiteRun, error) {
	var out []api.SuiteRun
	err := c.do(ctx, http.MethodGet, "/v1/suite-runs", nil, &out)
	return out, err
}

// SuiteRun returns one suite run.
func (c *Client) SuiteRun(ctx context.Context, id string) (api.SuiteRun, error) {
	var out api.SuiteRun
	err := c.do(ctx, http.MethodGet, "/v1/suite-runs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// AbortSuiteRun aborts a suite run in progress.
func (c *Client) AbortSuiteRun(ctx context.Context, id string) (api.SuiteRun, error) {
	var out api.SuiteRun
	err := c.do(ctx, http.MethodPost, "/v1/suite-runs/"+url.PathEscape(id)+"/abort", nil, &out)
	return out, err
}
