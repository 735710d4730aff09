package petclinic

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

type stack struct {
	customers, visits, gateway *httptest.Server
	gw, vs, cs                 *Server
}

func newService(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	if s.Breaker != nil {
		t.Cleanup(s.Breaker.Close)
	}
	return s, ts
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := &stack{}
	st.cs, st.customers = newService(t, DefaultConfig(CustomersService))
	vc := DefaultConfig(VisitsService)
	vc.CustomersURL = st.customers.URL
	st.vs, st.visits = newService(t, vc)
	gc := DefaultConfig(APIGateway)
	gc.CustomersURL, gc.VisitsURL = st.customers.URL, st.visits.URL
	st.gw, st.gateway = newService(t, gc)
	return st
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestSeedEveryPetHasVisits(t *testing.T) {
	owners := SeedOwners()
	if len(owners) != 10 {
		t.Fatalf("%d owners, want 10", len(owners))
	}
	store := newVisitStore()
	for _, o := range owners {
		if len(o.Pets) == 0 {
			t.Errorf("owner %d has no pet", o.ID)
		}
		for _, p := range o.Pets {
			if len(store.byPets([]int{p.ID})) == 0 {
				t.Errorf("pet %d has no visit", p.ID)
			}
		}
	}
}

func TestGatewayOwnerDetails(t *testing.T) {
	st := newStack(t)
	for id := 1; id <= 10; id++ {
		var od OwnerDetails
		if code := getJSON(t, st.gateway.URL+"/api/gateway/owners/"+itoa(id), &od); code != 200 {
			t.Fatalf("owner %d: HTTP %d", id, code)
		}
		if od.ID != id || len(od.Pets) == 0 {
			t.Fatalf("owner %d: got %+v", id, od)
		}
		for _, p := range od.Pets {
			if len(p.Visits) == 0 {
				t.Errorf("owner %d pet %d: no visits", id, p.ID)
			}
		}
	}
	if code := getJSON(t, st.gateway.URL+"/api/gateway/owners/99", nil); code != 404 {
		t.Errorf("unknown owner: HTTP %d, want 404", code)
	}

	// Server metrics: exact Micrometer names, labels and templated uri.
	gs := scrapeHandler(t, st.gw.Handler(), "/actuator/prometheus")
	ok := find(gs, "http_server_requests_seconds_count", map[string]string{"uri": "/api/gateway/owners/{ownerId}", "status": "200"})
	if len(ok) != 1 || ok[0].value != 10 {
		t.Fatalf("gateway server count: %+v", ok)
	}
	if got := labelNames(ok[0]); got != "error,exception,method,outcome,status,uri" {
		t.Errorf("server labels %s", got)
	}
	if ok[0].labels["outcome"] != "SUCCESS" || ok[0].labels["exception"] != "none" || ok[0].labels["error"] != "none" || ok[0].labels["method"] != "GET" {
		t.Errorf("server labels %v", ok[0].labels)
	}
	for _, n := range []string{"http_server_requests_seconds_sum", "http_server_requests_seconds_max"} {
		if len(find(gs, n, map[string]string{"uri": "/api/gateway/owners/{ownerId}", "status": "200"})) != 1 {
			t.Errorf("missing %s", n)
		}
	}
	mustSample(t, gs, "http_server_requests_seconds_count", map[string]string{"uri": "/api/gateway/owners/{ownerId}", "status": "404", "outcome": "CLIENT_ERROR"}, 1)
	cl := find(gs, "http_client_requests_seconds_count", map[string]string{"client_name": "visits-service", "uri": "/pets/visits", "status": "200", "outcome": "SUCCESS", "method": "GET", "exception": "none"})
	if len(cl) != 1 || cl[0].value != 10 {
		t.Fatalf("gateway client count to visits: %+v", cl)
	}
	if got := labelNames(cl[0]); got != "client_name,exception,method,outcome,status,uri" {
		t.Errorf("client labels %s", got)
	}
	mustSample(t, gs, "http_client_requests_seconds_count", map[string]string{"client_name": "customers-service", "uri": "/owners/{ownerId}", "status": "200"}, 10)
	mustSample(t, gs, "resilience4j_circuitbreaker_state", map[string]string{"name": "getOwnerDetails", "state": "closed"}, 1)
	mustSample(t, gs, "resilience4j_circuitbreaker_calls_seconds_count", map[string]string{"name": "getOwnerDetails", "kind": "successful"}, 10)

	vs := scrapeHandler(t, st.vs.Handler(), "/actuator/prometheus")
	mustSample(t, vs, "petclinic_visit_seconds_count", map[string]string{"method": "read", "exception": "none"}, 10)
	mustSample(t, vs, "http_server_requests_seconds_count", map[string]string{"uri": "/pets/visits", "status": "200"}, 10)
	mustSample(t, vs, "http_client_requests_seconds_count", map[string]string{"client_name": "customers-service", "uri": "/owners/*/pets/{petId}", "status": "200"}, 10)

	cs := scrapeHandler(t, st.cs.Handler(), "/actuator/prometheus")
	mustSample(t, cs, "http_server_requests_seconds_count", map[string]string{"uri": "/owners/{ownerId}", "status": "200"}, 10)
	if code := getJSON(t, st.customers.URL+"/actuator/health", nil); code != 200 {
		t.Errorf("health: HTTP %d", code)
	}
}

func TestGatewayFallbackHidesPartition(t *testing.T) {
	st := newStack(t)
	st.visits.Close() // visits-service unreachable
	for i := 0; i < 8; i++ {
		var od OwnerDetails
		if code := getJSON(t, st.gateway.URL+"/api/gateway/owners/1", &od); code != 200 {
			t.Fatalf("HTTP %d, want the fallback's 200", code)
		}
		if len(od.Pets) != 1 || len(od.Pets[0].Visits) != 0 {
			t.Fatalf("fallback answer %+v, want pets with empty visits", od)
		}
	}
	if s := st.gw.Breaker.State(); s != StateOpen {
		t.Fatalf("breaker %s, want open", s)
	}
	gs := scrapeHandler(t, st.gw.Handler(), "/actuator/prometheus")
	mustSample(t, gs, "http_client_requests_seconds_count", map[string]string{"client_name": "visits-service", "status": "IO_ERROR", "outcome": "UNKNOWN", "exception": "ConnectException"}, 5)
	mustSample(t, gs, "resilience4j_circuitbreaker_not_permitted_calls_total", map[string]string{"kind": "not_permitted"}, 3)
	mustSample(t, gs, "resilience4j_circuitbreaker_state", map[string]string{"state": "open"}, 1)
}

func TestGatewayVisitsTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	_, customers := newService(t, DefaultConfig(CustomersService))
	gc := DefaultConfig(APIGateway)
	gc.CustomersURL, gc.VisitsURL, gc.VisitsTimeout = customers.URL, slow.URL, 50*time.Millisecond
	gw, gateway := newService(t, gc)
	var od OwnerDetails
	if code := getJSON(t, gateway.URL+"/api/gateway/owners/3", &od); code != 200 || len(od.Pets[0].Visits) != 0 {
		t.Fatalf("HTTP %d %+v, want fallback", code, od)
	}
	gs := scrapeHandler(t, gw.Handler(), "/actuator/prometheus")
	mustSample(t, gs, "http_client_requests_seconds_count", map[string]string{"client_name": "visits-service", "status": "IO_ERROR", "exception": "TimeoutException"}, 1)
	mustSample(t, gs, "resilience4j_circuitbreaker_calls_seconds_count", map[string]string{"kind": "failed"}, 1)
}

func TestVisitsCustomersReconnect(t *testing.T) {
	tests := []struct {
		name          string
		reconnect     string
		wait          time.Duration
		wantRecovered bool
	}{
		{"immediate", "immediate", 0, true},
		{"never", "never", 300 * time.Millisecond, false},
		{"after", "after:200ms", 300 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := New(DefaultConfig(CustomersService), nil)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // customers-service down
			rc, err := ParseReconnect(tt.reconnect)
			if err != nil {
				t.Fatal(err)
			}
			vc := DefaultConfig(VisitsService)
			vc.CustomersURL, vc.Reconnect = "http://"+addr, rc
			vs, visits := newService(t, vc)
			if code := getJSON(t, visits.URL+"/pets/visits?petId=1", nil); code != 500 {
				t.Fatalf("customers down: HTTP %d, want 500", code)
			}
			// customers-service comes back on the same address.
			ln, err = net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: cs.Handler()}
			go srv.Serve(ln)
			defer srv.Close()
			time.Sleep(tt.wait)
			var got Visits
			code := getJSON(t, visits.URL+"/pets/visits?petId=1", &got)
			if recovered := code == 200 && len(got.Items) > 0; recovered != tt.wantRecovered {
				t.Fatalf("after customers came back: HTTP %d items %d, want recovered=%v", code, len(got.Items), tt.wantRecovered)
			}
			ss := scrapeHandler(t, vs.Handler(), "/actuator/prometheus")
			mustSample(t, ss, "http_client_requests_seconds_count", map[string]string{"client_name": "customers-service", "status": "IO_ERROR", "exception": "ConnectException"}, 1)
		})
	}
}

func TestParseReconnect(t *testing.T) {
	for _, bad := range []string{"sometimes", "after:", "after:-1s", "after:x"} {
		if _, err := ParseReconnect(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if r, err := ParseReconnect("after:3s"); err != nil || r.After != 3*time.Second || r.String() != "after:3s" {
		t.Errorf("after:3s → %+v %v", r, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestErrorRateKnob: a flaky service fails its share of API requests
// with a 500 counted as SERVER_ERROR, and never its actuator.
func TestErrorRateKnob(t *testing.T) {
	if _, err := New(Config{Service: CustomersService, ErrorRate: 1.5}, nil); err == nil {
		t.Fatal("an error rate above 1 was accepted")
	}
	_, ts := newService(t, Config{Service: CustomersService, ErrorRate: 0.25})
	n, failed := 400, 0
	for range n {
		resp, err := http.Get(ts.URL + "/owners/1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusInternalServerError {
			failed++
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Binomial(400, 0.25): 100 ± 8.7; 60..140 is more than 4.5 sigma.
	if failed < 60 || failed > 140 {
		t.Errorf("%d of %d requests failed, want about a quarter", failed, n)
	}
	for range 20 {
		resp, err := http.Get(ts.URL + "/actuator/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("actuator answered %d: the knob must only touch the API", resp.StatusCode)
		}
	}
	resp, err := http.Get(ts.URL + "/actuator/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf(`http_server_requests_seconds_count{error="IllegalStateException",exception="IllegalStateException",method="GET",outcome="SERVER_ERROR",status="500",uri="/owners/{ownerId}"} %d`, failed)
	if !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}
}
