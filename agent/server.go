package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

const maxBody = 1 << 20

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /v1/faults", a.handleInject)
	mux.HandleFunc("POST /v1/faults/{id}/renew", a.handleRenew)
	mux.HandleFunc("DELETE /v1/faults/{id}", a.handleRevert)
	mux.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.list(false))
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, agentapi.Status{
			Node: a.cfg.Node, Version: a.cfg.Version, StartedAt: a.started,
			Capabilities: a.caps, Unavailable: a.capErrs, Faults: a.list(true),
		})
	})
	mux.HandleFunc("POST /v1/halt", func(w http.ResponseWriter, r *http.Request) {
		// Every fault is reverted in parallel; the answer comes within
		// haltWait even if a driver is stuck (that fault is then named in
		// the 500 and reverted as soon as its driver returns).
		ctx, cancel := context.WithTimeout(r.Context(), haltWait)
		defer cancel()
		sts, err := a.revertAll(ctx, agentapi.ReasonHalt)
		if sts == nil {
			sts = []agentapi.FaultStatus{}
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, sts)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chaosd-agent"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Agent) handleInject(w http.ResponseWriter, r *http.Request) {
	var f agentapi.Fault
	if err := decode(w, r, &f); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := a.inject(f)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (a *Agent) handleRenew(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RenewRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := a.renew(r.Context(), r.PathValue("id"), req.LeaseSeconds)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) handleRevert(w http.ResponseWriter, r *http.Request) {
	st, err := a.revert(r.Context(), r.PathValue("id"), agentapi.ReasonRequested)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// decode reads one JSON value strictly: an unknown field (a typo such as
// "directon" would otherwise be ignored and widen the fault) or anything
// after the value is refused, naming what was wrong.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("body: unexpected data after the JSON value")
	}
	return nil
}

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if ae.status != nil {
		// 410 (and 409 for an inject reverted in flight) carries the
		// fault's status so the caller sees why it ended.
		w.Header().Set("X-Chaosd-Error", ae.msg)
		writeJSON(w, ae.code, ae.status)
		return
	}
	writeError(w, ae.code, ae.msg)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, agentapi.Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
