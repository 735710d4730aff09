// Package endpoint turns a chaosd-style endpoint string
// ("unix:///path/to.sock" or "http(s)://host:port[/prefix]") into an HTTP
// client and the base URL to send requests to. chaosd's and the agents'
// API clients share it.
package endpoint

import (
	"context"
	"fmt"
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
		return &http.Client{Transport: tr}, strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
	default:
		return nil, "", fmt.Errorf("endpoint %q: scheme must be unix, http or https", endpoint)
	}
}
