// Package endpoint turns a chaosd-style endpoint string
// ("unix:///path/to.sock" or "http(s)://host:port[/prefix]") into an HTTP
// client and the base URL to send requests to. chaosd's and the agents'
// API clients share it.
package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Client returns an HTTP client that reaches endpoint and the base URL of
// its requests. unixHost names the server in the Host header when the
// endpoint is a unix socket. The client never uses a proxy and bounds
// requests only by their context.
func Client(endpoint, unixHost string) (*http.Client, string, error) {
	return ClientTLS(endpoint, unixHost, nil)
}

// ClientTLS is Client with the TLS configuration of https endpoints (nil:
// the system's roots, no client certificate). It is not used for unix
// sockets.
func ClientTLS(endpoint, unixHost string, tc *tls.Config) (*http.Client, string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // reached directly, never through a proxy
	switch u.Scheme {
	case "unix":
		path := u.Path
		if u.Host != "" { // unix://relative/path.sock
			path = u.Host + u.Path
		}
		if path == "" {
			return nil, "", fmt.Errorf("endpoint %q: a unix endpoint needs a socket path (unix:///path/to.sock)", endpoint)
		}
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		tr.DisableCompression = true
		return &http.Client{Transport: tr}, "http://" + unixHost, nil
	case "http", "https":
		if u.Host == "" {
			return nil, "", fmt.Errorf("endpoint %q: missing host", endpoint)
		}
		if u.Scheme == "https" && tc != nil {
			tr.TLSClientConfig = tc.Clone()
		}
		return &http.Client{Transport: tr}, strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
	default:
		return nil, "", fmt.Errorf("endpoint %q: scheme must be unix, http or https", endpoint)
	}
}

// TransportError means a request got no (complete) HTTP answer: dial,
// TLS, reset, timeout, or a body cut short.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Answer is a complete HTTP answer.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte // at most the limit given to Call
}

// Call sends in (JSON, unless nil) to target with a bearer token (when not
// empty) and reads the answer, at most limit bytes of it. A failure to
// reach the server or read its answer is a *TransportError; any HTTP
// status is an answer, for the caller to judge.
func Call(ctx context.Context, hc *http.Client, method, target, token string, in any, limit int64) (Answer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return Answer{}, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return Answer{}, fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error repeats method and URL; keep what went wrong, so
		// context errors stay visible to errors.Is.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Answer{}, &TransportError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return Answer{}, &TransportError{fmt.Errorf("read answer: %w", err)}
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}
