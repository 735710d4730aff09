package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/api"
)

// TestScopes: a read token reads but gets 403 naming scope run on run
// and abort; a run token runs but gets 403 naming admin on halt; the
// admin token does everything.
func TestScopes(t *testing.T) {
	var st StaticTokens
	st.Add("r", ScopeRead, "token file /etc/chaosd/read")
	st.Add("x", ScopeRun, "token file /etc/chaosd/run")
	s := &svc{runs: map[string]api.Run{"r-1": {ID: "r-1"}}}
	srv := httptest.NewServer(Handler(s, Options{Token: "adm", Auth: &st, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") })}))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		want                      string
	}{
		{"read: metrics", "GET", "/metrics", "r", 200, "m 1"},
		{"read: runs", "GET", "/v1/runs/r-1", "r", 200, "r-1"},
		{"read: timeline", "GET", "/v1/runs/r-1/timeline", "r", 200, "series"},
		{"read: run refused", "POST", "/v1/runs", "r", 403, `POST /v1/runs needs scope \"run\"; token file /etc/chaosd/read may not (its scope is read)`},
		{"read: abort refused", "POST", "/v1/runs/r-1/abort", "r", 403, `needs scope \"run\"`},
		{"read: halt refused", "POST", "/v1/halt", "r", 403, `needs scope \"admin\"`},
		{"run: abort", "POST", "/v1/runs/r-1/abort", "x", 202, "r-1"},
		{"run: metrics", "GET", "/metrics", "x", 200, "m 1"},
		{"run: halt refused", "POST", "/v1/halt", "x", 403, `needs scope \"admin\"`},
		{"admin: halt", "POST", "/v1/halt", "adm", 200, "abortedRuns"},
		{"lower-case scheme", "GET", "/v1/runs", "r", 200, "r-1"},
		{"unknown token", "GET", "/metrics", "nope", 401, "bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"experiment":"e"}`))
			scheme := "Bearer "
			if strings.HasPrefix(tc.name, "lower-case") {
				scheme = "bearer "
			}
			req.Header.Set("Authorization", scheme+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s; want %d containing %q", resp.StatusCode, b, tc.status, tc.want)
			}
		})
	}
	if len(s.started) != 0 {
		t.Fatalf("a refused run started: %+v", s.started)
	}
}

type failingAuth struct{}

func (failingAuth) Authorize(context.Context, string, Scope) (Decision, error) {
	return Decision{}, errors.New("apiserver unreachable")
}

// TestAuthorizerError: an Authorizer that cannot decide gives 503, and
// the admin token still works without it.
func TestAuthorizerError(t *testing.T) {
	srv := httptest.NewServer(Handler(&svc{runs: map[string]api.Run{}}, Options{Token: "adm", Auth: failingAuth{}}))
	defer srv.Close()
	for tok, want := range map[string]int{"other": 503, "adm": 200} {
		req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %s: %d, want %d", tok, resp.StatusCode, want)
		}
	}
}

// TestParseScope: every scope's name parses back to it, in order.
func TestParseScope(t *testing.T) {
	for _, sc := range []Scope{ScopeRead, ScopeRun, ScopeAdHoc, ScopeAdmin} {
		got, err := ParseScope(sc.String())
		if err != nil || got != sc {
			t.Errorf("ParseScope(%q) = %v, %v", sc.String(), got, err)
		}
	}
	if !(ScopeRead < ScopeRun && ScopeRun < ScopeAdHoc && ScopeAdHoc < ScopeAdmin) {
		t.Error("want admin ⊃ adhoc ⊃ run ⊃ read")
	}
	if _, err := ParseScope("root"); err == nil || !strings.Contains(err.Error(), "read, run, adhoc or admin") {
		t.Errorf("ParseScope(root): %v", err)
	}
}
