package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
)

// svc is a stateful fake Service: one experiment "e", runs it started.
type svc struct {
	runs    map[string]api.Run
	started []api.StartRequest
	// adHoc are the ad hoc experiments started, as the handler parsed them.
	adHoc []*experiments.Experiment
}

func (s *svc) StartAdHocRun(_ context.Context, exp *experiments.Experiment, req api.StartRequest) (api.Run, error) {
	if exp.Metadata.Name == "e" {
		return api.Run{}, Errorf(http.StatusUnprocessableEntity, "metadata.name: %q is an experiment of chaosd's library", "e")
	}
	s.adHoc = append(s.adHoc, exp)
	r := api.Run{ID: fmt.Sprintf("r-adhoc-%d", len(s.adHoc)), Experiment: exp.Metadata.Name, Phase: api.PhasePending,
		AdHoc: &api.AdHoc{File: req.File, Spec: req.Spec}, CreatedAt: time.Now()}
	s.runs[r.ID] = r
	return r, nil
}

func (s *svc) Preview(_ context.Context, name string) (api.ExperimentPreview, error) {
	if name != "e" {
		return api.ExperimentPreview{}, Errorf(http.StatusNotFound, "unknown experiment %q", name)
	}
	return api.ExperimentPreview{Experiment: api.ExperimentInfo{Name: "e"}}, nil
}

func (s *svc) Version(context.Context) (api.VersionInfo, error) {
	return api.VersionInfo{Version: "v1.2.3"}, nil
}

func (s *svc) Experiments(context.Context) ([]api.ExperimentInfo, error) {
	return []api.ExperimentInfo{{Name: "e"}}, nil
}

func (s *svc) StartRun(_ context.Context, req api.StartRequest) (api.Run, error) {
	if req.Experiment != "e" {
		return api.Run{}, Errorf(http.StatusNotFound, "unknown experiment %q", req.Experiment)
	}
	if len(s.runs) > 0 {
		return api.Run{}, Errorf(http.StatusConflict, "a run of this experiment is already in progress")
	}
	s.started = append(s.started, req)
	r := api.Run{ID: "r-1", Experiment: "e", Phase: api.PhasePending,
		Events: []api.Event{{Message: "x"}}, Phases: []api.PhaseResult{{Phase: api.PhaseSteadyState}}, Current: []api.ProbeResult{{Probe: "p"}}}
	s.runs[r.ID] = r
	return r, nil
}

func (s *svc) Runs(context.Context) ([]api.Run, error) {
	var out []api.Run
	for _, r := range s.runs {
		out = append(out, r.DeepCopy())
	}
	return out, nil
}

func (s *svc) Run(_ context.Context, id string) (api.Run, error) {
	r, ok := s.runs[id]
	if !ok {
		return api.Run{}, Errorf(http.StatusNotFound, "run %q not found", id)
	}
	return r, nil
}

func (s *svc) Timeline(ctx context.Context, id string) (api.Timeline, error) {
	if _, err := s.Run(ctx, id); err != nil {
		return api.Timeline{}, err
	}
	return api.Timeline{RunID: id, Error: "prometheus unreachable"}, nil
}

func (s *svc) Abort(ctx context.Context, id string) (api.Run, error) { return s.Run(ctx, id) }

func (s *svc) Halt(_ context.Context, cluster string) (api.HaltResult, error) {
	if cluster != "" && cluster != "c1" {
		return api.HaltResult{}, Errorf(http.StatusNotFound, "cluster %q has no agents configured", cluster)
	}
	return api.HaltResult{AbortedRuns: []string{}, Agents: []api.HaltedNode{}}, nil
}

func (s *svc) Agents(context.Context) ([]api.AgentInfo, error) { return nil, nil }

func (s *svc) Skips(context.Context) ([]api.SkipInfo, error) {
	return nil, errors.New("skip log unreadable")
}

func TestHandler(t *testing.T) {
	s := &svc{runs: map[string]api.Run{}}
	srv := httptest.NewServer(Handler(s, Options{Token: "tok"}))
	defer srv.Close()
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            string
	}{
		{"no token", "GET", "/healthz", "", "", 401, "missing or wrong bearer token"},
		{"wrong token", "GET", "/v1/runs", "nope", "", 401, "bearer token"},
		{"healthz", "GET", "/healthz", "tok", "", 200, "ok"},
		{"no metrics handler", "GET", "/metrics", "tok", "", 404, ""},
		{"empty experiment", "POST", "/v1/runs", "tok", `{"experiment":" "}`, 400, "experiment: required"},
		{"unknown field", "POST", "/v1/runs", "tok", `{"experiment":"e","forse":true}`, 400, "unknown field"},
		{"not JSON", "POST", "/v1/runs", "tok", `experiment=e`, 400, "decode request"},
		{"too large", "POST", "/v1/runs", "tok", `{"experiment":"` + strings.Repeat("e", 2<<20) + `"}`, 400, "too large"},
		{"unknown experiment", "POST", "/v1/runs", "tok", `{"experiment":"x"}`, 404, `unknown experiment \"x\"`},
		{"start", "POST", "/v1/runs", "tok", `{"experiment":"e","dryRun":true}`, 201, `"id": "r-1"`},
		{"busy", "POST", "/v1/runs", "tok", `{"experiment":"e"}`, 409, "already in progress"},
		{"list is a summary", "GET", "/v1/runs", "tok", "", 200, `"phases": null`},
		{"get", "GET", "/v1/runs/r-1", "tok", "", 200, `"message": "x"`},
		{"get unknown", "GET", "/v1/runs/r-9", "tok", "", 404, `run \"r-9\" not found`},
		{"timeline without token", "GET", "/v1/runs/r-1/timeline", "", "", 401, "bearer token"},
		{"timeline", "GET", "/v1/runs/r-1/timeline", "tok", "", 200, `"series": []`},
		{"timeline says why it has no curves", "GET", "/v1/runs/r-1/timeline", "tok", "", 200, `"error": "prometheus unreachable"`},
		{"timeline of unknown run", "GET", "/v1/runs/r-9/timeline", "tok", "", 404, `run \"r-9\" not found`},
		{"abort", "POST", "/v1/runs/r-1/abort", "tok", "", 202, `"id": "r-1"`},
		{"halt unknown cluster", "POST", "/v1/halt?cluster=c9", "tok", "", 404, "c9"},
		{"halt", "POST", "/v1/halt", "tok", "", 200, `"abortedRuns": []`},
		{"agents never null", "GET", "/v1/agents", "tok", "", 200, "[]"},
		{"service error is a 500", "GET", "/v1/skips", "tok", "", 500, "skip log unreadable"},
		{"wrong method", "DELETE", "/v1/runs/r-1", "tok", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(tt.method, tt.path, tt.token, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("%s %s: %d %s; want %d containing %q", tt.method, tt.path, status, body, tt.status, tt.want)
			}
			if status >= 400 && tt.want != "" {
				var e api.Error
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q is not an api.Error", body)
				}
			}
		})
	}
	if len(s.started) != 1 || !s.started[0].DryRun {
		t.Errorf("started %+v, want the one dry run", s.started)
	}
}
