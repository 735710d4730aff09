package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/api"
)

const goodSpec = `apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata:
  name: %s
spec:
  targets:
    - name: c1-nodes
      cluster: c1
  faults:
    - name: cut
      kind: partition
      target: c1-nodes
      partition:
        cidrs: [10.1.0.0/16]
  duration: 30s
  steadyState:
    probes:
      - name: healthy
        query: min(up)
        op: "=="
        threshold: 1
`

func startBody(t *testing.T, req api.StartRequest) string {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdHocRuns: an ad hoc experiment needs scope adhoc (or admin),
// checked before its spec is parsed; chaosd validates it with the
// library's loader and never trusts the client: a bad field is a 400
// naming it (file:line), oversized or hostile bodies are 400s that echo
// little.
func TestAdHocRuns(t *testing.T) {
	var st StaticTokens
	st.Add("r", ScopeRead, "token file read")
	st.Add("x", ScopeRun, "token file run")
	st.Add("h", ScopeAdHoc, "token file adhoc")
	s := &svc{runs: map[string]api.Run{}}
	srv := httptest.NewServer(Handler(s, Options{Token: "adm", Auth: &st}))
	defer srv.Close()

	good := fmt.Sprintf(goodSpec, "mine")
	badField := strings.Replace(good, "cidrs: [10.1.0.0/16]", "cidrs: [10.1.0.0/16]\n        frobnicate: true", 1)
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i := 'b'; i <= 'j'; i++ {
		prev := string(i - 1)
		bomb += fmt.Sprintf("%c: &%c [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	manyErrors := good
	for i := range 50 {
		manyErrors += fmt.Sprintf("  bogus%d: 1\n", i)
	}
	for _, tc := range []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"read scope", "r", startBody(t, api.StartRequest{Spec: good}), 403, `needs scope \"run\"`},
		{"run scope", "x", startBody(t, api.StartRequest{Spec: good}), 403,
			`forbidden: POST /v1/runs with an ad hoc experiment (spec) needs scope \"adhoc\"; token file run may not (its scope is run)`},
		{"run scope is refused before the spec is read", "x", startBody(t, api.StartRequest{Spec: "{{{"}), 403, `needs scope \"adhoc\"`},
		{"run scope still runs the library", "x", startBody(t, api.StartRequest{Experiment: "e"}), 201, `"id": "r-1"`},
		{"adhoc scope", "h", startBody(t, api.StartRequest{Spec: good, File: "mine.yaml"}), 201, `"spec": "apiVersion`},
		{"admin", "adm", startBody(t, api.StartRequest{Spec: fmt.Sprintf(goodSpec, "mine-2"), Experiment: "mine-2", DryRun: true}), 201, `"experiment": "mine-2"`},
		{"bad field named with file and line", "h", startBody(t, api.StartRequest{Spec: badField, File: "mine.yaml"}), 400,
			`mine.yaml:15:9: spec.faults[0].partition.frobnicate: unknown field`},
		{"no file name", "h", startBody(t, api.StartRequest{Spec: "kind: Experiment\n"}), 400, "spec:1:1:"},
		{"not YAML", "h", startBody(t, api.StartRequest{Spec: "\t- [", File: "f.yaml"}), 400, "f.yaml:1:"},
		{"two documents", "h", startBody(t, api.StartRequest{Spec: good + "---\n" + good}), 400, "2 YAML documents"},
		{"library name", "h", startBody(t, api.StartRequest{Spec: fmt.Sprintf(goodSpec, "e")}), 422, `metadata.name: \"e\" is an experiment of chaosd's library`},
		{"experiment is not the spec's", "h", startBody(t, api.StartRequest{Spec: good, Experiment: "other"}), 400, `experiment: \"other\" is not the spec's metadata.name`},
		{"file without spec", "x", startBody(t, api.StartRequest{Experiment: "e", File: "x.yaml"}), 400, "file: only with spec"},
		{"spec too large", "h", startBody(t, api.StartRequest{Spec: good + "#" + strings.Repeat("x", api.MaxAdHocSpecBytes)}), 400, "spec: 65"},
		{"body too large", "h", `{"spec":"` + strings.Repeat("x", 2<<20) + `"}`, 400, "too large"},
		{"control characters in file", "h", startBody(t, api.StartRequest{Spec: good, File: "a\x1b[31mb"}), 400, "file: "},
		{"huge file name", "h", startBody(t, api.StartRequest{Spec: good, File: strings.Repeat("f", 5000)}), 400, "at most 256"},
		{"alias bomb", "h", startBody(t, api.StartRequest{Spec: bomb}), 400, "spec:"},
		{"every problem, bounded", "h", startBody(t, api.StartRequest{Spec: manyErrors}), 400, "more problems"},
		{"unknown request field", "h", `{"spec":"x","owner":"bob"}`, 400, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/runs", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s; want %d containing %q", resp.StatusCode, clipTest(string(b)), tc.status, tc.want)
			}
			if len(b) > 10<<10 {
				t.Errorf("answer of %d bytes: an error must not echo the input", len(b))
			}
		})
	}
	if len(s.adHoc) != 2 || s.adHoc[0].Metadata.Name != "mine" || s.adHoc[1].Metadata.Name != "mine-2" {
		t.Errorf("ad hoc runs started: %d; want the two valid ones", len(s.adHoc))
	}
}

func clipTest(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

// TestRunsQuery: GET /v1/runs filters server-side and refuses bad
// parameters naming them; the list leaves ad hoc specs out (GET of the
// run has them).
func TestRunsQuery(t *testing.T) {
	s := &svc{runs: map[string]api.Run{
		"r-1": {ID: "r-1", Experiment: "e", Verdict: api.VerdictPass, Trigger: api.TriggerManual},
		"r-2": {ID: "r-2", Experiment: "e", Verdict: api.VerdictFail, Trigger: api.TriggerSchedule},
		"r-3": {ID: "r-3", Experiment: "mine", Verdict: api.VerdictFail, AdHoc: &api.AdHoc{Spec: "kind: Experiment"}},
	}}
	srv := httptest.NewServer(Handler(s, Options{Token: "tok"}))
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		query  string
		status int
		want   []string
		not    []string
	}{
		{"?selector=experiment%3De,verdict%3Dfail", 200, []string{`"r-2"`}, []string{`"r-1"`, `"r-3"`}},
		{"?selector=adhoc%3Dtrue", 200, []string{`"r-3"`, `"adHoc"`}, []string{`"r-1"`, "kind: Experiment"}},
		{"?selector=trigger%3Dnone", 200, []string{"[]"}, []string{`"r-`}},
		{"?selector=owner%3Dbob", 400, []string{`selector: unknown key \"owner\"`}, nil},
		{"?selector=" + strings.Repeat("a", 3000), 400, []string{"selector: 3000 bytes is too long"}, nil},
		{"?limit=-1", 400, []string{"limit: must be at least 1"}, nil},
		{"?limit=1e9", 400, []string{"limit: "}, nil},
		{"?since=99999999999999999999h", 400, []string{"since: "}, nil},
		{"?since=150y", 400, []string{"since: ", "too long"}, nil},
		{"?since=300y", 400, []string{"since: ", "not a duration"}, nil},
		{"?limit=1&limit=2", 400, []string{"limit: given 2 times"}, nil},
		{"?frob=1", 400, []string{"frob: unknown parameter"}, nil},
	} {
		status, body := get("/v1/runs" + tc.query)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.query, status, body, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %q", tc.query, body, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(body, w) {
				t.Errorf("%s: %s has %q", tc.query, body, w)
			}
		}
	}
	if _, body := get("/v1/runs/r-3"); !strings.Contains(body, "kind: Experiment") {
		t.Errorf("GET of an ad hoc run lacks its spec: %s", body)
	}
	for path, want := range map[string]string{
		"/v1/experiments/e/preview":                                `"problems": []`,
		"/v1/experiments/nope/preview":                             `unknown experiment \"nope\"`,
		"/v1/experiments/" + strings.Repeat("e", 300) + "/preview": "unknown experiment",
		"/v1/experiments/a%00b/preview":                            "unknown experiment",
		"/v1/version":                                              `"version": "v1.2.3"`,
	} {
		if _, body := get(path); !strings.Contains(body, want) {
			t.Errorf("%s: %s lacks %q", path, clipTest(body), want)
		}
	}
}
