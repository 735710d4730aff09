package springboot

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/lab/petclinic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// service is a real customers-service stand-in on 127.0.0.1.
type service struct {
	srv  *petclinic.Server
	ts   *httptest.Server
	hc   *http.Client
	addr string
}

func startService(t *testing.T) *service {
	t.Helper()
	s, err := petclinic.New(petclinic.DefaultConfig(petclinic.CustomersService), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	svc := &service{srv: s, ts: ts, hc: hc, addr: ts.Listener.Addr().String()}
	t.Cleanup(func() {
		svc.ts.Close()
		hc.CloseIdleConnections()
		s.ChaosMonkey.Close()
	})
	return svc
}

func (s *service) url() string { return "http://" + s.addr }

// restart serves the same handler on the same address again.
func (s *service) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", s.addr, err)
	}
	s.ts = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.srv.Handler()}}
	s.ts.Start()
}

func (s *service) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url()+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *service) must(t *testing.T, method, path, body string) string {
	t.Helper()
	code, b := s.call(t, method, path, body)
	if code != 200 {
		t.Fatalf("%s %s: HTTP %d %s", method, path, code, b)
	}
	return b
}

// snapshot is what a service's Chaos Monkey says about itself.
type snapshot struct{ assaults, watchers, status string }

func (s *service) snapshot(t *testing.T) snapshot {
	t.Helper()
	_, st := s.call(t, "GET", ActuatorPath+"/status", "")
	return snapshot{s.must(t, "GET", ActuatorPath+"/assaults", ""), s.must(t, "GET", ActuatorPath+"/watchers", ""), st}
}

var counterRE = regexp.MustCompile(`(?m)^chaos_monkey_assault_(\w+)_count_total (\S+)$`)

// assaultCount reads chaos_monkey_assault_<kind>_count_total from /actuator/prometheus.
func (s *service) assaultCount(t *testing.T, kind string) float64 {
	t.Helper()
	for _, m := range counterRE.FindAllStringSubmatch(s.must(t, "GET", "/actuator/prometheus", ""), -1) {
		if m[1] == kind {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	return 0
}

func newDriver(t *testing.T, kind agentapi.Kind) *Driver {
	t.Helper()
	d, err := New(kind, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func exceptionFault(id, url string) agentapi.Fault {
	return agentapi.Fault{ID: id, RunID: "run1", Kind: agentapi.KindException,
		SpringBoot: &agentapi.SpringBoot{URL: url, Level: 1}}
}

func latencyFault(id, url string, start, end int) agentapi.Fault {
	return agentapi.Fault{ID: id, RunID: "run1", Kind: agentapi.KindAppLatency,
		SpringBoot: &agentapi.SpringBoot{URL: url, Level: 1, LatencyRangeStartMs: start, LatencyRangeEndMs: end}}
}

func apply(t *testing.T, d *Driver, f agentapi.Fault) json.RawMessage {
	t.Helper()
	st, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if ns, err := d.Apply(context.Background(), f, st); err != nil {
		t.Fatalf("apply: %v", err)
	} else if ns != nil {
		st = ns
	}
	return st
}

func TestNew(t *testing.T) {
	if _, err := New(agentapi.KindMemory, nil, nil); err == nil {
		t.Error("New(memory) succeeded")
	}
	for _, k := range []agentapi.Kind{agentapi.KindException, agentapi.KindAppLatency} {
		d, err := New(k, nil, nil)
		if err != nil || d.Kind() != k || d.Probe(context.Background()) != nil {
			t.Errorf("New(%s) = %v, %v", k, d, err)
		}
		if got, err := d.Prune(context.Background(), nil); got != nil || err != nil {
			t.Errorf("Prune = %v, %v", got, err)
		}
	}
}

func TestPrepareValidation(t *testing.T) {
	const u = "http://127.0.0.1:1"
	tests := []struct {
		name  string
		kind  agentapi.Kind
		f     func(f *agentapi.Fault)
		field string
	}{
		{"no springBoot", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot = nil }, "springBoot:"},
		{"kind mismatch", agentapi.KindException, func(f *agentapi.Fault) { f.Kind = agentapi.KindAppLatency }, "kind:"},
		{"ftp url", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot.URL = "ftp://x" }, "springBoot.url:"},
		{"no host", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot.URL = "http://" }, "springBoot.url:"},
		{"level 0", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot.Level = 0 }, "springBoot.level: must be within 1-10000"},
		{"level 10001", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot.Level = 10001 }, "springBoot.level: must be within 1-10000"},
		{"bad exception type", agentapi.KindException, func(f *agentapi.Fault) {
			f.SpringBoot.Exception = &agentapi.SpringException{Type: "no class"}
		}, "springBoot.exception.type:"},
		{"bad exception argument", agentapi.KindException, func(f *agentapi.Fault) {
			f.SpringBoot.Exception = &agentapi.SpringException{Type: "java.io.IOException", Arguments: []agentapi.SpringExceptionArg{{Type: "", Value: "x"}}}
		}, "springBoot.exception.arguments[0].type:"},
		{"unknown watcher", agentapi.KindException, func(f *agentapi.Fault) { f.SpringBoot.Watchers = []string{"service", "bogus"} }, "springBoot.watchers[1]:"},
		{"latency start missing", agentapi.KindAppLatency, func(f *agentapi.Fault) { f.SpringBoot.LatencyRangeStartMs = 0 }, "springBoot.latencyRangeStartMs:"},
		{"latency end missing", agentapi.KindAppLatency, func(f *agentapi.Fault) { f.SpringBoot.LatencyRangeEndMs = 0 }, "springBoot.latencyRangeEndMs:"},
		{"latency start after end", agentapi.KindAppLatency, func(f *agentapi.Fault) { f.SpringBoot.LatencyRangeStartMs = 500 }, "springBoot.latencyRangeStartMs: must be <="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, tt.kind)
			f := exceptionFault("f", u)
			if tt.kind == agentapi.KindAppLatency {
				f = latencyFault("f", u, 100, 200)
			}
			tt.f(&f)
			_, err := d.Prepare(context.Background(), ptr(f))
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Prepare error %v, want one naming %q", err, tt.field)
			}
		})
	}
}

func TestPrepareNotChaosMonkey(t *testing.T) {
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	d := newDriver(t, agentapi.KindException)
	if _, err := d.Prepare(context.Background(), ptr(exceptionFault("f", other.URL))); err == nil || !strings.Contains(err.Error(), "not a Chaos Monkey") {
		t.Errorf("Prepare against a 404 server: %v", err)
	}
	other.Close()
	if _, err := d.Prepare(context.Background(), ptr(exceptionFault("f", other.URL))); err == nil {
		t.Error("Prepare against a closed server succeeded")
	}
}

func TestExceptionApplyRevert(t *testing.T) {
	svc := startService(t)
	d := newDriver(t, agentapi.KindException)
	before := svc.snapshot(t)
	f := exceptionFault("run1.exc", svc.url())
	st := apply(t, d, f)

	for i := range 5 {
		if code, _ := svc.call(t, "GET", "/owners/1", ""); code != 500 {
			t.Fatalf("request %d under exception fault: HTTP %d, want 500", i, code)
		}
	}
	if n := svc.assaultCount(t, "exception"); n != 5 {
		t.Errorf("chaos_monkey_assault_exception_count_total = %v, want 5", n)
	}
	if !strings.Contains(svc.must(t, "GET", "/actuator/prometheus", ""), `exception="RuntimeException"`) {
		t.Error("no http_server_requests series with exception=RuntimeException")
	}
	if rem, err := d.Remaining(context.Background(), f, st); err != nil || !strings.Contains(rem, "exceptionsActive=true") {
		t.Errorf("Remaining while applied = %q, %v", rem, err)
	}

	for i := range 2 { // revert twice is fine
		if err := d.Revert(context.Background(), f, st); err != nil {
			t.Fatalf("revert %d: %v", i, err)
		}
		if after := svc.snapshot(t); after != before {
			t.Errorf("after revert %d:\n got %+v\nwant %+v", i, after, before)
		}
	}
	if rem, err := d.Remaining(context.Background(), f, st); rem != "" || err != nil {
		t.Errorf("Remaining after revert = %q, %v", rem, err)
	}
	if code, _ := svc.call(t, "GET", "/owners/1", ""); code != 200 {
		t.Errorf("after revert: HTTP %d", code)
	}
}

func TestExceptionCustomType(t *testing.T) {
	svc := startService(t)
	d := newDriver(t, agentapi.KindException)
	f := exceptionFault("run1.exc", svc.url())
	f.SpringBoot.Exception = &agentapi.SpringException{Type: "java.lang.IllegalStateException"}
	f.SpringBoot.Level, f.SpringBoot.Deterministic = 2, true
	st := apply(t, d, f)
	codes := ""
	for range 4 {
		code, _ := svc.call(t, "GET", "/owners/1", "")
		codes += strconv.Itoa(code) + " "
	}
	if codes != "200 500 200 500 " {
		t.Errorf("deterministic level 2: %s", codes)
	}
	if !strings.Contains(svc.must(t, "GET", "/actuator/prometheus", ""), `exception="IllegalStateException"`) {
		t.Error("no series with exception=IllegalStateException")
	}
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatal(err)
	}
}

// TestAppLatencyRestoresPreviousSettings: Chaos Monkey was already
// enabled with settings of its own; the fault borrows it and gives it back.
func TestAppLatencyRestoresPreviousSettings(t *testing.T) {
	svc := startService(t)
	svc.must(t, "POST", ActuatorPath+"/assaults", `{"level":3,"deterministic":true,"latencyRangeStart":5,"latencyRangeEnd":10,
		"exception":{"type":"java.io.UncheckedIOException"},"memoryFillTargetFraction":0.5,"watchedCustomServices":["org.springframework.samples"]}`)
	svc.must(t, "POST", ActuatorPath+"/watchers", `{"controller":true,"beans":["ownerResource"]}`)
	svc.must(t, "POST", ActuatorPath+"/enable", "")
	before := svc.snapshot(t)
	if before.status != "Ready to be evil!" {
		t.Fatalf("status %q", before.status)
	}

	d := newDriver(t, agentapi.KindAppLatency)
	f := latencyFault("run1.lat", svc.url(), 100, 150)
	st := apply(t, d, f)
	for range 3 {
		start := time.Now()
		if code, _ := svc.call(t, "GET", "/owners/1", ""); code != 200 {
			t.Fatalf("HTTP %d", code)
		}
		if el := time.Since(start); el < 100*time.Millisecond {
			t.Errorf("request took %v under app-latency 100-150ms", el)
		}
	}
	if n := svc.assaultCount(t, "latency"); n != 3 {
		t.Errorf("chaos_monkey_assault_latency_count_total = %v, want 3", n)
	}
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatal(err)
	}
	if after := svc.snapshot(t); after != before {
		t.Errorf("after revert:\n got %+v\nwant %+v", after, before)
	}
	if rem, err := d.Remaining(context.Background(), f, st); rem != "" || err != nil {
		t.Errorf("Remaining = %q, %v", rem, err)
	}
}

func TestRevertServiceDownIsRetried(t *testing.T) {
	svc := startService(t)
	before := svc.snapshot(t)
	d := newDriver(t, agentapi.KindException)
	f := exceptionFault("run1.exc", svc.url())
	st := apply(t, d, f)
	svc.ts.Close()
	d.hc.CloseIdleConnections()
	if err := d.Revert(context.Background(), f, st); err == nil {
		t.Fatal("Revert with the service down succeeded")
	}
	if _, err := d.Remaining(context.Background(), f, st); err == nil {
		t.Error("Remaining with the service down succeeded")
	}
	svc.restart(t)
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if after := svc.snapshot(t); after != before {
		t.Errorf("after retried revert:\n got %+v\nwant %+v", after, before)
	}
}

func TestSecondFaultOnSameServiceRefused(t *testing.T) {
	svc := startService(t)
	exc := newDriver(t, agentapi.KindException)
	lat := newDriver(t, agentapi.KindAppLatency)
	f1 := exceptionFault("run1.a", svc.url())
	st1 := apply(t, exc, f1)

	for _, tc := range []struct {
		d *Driver
		f agentapi.Fault
	}{
		{exc, exceptionFault("run1.b", svc.url()+"/")},
		{lat, latencyFault("run1.c", "HTTP://"+svc.addr, 10, 20)},
	} {
		if _, err := tc.d.Prepare(context.Background(), ptr(tc.f)); err == nil || !strings.Contains(err.Error(), "run1.a") {
			t.Errorf("%s on the same service: Prepare error %v, want refusal naming run1.a", tc.f.ID, err)
		}
	}
	// Retrying the same fault is not a second fault.
	if _, err := exc.Prepare(context.Background(), ptr(f1)); err != nil {
		t.Errorf("Prepare of the active fault again: %v", err)
	}
	if err := exc.Revert(context.Background(), f1, st1); err != nil {
		t.Fatal(err)
	}
	f2 := latencyFault("run1.c", svc.url(), 10, 20)
	st2 := apply(t, lat, f2)
	if err := lat.Revert(context.Background(), f2, st2); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery: a fresh Driver given the ledger's state reverts.
func TestCrashRecovery(t *testing.T) {
	svc := startService(t)
	svc.must(t, "POST", ActuatorPath+"/watchers", `{"repository":true}`)
	before := svc.snapshot(t)
	f := exceptionFault("run1.crash", svc.url())
	f.SpringBoot.Watchers = []string{"restController", "restTemplate"}
	st := apply(t, newDriver(t, agentapi.KindException), f)
	if code, _ := svc.call(t, "GET", "/owners/1", ""); code != 500 {
		t.Fatalf("HTTP %d under fault", code)
	}
	// The ledger round-trips the state as JSON.
	var ledger json.RawMessage
	if err := json.Unmarshal(st, &ledger); err != nil {
		t.Fatal(err)
	}
	fresh := newDriver(t, agentapi.KindException)
	if err := fresh.Revert(context.Background(), f, ledger); err != nil {
		t.Fatal(err)
	}
	if after := svc.snapshot(t); after != before {
		t.Errorf("after recovery revert:\n got %+v\nwant %+v", after, before)
	}
	if rem, err := fresh.Remaining(context.Background(), f, ledger); rem != "" || err != nil {
		t.Errorf("Remaining = %q, %v", rem, err)
	}
	if err := fresh.Revert(context.Background(), f, []byte(`{}`)); err == nil {
		t.Error("Revert with an empty state succeeded")
	}
}

func ptr[T any](v T) *T { return &v }

// TestConcurrentFaultOnSameService: the agent prepares faults concurrently,
// so two faults on one service can both pass Prepare. The second Apply is
// refused on the claim, and its cleanup Revert must leave the first
// fault's assault in place (it never wrote anything).
func TestConcurrentFaultOnSameService(t *testing.T) {
	svc := startService(t)
	before := svc.snapshot(t)
	d := newDriver(t, agentapi.KindException)
	ctx := context.Background()
	fa, fb := exceptionFault("run1.a", svc.url()), exceptionFault("run2.b", svc.url())
	sta, err := d.Prepare(ctx, &fa)
	if err != nil {
		t.Fatal(err)
	}
	stb, err := d.Prepare(ctx, &fb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(ctx, fa, sta); err != nil {
		t.Fatal(err)
	}
	during := svc.snapshot(t)
	if _, err := d.Apply(ctx, fb, stb); err == nil || !strings.Contains(err.Error(), "run1.a") {
		t.Fatalf("second Apply on the same service: %v, want refusal naming run1.a", err)
	}
	if err := d.Revert(ctx, fb, stb); err != nil {
		t.Fatal(err)
	}
	if rem, err := d.Remaining(ctx, fb, stb); rem != "" || err != nil {
		t.Errorf("Remaining of the refused fault = %q, %v", rem, err)
	}
	if got := svc.snapshot(t); got != during {
		t.Fatalf("cleanup of the refused fault changed the active one's settings:\n got %+v\nwant %+v", got, during)
	}
	if err := d.Revert(ctx, fa, sta); err != nil {
		t.Fatal(err)
	}
	if got := svc.snapshot(t); got != before {
		t.Errorf("after revert:\n got %+v\nwant %+v", got, before)
	}
}

// TestApplyHonoursContext: an actuator that never answers does not hold
// Apply once its context ends.
func TestApplyHonoursContext(t *testing.T) {
	svc := startService(t)
	d := newDriver(t, agentapi.KindException)
	f := exceptionFault("run1.ctx", svc.url())
	st, err := d.Prepare(context.Background(), &f)
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(hang)
	f.SpringBoot.URL = stuck.URL
	var s State
	json.Unmarshal(st, &s)
	s.URL = stuck.URL
	st, _ = json.Marshal(s)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = d.Apply(ctx, f, st)
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Fatalf("Apply against a stuck actuator: %v after %v, want a context error within 2s", err, took)
	}
	if err := d.Revert(ctx, f, st); err == nil {
		t.Error("Revert with an ended context succeeded against a stuck actuator")
	}
	d.active.release(s.URL, f.ID)
}

// TestUndoWithoutAgent: the undo document the agent hands out is enough
// to put the service back with no agent (and no driver state) at all.
func TestUndoWithoutAgent(t *testing.T) {
	svc := startService(t)
	svc.must(t, "POST", ActuatorPath+"/assaults", `{"level":7,"deterministic":false}`)
	before := svc.snapshot(t)
	d := newDriver(t, agentapi.KindException)
	f := exceptionFault("run1.exc", svc.url())
	st := apply(t, d, f)
	doc, err := d.Undo(f, st)
	if err != nil {
		t.Fatal(err)
	}
	if after := svc.snapshot(t); after == before {
		t.Fatal("the fault changed nothing")
	}
	// The agent is gone: only the document and the actuator remain.
	rem, err := UndoWithoutAgent(context.Background(), nil, doc)
	if err != nil || rem != "" {
		t.Fatalf("UndoWithoutAgent = %q, %v", rem, err)
	}
	if after := svc.snapshot(t); after != before {
		t.Errorf("after the undo:\n got %+v\nwant %+v", after, before)
	}
	if _, err := UndoWithoutAgent(context.Background(), nil, []byte(`{}`)); err == nil {
		t.Error("an empty undo document was accepted")
	}
}
