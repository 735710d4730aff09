package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaosd/chaosd/api"
)

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/experiments", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.experimentInfos())
	})
	mux.HandleFunc("POST /v1/runs", d.handleStart)
	mux.HandleFunc("GET /v1/runs", d.handleList)
	mux.HandleFunc("GET /v1/runs/{id}", d.handleGet)
	mux.HandleFunc("POST /v1/runs/{id}/abort", d.handleAbort)
	mux.HandleFunc("POST /v1/halt", d.handleHalt)
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.agentInfos(r.Context()))
	})
	mux.HandleFunc("GET /v1/skips", func(w http.ResponseWriter, _ *http.Request) {
		skips, err := d.store.Skips()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, skips)
	})
	return d.auth(mux)
}

// auth requires the bearer token on every call.
func (d *Daemon) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + d.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chaosd"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *Daemon) handleStart(w http.ResponseWriter, r *http.Request) {
	var req api.StartRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "decode request: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Experiment) == "" {
		writeError(w, http.StatusBadRequest, "experiment: required")
		return
	}
	rec, err := d.start(req.Experiment, api.TriggerManual, req.DryRun)
	switch {
	case errors.Is(err, errUnknown):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, errBusy):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusCreated, rec)
	}
}

func (d *Daemon) handleList(w http.ResponseWriter, _ *http.Request) {
	runs, err := d.store.List()
	if err != nil && len(runs) == 0 {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for i := range runs {
		runs[i].Events = nil
		runs[i].Current = nil
		runs[i].Phases = nil
	}
	if runs == nil {
		runs = []api.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d.mu.Lock()
	rn, live := d.active[id]
	d.mu.Unlock()
	if live {
		writeJSON(w, http.StatusOK, rn.Record())
		return
	}
	rec, err := d.store.Get(id)
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %q not found", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (d *Daemon) handleAbort(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d.mu.Lock()
	rn, live := d.active[id]
	d.mu.Unlock()
	if !live {
		if rec, err := d.store.Get(id); err == nil {
			writeError(w, http.StatusConflict, fmt.Sprintf("run %s already finished (%s)", id, rec.Verdict))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %q not found", id))
		return
	}
	rn.Abort("chaosctl abort")
	writeJSON(w, http.StatusAccepted, rn.Record())
}

// handleHalt is the big red button: abort every run in progress and have
// every agent revert everything it holds, whoever asked for it.
func (d *Daemon) handleHalt(w http.ResponseWriter, r *http.Request) {
	cluster := r.URL.Query().Get("cluster")
	if _, ok := d.agents[cluster]; cluster != "" && !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("cluster %q has no agents configured", cluster))
		return
	}
	writeJSON(w, http.StatusOK, d.halt(r.Context(), cluster))
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
