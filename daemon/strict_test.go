package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// do sends one request to the harness's chaosd with the Authorization
// header auth and returns the status and body.
func (h *harness) do(method, path, auth, body string) (int, string) {
	h.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.cfg.Listen.Socket)
	}}}
	req, err := http.NewRequest(method, "http://chaosd"+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonStrictInput: trailing data after the JSON body starts no run;
// run IDs that cannot name a run (too long, a NUL) are 404 without the
// data directory's path; a huge experiment name is not echoed back; the
// bearer scheme is case-insensitive, as the agent's.
func TestDaemonStrictInput(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	const auth = "Bearer secret-token"
	huge := strings.Repeat("n", 100<<10)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"trailing JSON", "POST", "/v1/runs", `{"experiment":"cut","dryRun":true}{"experiment":"cut"}`, 400, "after the JSON value"},
		{"trailing garbage", "POST", "/v1/runs", `{"experiment":"cut","dryRun":true} x`, 400, "after the JSON value"},
		{"over-long run ID", "GET", "/v1/runs/" + strings.Repeat("r", 300), "", 404, "not found"},
		{"over-long run ID timeline", "GET", "/v1/runs/" + strings.Repeat("r", 300) + "/timeline", "", 404, "not found"},
		{"over-long run ID abort", "POST", "/v1/runs/" + strings.Repeat("r", 300) + "/abort", "", 404, "not found"},
		{"NUL in run ID", "GET", "/v1/runs/r-1%00x", "", 404, "not found"},
		{"huge experiment name", "POST", "/v1/runs", `{"experiment":"` + huge + `"}`, 400, "too long"},
		{"long unknown experiment", "POST", "/v1/runs", `{"experiment":"` + strings.Repeat("x", 250) + `"}`, 404, "unknown experiment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.do(tc.method, tc.path, auth, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %.300s; want %d containing %q", status, body, tc.status, tc.want)
			}
			if strings.Contains(body, h.dir) || strings.Contains(body, h.cfg.DataDir) {
				t.Errorf("answer leaks the data directory: %.300s", body)
			}
			if len(body) > 512 {
				t.Errorf("answer of %d bytes echoes the input back", len(body))
			}
		})
	}
	runs, err := h.client.Runs(context.Background())
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs after refused requests: %v %v", runs, err)
	}
	for _, a := range []string{"bearer secret-token", "BEARER  secret-token"} {
		if status, body := h.do("GET", "/v1/experiments", a, ""); status != 200 {
			t.Errorf("Authorization %q: %d %s", a, status, body)
		}
	}
}
