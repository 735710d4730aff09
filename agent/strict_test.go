package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/partition"
)

// postRaw posts body to the agent's path with the test token and returns
// the status and the error message of the answer.
func postRaw(t *testing.T, h *harness, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://agent"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := unixHTTP(h.cfg.Socket).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e agentapi.Error
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// TestStrictDecoding: an unknown field (a typo of "direction" that would
// otherwise widen the cut to both directions) or data after the JSON
// value is refused with 400 naming it, and nothing is applied.
func TestStrictDecoding(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, nil)
	deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	good := `{"id":"s.p","kind":"partition","partition":{"cidrs":["192.0.2.0/24"],"direction":"egress"},"deadline":"` + deadline + `","leaseSeconds":5}`
	for _, tc := range []struct{ name, path, body, want string }{
		{"typo in partition", "/v1/faults",
			`{"id":"s.p","kind":"partition","partition":{"cidrs":["192.0.2.0/24"],"directon":"egress"},"deadline":"` + deadline + `","leaseSeconds":5}`,
			`"directon"`},
		{"unknown top-level field", "/v1/faults",
			`{"id":"s.p","kind":"partition","partition":{"cidrs":["192.0.2.0/24"]},"deadline":"` + deadline + `","leaseSeconds":5,"leaseSecs":9}`,
			`"leaseSecs"`},
		{"trailing data", "/v1/faults", good + `{"id":"s.q"}`, "after the JSON value"},
		{"unknown renew field", "/v1/faults/s.p/renew", `{"lease":5}`, `"lease"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := postRaw(t, h, tc.path, tc.body)
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("status %d %q, want 400 naming %s", code, msg, tc.want)
			}
			if k.Has("s.p") {
				t.Fatal("a fault was applied from a refused body")
			}
		})
	}
	if code, msg := postRaw(t, h, "/v1/faults", good); code != http.StatusCreated {
		t.Fatalf("good body: %d %s", code, msg)
	}
}

// TestBoundsAndWideCIDRs: the lease and the deadline are bounded by the
// agent's configuration, and a partition that would cut the node off
// (every address, or a protected network) needs allowWide.
func TestBoundsAndWideCIDRs(t *testing.T) {
	k := partition.NewFake()
	h := startAgent(t, k, func(c *Config) {
		c.MaxLease = time.Minute
		c.MaxFaultDuration = time.Hour
		c.ProtectedCIDRs = []string{"10.200.0.0/24", "fd00:200::/64"}
	})
	ctx := context.Background()
	mk := func(mod func(*agentapi.Fault)) agentapi.Fault { f := pfault("b", 5, time.Minute); mod(&f); return f }
	cidrs := func(c ...string) func(*agentapi.Fault) {
		return func(f *agentapi.Fault) { f.Partition.CIDRs = c }
	}
	for _, tc := range []struct {
		name, field string
		f           agentapi.Fault
	}{
		{"lease 1e308", "leaseSeconds", mk(func(f *agentapi.Fault) { f.LeaseSeconds = 1e308 })},
		{"lease over the maximum", "maximum lease", mk(func(f *agentapi.Fault) { f.LeaseSeconds = 61 })},
		{"deadline years away", "deadline", mk(func(f *agentapi.Fault) { f.Deadline = time.Date(2058, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"deadline past the maximum", "maximum fault duration", mk(func(f *agentapi.Fault) { f.Deadline = time.Now().Add(61 * time.Minute) })},
		{"all v4", "partition.cidrs[0]", mk(cidrs("0.0.0.0/0"))},
		{"all v6", "partition.cidrs[1]", mk(cidrs("192.0.2.0/24", "::/0"))},
		{"mapped all v4", "partition.cidrs[0]", mk(cidrs("::ffff:0.0.0.0/96"))},
		{"protected network", "protected network 10.200.0.0/24", mk(cidrs("10.200.0.7"))},
		{"covers protected network", "protected network 10.200.0.0/24", mk(cidrs("10.0.0.0/8"))},
		{"protected v6", "protected network fd00:200::/64", mk(cidrs("fd00::/8"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.client.Inject(ctx, tc.f)
			var ae *agentapi.APIError
			if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, tc.field) {
				t.Fatalf("err = %v, want 400 naming %q", err, tc.field)
			}
			if k.Has(tc.f.ID) {
				t.Fatal("applied")
			}
		})
	}
	for _, wide := range [][]string{{"0.0.0.0/0"}, {"10.200.0.0/16"}} {
		f := mk(func(f *agentapi.Fault) {
			f.ID = "wide." + strings.ReplaceAll(wide[0], "/", "_")
			f.Partition.CIDRs = wide
			f.Partition.AllowWide = true
		})
		if _, err := h.client.Inject(ctx, f); err != nil {
			t.Fatalf("%v with allowWide: %v", wide, err)
		}
	}
	if _, err := h.client.Inject(ctx, pfault("ok", 60, 59*time.Minute)); err != nil {
		t.Fatalf("within the bounds: %v", err)
	}
	for _, lease := range []time.Duration{61 * time.Second, time.Duration(1 << 62)} {
		if _, err := h.client.Renew(ctx, "ok", lease); apiStatus(err) != 400 {
			t.Fatalf("renew with lease %v: %v, want 400", lease, err)
		}
	}
	if st, err := h.client.Renew(ctx, "ok", time.Minute); err != nil || st.State != agentapi.StateActive {
		t.Fatalf("renew within the bound: %+v %v", st, err)
	}
}
