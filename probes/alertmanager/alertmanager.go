// Package alertmanager creates and expires silences through
// Alertmanager's HTTP API v2 (POST /api/v2/silences, DELETE
// /api/v2/silence/{id}). It speaks the two calls chaosd needs with
// net/http: the generated client in Alertmanager's module brings the
// whole go-openapi runtime for them.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Client talks to one Alertmanager.
type Client struct {
	base *url.URL
	hc   *http.Client
	// CreatedBy is the silences' author (default "chaosd").
	CreatedBy string
}

// New returns a client for the Alertmanager at address (e.g.
// "http://alertmanager:9093"). hc nil uses a client with a 10s timeout.
func New(address string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager url %q: want http(s)://host:port", address)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: u, hc: hc, CreatedBy: "chaosd"}, nil
}

type matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

type postableSilence struct {
	Matchers  []matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
}

// CreateSilence silences alerts whose labels equal every matcher (label
// → value) from now until endsAt and returns the silence's ID.
func (c *Client) CreateSilence(ctx context.Context, matchers map[string]string, endsAt time.Time, comment string) (string, error) {
	if len(matchers) == 0 {
		return "", errors.New("a silence needs at least one matcher")
	}
	s := postableSilence{StartsAt: time.Now().UTC(), EndsAt: endsAt.UTC(), CreatedBy: c.CreatedBy, Comment: comment}
	names := make([]string, 0, len(matchers))
	for k := range matchers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s.Matchers = append(s.Matchers, matcher{Name: k, Value: matchers[k], IsEqual: true})
	}
	body, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	status, msg, err := c.do(ctx, http.MethodPost, "api/v2/silences", body, &out)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || out.SilenceID == "" {
		return "", fmt.Errorf("create silence: alertmanager answered %d: %s", status, msg)
	}
	return out.SilenceID, nil
}

// ExpireSilence ends the silence id now. A silence that is gone or
// already expired counts as expired.
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	status, msg, err := c.do(ctx, http.MethodDelete, "api/v2/silence/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return err
	}
	switch {
	// Alertmanager 0.25 answers 500 "silence not found" for an unknown
	// ID and 500 "... already expired" for an expired one.
	case status == http.StatusOK, status == http.StatusNotFound,
		strings.Contains(msg, "already expired"), strings.Contains(msg, "not found"):
		return nil
	}
	return fmt.Errorf("expire silence %s: alertmanager answered %d: %s", id, status, msg)
}

// do sends one request; it returns the status and, for a status other
// than 200, the body as a message.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) (int, string, error) {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("alertmanager at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("alertmanager at %s: read answer: %w", c.base.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK || out == nil {
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return 0, "", fmt.Errorf("alertmanager at %s: decode answer: %w", c.base.Redacted(), err)
	}
	return resp.StatusCode, "", nil
}
