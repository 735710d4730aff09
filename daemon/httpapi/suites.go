package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// SuiteService is what the API serves for suites. A Service that does
// not implement it answers 404 on the suite routes.
type SuiteService interface {
	// Suites lists the suites.
	Suites(ctx context.Context) ([]api.SuiteInfo, error)
	// StartSuiteRun starts a run of a suite (404 unknown suite; 409 a
	// run of it in progress, or inside a freeze window without force;
	// 422 an experiment of it is not in the library; 503 not leading).
	StartSuiteRun(ctx context.Context, req api.SuiteStartRequest) (api.SuiteRun, error)
	// SuiteRuns lists suite runs, newest first.
	SuiteRuns(ctx context.Context) ([]api.SuiteRun, error)
	// SuiteRun returns one suite run (404 unknown).
	SuiteRun(ctx context.Context, id string) (api.SuiteRun, error)
	// AbortSuiteRun aborts a suite run in progress (404 unknown; 409
	// finished): its current experiment is aborted, the rest never start.
	AbortSuiteRun(ctx context.Context, id string) (api.SuiteRun, error)
}

// suiteRoutes adds the suite routes to mux (scopes as for runs: read to
// list, run to start and abort).
func suiteRoutes(mux *http.ServeMux, svc Service) {
	ss, ok := svc.(SuiteService)
	if !ok {
		return
	}
	mux.HandleFunc("GET /v1/suites", func(w http.ResponseWriter, r *http.Request) {
		out, err := ss.Suites(r.Context())
		reply(w, http.StatusOK, nonNil(out), err)
	})
	mux.HandleFunc("POST /v1/suite-runs", func(w http.ResponseWriter, r *http.Request) {
		var req api.SuiteStartRequest
		if err := decodeStrict(w, r, &req); err != nil {
			writeError(w, http.StatusBadRequest, Clip("decode request: "+err.Error(), 256))
			return
		}
		switch {
		case strings.TrimSpace(req.Suite) == "":
			writeError(w, http.StatusBadRequest, "suite: required")
			return
		case len(req.Suite) > maxNameBytes:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("suite: a name of %d bytes is too long (at most %d): %q",
				len(req.Suite), maxNameBytes, Clip(req.Suite, clipNames)))
			return
		}
		run, err := ss.StartSuiteRun(r.Context(), req)
		if err == nil {
			run.Entries = nonNil(run.Entries)
		}
		reply(w, http.StatusCreated, run, err)
	})
	mux.HandleFunc("GET /v1/suite-runs", func(w http.ResponseWriter, r *http.Request) {
		runs, err := ss.SuiteRuns(r.Context())
		reply(w, http.StatusOK, nonNil(runs), err)
	})
	mux.HandleFunc("GET /v1/suite-runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := suiteRunID(w, r)
		if !ok {
			return
		}
		run, err := ss.SuiteRun(r.Context(), id)
		reply(w, http.StatusOK, run, err)
	})
	mux.HandleFunc("POST /v1/suite-runs/{id}/abort", func(w http.ResponseWriter, r *http.Request) {
		id, ok := suiteRunID(w, r)
		if !ok {
			return
		}
		run, err := ss.AbortSuiteRun(r.Context(), id)
		reply(w, http.StatusAccepted, run, err)
	})
}

func suiteRunID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !ValidRunID(id) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("suite run %q not found", Clip(id, clipNames)))
		return "", false
	}
	return id, true
}
