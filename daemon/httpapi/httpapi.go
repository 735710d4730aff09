// Package httpapi is chaosd's HTTP API: the routes of the contract in
// package api, bearer-token authentication, request limits and the mapping
// of errors to status codes, over a Service that does the work. chaosd
// serves it with the daemon as the Service; chaosctl's tests serve it with
// a stateful fake, so both speak through the same routes.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/runquery"
	"github.com/chaosd/chaosd/experiments"
)

// StatusError is an error a Service returns to choose the status code of
// its answer (404 unknown, 409 conflict, 503 unavailable, ...); any other
// error is a 500. The body carries Err's message.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Errorf returns a StatusError with a formatted message (%w wraps).
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Err: fmt.Errorf(format, args...)}
}

// Service is what the API serves.
type Service interface {
	Experiments(ctx context.Context) ([]api.ExperimentInfo, error)
	// StartRun starts a run (404: unknown experiment; 409: a run of it is
	// in progress; 503: shutting down).
	StartRun(ctx context.Context, req api.StartRequest) (api.Run, error)
	// StartAdHocRun starts a run of exp, the ad hoc experiment of req
	// (req.Spec), already validated by the handler with the library's
	// loader; the record keeps req.Spec (422: exp's name is a library
	// experiment's; 409, 503 as StartRun).
	StartAdHocRun(ctx context.Context, exp *experiments.Experiment, req api.StartRequest) (api.Run, error)
	// Runs lists runs, newest first (the handler filters them).
	Runs(ctx context.Context) ([]api.Run, error)
	// Preview resolves an experiment's targets now and asks their agents,
	// without running anything (404: unknown experiment).
	Preview(ctx context.Context, name string) (api.ExperimentPreview, error)
	// Version is chaosd's version.
	Version(ctx context.Context) (api.VersionInfo, error)
	// Run returns one run (404: unknown).
	Run(ctx context.Context, id string) (api.Run, error)
	// Timeline returns the values of a run's probes over the run, for the
	// report (404: unknown run). When Prometheus cannot answer, it is a
	// Timeline with its Error set, not an error of the call.
	Timeline(ctx context.Context, id string) (api.Timeline, error)
	// Abort aborts a run in progress (404: unknown; 409: finished).
	Abort(ctx context.Context, id string) (api.Run, error)
	// Halt aborts every run and has every agent (of cluster, or all)
	// revert everything (404: unknown cluster).
	Halt(ctx context.Context, cluster string) (api.HaltResult, error)
	// Agents asks every agent for its status; an agent that does not answer
	// is an entry with its error, not an error of the call.
	Agents(ctx context.Context) ([]api.AgentInfo, error)
	Skips(ctx context.Context) ([]api.SkipInfo, error)
	// Schedules describes every scheduled experiment.
	Schedules(ctx context.Context) ([]api.ScheduleInfo, error)
	// PauseSchedule pauses (paused) or resumes a schedule (404: unknown
	// experiment or one without a schedule).
	PauseSchedule(ctx context.Context, experiment string, paused bool) (api.ScheduleInfo, error)
}

// Options configure the handler.
type Options struct {
	// Token is a bearer token with scope admin (the config's tokenFile).
	Token string
	// Auth decides about every other credential (scoped tokens,
	// Kubernetes identities); Token is asked first. Both empty: every
	// call is refused.
	Auth Authorizer
	// Metrics serves GET /metrics when set.
	Metrics http.Handler
}

// maxRequestBody bounds a request body.
const maxRequestBody = 1 << 20

// Handler returns the API over svc.
func Handler(svc Service, opts Options) http.Handler {
	var chain Chain
	if opts.Token != "" {
		var st StaticTokens
		st.Add(opts.Token, ScopeAdmin, "the admin token")
		chain = append(chain, &st)
	}
	if opts.Auth != nil {
		chain = append(chain, opts.Auth)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /v1/experiments", func(w http.ResponseWriter, r *http.Request) {
		exps, err := svc.Experiments(r.Context())
		reply(w, http.StatusOK, nonNil(exps), err)
	})
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		v, err := svc.Version(r.Context())
		reply(w, http.StatusOK, v, err)
	})
	mux.HandleFunc("GET /v1/experiments/{name}/preview", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if len(name) > maxNameBytes || !ValidRunID(name) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown experiment %q", Clip(name, clipNames)))
			return
		}
		p, err := svc.Preview(r.Context(), name)
		p.Probes, p.Targets, p.Faults, p.Problems = nonNil(p.Probes), nonNil(p.Targets), nonNil(p.Faults), nonNil(p.Problems)
		reply(w, http.StatusOK, p, err)
	})
	mux.HandleFunc("POST /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		var req api.StartRequest
		if err := decodeStrict(w, r, &req); err != nil {
			writeError(w, http.StatusBadRequest, Clip("decode request: "+err.Error(), 256))
			return
		}
		if req.Spec != "" {
			// The scope is checked before the spec is parsed: only a
			// credential that may run it costs chaosd a parse.
			if !allowed(w, r, chain, ScopeAdHoc, "POST /v1/runs with an ad hoc experiment (spec)") {
				return
			}
			startAdHoc(w, r, svc, req)
			return
		}
		switch {
		case strings.TrimSpace(req.Experiment) == "":
			writeError(w, http.StatusBadRequest, "experiment: required (or spec: an ad hoc experiment)")
			return
		case len(req.Experiment) > maxNameBytes:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("experiment: a name of %d bytes is too long (at most %d): %q",
				len(req.Experiment), maxNameBytes, Clip(req.Experiment, clipNames)))
			return
		case req.File != "":
			writeError(w, http.StatusBadRequest, "file: only with spec (an ad hoc experiment)")
			return
		}
		run, err := svc.StartRun(r.Context(), req)
		reply(w, http.StatusCreated, run, err)
	})
	mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		q, err := runquery.FromValues(r.URL.Query())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		runs, err := svc.Runs(r.Context())
		if err != nil && len(runs) == 0 {
			writeErr(w, err)
			return
		}
		runs = q.Apply(runs, time.Now())
		// The list is a summary: events, live values, per-phase probe
		// results and ad hoc specs are in GET /v1/runs/{id}.
		for i := range runs {
			runs[i].Events, runs[i].Current, runs[i].Phases = nil, nil, nil
			if runs[i].AdHoc != nil {
				ah := *runs[i].AdHoc
				ah.Spec = ""
				runs[i].AdHoc = &ah
			}
		}
		writeJSON(w, http.StatusOK, nonNil(runs))
	})
	mux.HandleFunc("GET /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := runID(w, r)
		if !ok {
			return
		}
		run, err := svc.Run(r.Context(), id)
		reply(w, http.StatusOK, run, err)
	})
	mux.HandleFunc("GET /v1/runs/{id}/timeline", func(w http.ResponseWriter, r *http.Request) {
		id, ok := runID(w, r)
		if !ok {
			return
		}
		tl, err := svc.Timeline(r.Context(), id)
		if tl.Series == nil {
			tl.Series = []api.ProbeSeries{}
		}
		reply(w, http.StatusOK, tl, err)
	})
	mux.HandleFunc("POST /v1/runs/{id}/abort", func(w http.ResponseWriter, r *http.Request) {
		id, ok := runID(w, r)
		if !ok {
			return
		}
		run, err := svc.Abort(r.Context(), id)
		reply(w, http.StatusAccepted, run, err)
	})
	mux.HandleFunc("POST /v1/halt", func(w http.ResponseWriter, r *http.Request) {
		res, err := svc.Halt(r.Context(), r.URL.Query().Get("cluster"))
		reply(w, http.StatusOK, res, err)
	})
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		agents, err := svc.Agents(r.Context())
		reply(w, http.StatusOK, nonNil(agents), err)
	})
	mux.HandleFunc("GET /v1/skips", func(w http.ResponseWriter, r *http.Request) {
		skips, err := svc.Skips(r.Context())
		reply(w, http.StatusOK, nonNil(skips), err)
	})
	mux.HandleFunc("GET /v1/schedules", func(w http.ResponseWriter, r *http.Request) {
		scheds, err := svc.Schedules(r.Context())
		reply(w, http.StatusOK, nonNil(scheds), err)
	})
	for verb, paused := range map[string]bool{"pause": true, "resume": false} {
		mux.HandleFunc("POST /v1/schedules/{name}/"+verb, func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			if name == "" || len(name) > maxNameBytes {
				writeError(w, http.StatusNotFound, fmt.Sprintf("schedule %q not found", Clip(name, clipNames)))
				return
			}
			info, err := svc.PauseSchedule(r.Context(), name, paused)
			reply(w, http.StatusOK, info, err)
		})
	}
	suiteRoutes(mux, svc)
	return authorize(chain, mux)
}

// startAdHoc validates an ad hoc experiment with the loader chaosd's
// library goes through (never trusting chaosctl's own check) and starts
// it: 400 naming the field (FILE:LINE:COL: field.path: message) when the
// spec is invalid.
func startAdHoc(w http.ResponseWriter, r *http.Request, svc Service, req api.StartRequest) {
	switch {
	case len(req.Spec) > api.MaxAdHocSpecBytes:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("spec: %d bytes is too large for an experiment (at most %d)", len(req.Spec), api.MaxAdHocSpecBytes))
		return
	case len(req.File) > api.MaxAdHocFileBytes || !printable(req.File):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file: %q is not a file name (at most %d printable bytes)", Clip(req.File, clipNames), api.MaxAdHocFileBytes))
		return
	case len(req.Experiment) > maxNameBytes:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("experiment: a name of %d bytes is too long (at most %d)", len(req.Experiment), maxNameBytes))
		return
	}
	display := req.File
	if display == "" {
		display = "spec"
	}
	exp, err := experiments.Parse([]byte(req.Spec), display)
	if err != nil {
		writeError(w, http.StatusBadRequest, Clip(firstLines(err.Error(), maxSpecErrors), 8<<10))
		return
	}
	if req.Experiment != "" && req.Experiment != exp.Metadata.Name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("experiment: %q is not the spec's metadata.name (%q); leave it out or make them equal",
			Clip(req.Experiment, clipNames), exp.Metadata.Name))
		return
	}
	run, err := svc.StartAdHocRun(r.Context(), exp, req)
	reply(w, http.StatusCreated, run, err)
}

// maxSpecErrors is how many problems of an ad hoc spec an answer lists.
const maxSpecErrors = 20

// firstLines keeps the first n lines of s, saying how many were left out.
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n(%d more problems)", len(lines)-n)
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// Bounds on what the API takes and echoes.
const (
	// maxNameBytes bounds an experiment name in a request (a DNS label
	// subdomain's length, what experiment names are).
	maxNameBytes = 253
	// maxRunIDBytes bounds a run ID in a path; chaosd's are 24 bytes.
	maxRunIDBytes = 128
	// clipNames is how much of a name or ID a message echoes.
	clipNames = 64
)

// ValidRunID reports whether id can name a run: 1 to 128 bytes of
// letters, digits, '.', '_' and '-', not starting with '.'. Anything else
// (a NUL, a slash, a path-long ID) is not a run of this chaosd.
func ValidRunID(id string) bool {
	if id == "" || len(id) > maxRunIDBytes || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// runID returns the run ID of the path, or answers 404 (an ID that
// cannot name a run names none) and returns false.
func runID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !ValidRunID(id) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %q not found", Clip(id, clipNames)))
		return "", false
	}
	return id, true
}

// Clip shortens s to at most n bytes (on a UTF-8 boundary) for a
// message, saying how long it was, so a huge name is never echoed back.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// decodeStrict reads exactly one JSON value with no unknown field and
// nothing after it.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// reply writes v with status, or the error.
func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, status, v)
}

func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var se *StatusError
	if errors.As(err, &se) && se.Status >= 400 && se.Status <= 599 {
		status = se.Status
	}
	writeError(w, status, err.Error())
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, api.Error{Error: msg})
}
