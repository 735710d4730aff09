package prom

import (
	"github.com/chaosd/chaosd/probes"

	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// closedAddress returns a loopback URL nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func newEvaluator(t *testing.T, addr string, opts ...Option) *Evaluator {
	t.Helper()
	e, err := New(addr, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", addr, err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestNewRejects(t *testing.T) {
	if _, err := New("http://127.0.0.1:9090", WithTimeout(0)); err == nil {
		t.Error("New with timeout 0: want error")
	}
	if _, err := New("://bad"); err == nil {
		t.Error("New with a bad URL: want error")
	}
}

func TestEvalUnreachable(t *testing.T) {
	e := newEvaluator(t, closedAddress(t))
	r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "up", Op: probes.OpGE, Threshold: f(1)}, time.Time{})
	if r.OK || !errors.Is(r.Err, probes.ErrUnreachable) || !strings.Contains(r.Error, "connection refused") {
		t.Fatalf("Eval against a closed port = %+v, want not OK, Err wrapping probes.ErrUnreachable, Error saying connection refused", r)
	}
	if r.Time.IsZero() {
		t.Error("Result.Time is zero, want the evaluation time")
	}
	if err := e.Ping(t.Context()); !errors.Is(err, probes.ErrUnreachable) {
		t.Fatalf("Ping = %v, want ErrUnreachable", err)
	}
}

// stall answers nothing until the client gives up or the test ends.
func stall(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

func TestEvalTimeout(t *testing.T) {
	e := newEvaluator(t, stall(t), WithTimeout(200*time.Millisecond))
	start := time.Now()
	r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "up", Op: probes.OpGE, Threshold: f(1)}, time.Time{})
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Eval took %s with a 200ms timeout", took)
	}
	if r.OK || !errors.Is(r.Err, probes.ErrUnreachable) || !strings.Contains(r.Error, "no answer within 200ms") {
		t.Fatalf("Eval against a stalled server = %+v, want not OK with a timeout error", r)
	}
	if err := e.Ping(t.Context()); !errors.Is(err, probes.ErrUnreachable) {
		t.Fatalf("Ping = %v, want ErrUnreachable", err)
	}
}

func TestEvalCallerCanceled(t *testing.T) {
	e := newEvaluator(t, stall(t))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	r := e.Eval(ctx, probes.Probe{Name: "p", Query: "up", Op: probes.OpGE, Threshold: f(1)}, time.Time{})
	if r.OK || errors.Is(r.Err, probes.ErrUnreachable) || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("Eval with a canceled context = %+v, want not OK and the context's error, not ErrUnreachable", r)
	}
}

// fakeProm serves a fixed /api/v1/query answer.
func fakeProm(t *testing.T, code int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEvalWarningsAreLogged(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	addr := fakeProm(t, 200, `{"status":"success","warnings":["results truncated"],`+
		`"data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1000,"1"]}]}}`)
	e := newEvaluator(t, addr, WithLogger(zap.New(core)))
	r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "up", Op: probes.OpEQ, Threshold: f(1)}, time.Time{})
	if !r.OK || r.Value != 1 || r.Error != "" {
		t.Fatalf("Eval = %+v, want OK 1 (a warning is not a failure)", r)
	}
	got := logs.FilterMessage("prometheus query warning").All()
	if len(got) != 1 || got[0].ContextMap()["warning"] != "results truncated" || got[0].ContextMap()["probe"] != "p" {
		t.Fatalf("logged %v, want one warning for probe p", logs.All())
	}
}

func TestEvalServerErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		body    string
		wantIs  error
		wantErr string
	}{
		{"bad data", 400, `{"status":"error","errorType":"bad_data","error":"parse error"}`, probes.ErrQuery, "bad_data: parse error"},
		{"execution", 422, `{"status":"error","errorType":"execution","error":"many-to-many"}`, probes.ErrQuery, "many-to-many"},
		{"not ready", 503, `Service Unavailable`, probes.ErrUnreachable, "server error: 503 (Service Unavailable)"},
		{"unavailable json", 503, `{"status":"error","errorType":"unavailable","error":"tsdb not ready"}`, probes.ErrUnreachable, "503"},
		{"not prometheus", 404, `404 page not found`, probes.ErrQuery, "client error: 404 (404 page not found)"},
		{"garbage", 200, `<html>`, probes.ErrQuery, "bad_response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvaluator(t, fakeProm(t, tt.code, tt.body))
			r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "up", Op: probes.OpGE, Threshold: f(1)}, time.Time{})
			if r.OK || !errors.Is(r.Err, tt.wantIs) || !strings.Contains(r.Error, tt.wantErr) {
				t.Fatalf("Eval = %+v, want not OK, Err is %v, Error containing %q", r, tt.wantIs, tt.wantErr)
			}
		})
	}
}

func TestEvalInvalidProbe(t *testing.T) {
	e := newEvaluator(t, closedAddress(t))
	r := e.Eval(t.Context(), probes.Probe{Name: "p", Query: "up", Op: probes.OpGE}, time.Time{})
	if r.OK || !errors.Is(r.Err, probes.ErrInvalidProbe) || !strings.Contains(r.Error, "threshold: required") {
		t.Fatalf("Eval of a probe without threshold = %+v, want ErrInvalidProbe", r)
	}
}
