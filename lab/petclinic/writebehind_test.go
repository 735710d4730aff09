package petclinic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func postJSON(t *testing.T, url, body string, out any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

func hasVisit(vs []Visit, desc string) bool {
	for _, v := range vs {
		if v.Description == desc {
			return true
		}
	}
	return false
}

// TestGatewayRoutes: the gateway's Spring Cloud Gateway routes strip
// /api/visit and /api/customer and forward to the services; a service that
// cannot be reached answers the fallback's 503.
func TestGatewayRoutes(t *testing.T) {
	st := newStack(t)
	var created Visit
	if code := postJSON(t, st.gateway.URL+"/api/visit/owners/1/pets/1/visits", `{"date":"2026-11-30","description":"routed"}`, &created); code != http.StatusCreated {
		t.Fatalf("POST through the gateway: HTTP %d", code)
	}
	if created.ID == 0 || created.PetID != 1 || created.Date != "2026-11-30" || created.Description != "routed" {
		t.Errorf("created %+v", created)
	}
	var many Visits
	if code := getJSON(t, st.gateway.URL+"/api/visit/pets/visits?petId=1", &many); code != 200 || !hasVisit(many.Items, "routed") {
		t.Errorf("GET /api/visit/pets/visits: HTTP %d %+v", code, many)
	}
	var one []Visit
	if code := getJSON(t, st.gateway.URL+"/api/visit/owners/1/pets/1/visits", &one); code != 200 || !hasVisit(one, "routed") {
		t.Errorf("GET /api/visit/owners/1/pets/1/visits: HTTP %d %+v", code, one)
	}
	var owner Owner
	if code := getJSON(t, st.gateway.URL+"/api/customer/owners/1", &owner); code != 200 || owner.LastName != "Franklin" {
		t.Errorf("GET /api/customer/owners/1: HTTP %d %+v", code, owner)
	}
	mustSample(t, scrapeHandler(t, st.gw.Handler(), "/actuator/prometheus"), "http_server_requests_seconds_count", map[string]string{"uri": "UNKNOWN", "method": "POST", "status": "201"}, 1)

	st.visits.Close()
	if code := postJSON(t, st.gateway.URL+"/api/visit/owners/1/pets/1/visits", `{"description":"lost"}`, nil); code != http.StatusServiceUnavailable {
		t.Errorf("visits-service down: HTTP %d, want the fallback's 503", code)
	}
}

// switchable serves h until it is switched off, then answers 503.
type switchable struct {
	h   http.Handler
	mu  sync.Mutex
	off bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	off := s.off
	s.mu.Unlock()
	if off {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	s.h.ServeHTTP(w, r)
}

func (s *switchable) set(off bool) { s.mu.Lock(); s.off = off; s.mu.Unlock() }

func TestWriteBehind(t *testing.T) {
	cs, err := New(DefaultConfig(CustomersService), nil)
	if err != nil {
		t.Fatal(err)
	}
	sw := &switchable{h: cs.Handler()}
	customers := newTestServer(t, sw)
	vc := DefaultConfig(VisitsService)
	vc.CustomersURL, vc.WriteBehind = customers, 200*time.Millisecond
	vs, visits := newService(t, vc)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { vs.buffer.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	status := func() WriteBehindStatus {
		t.Helper()
		var st WriteBehindStatus
		if code := getJSON(t, visits.URL+"/actuator/writebehind", &st); code != 200 {
			t.Fatalf("GET /actuator/writebehind: HTTP %d", code)
		}
		return st
	}
	read := func() []Visit {
		t.Helper()
		var got Visits
		if code := getJSON(t, visits.URL+"/pets/visits?petId=2", &got); code != 200 {
			t.Fatalf("read: HTTP %d", code)
		}
		return got.Items
	}

	// Acknowledged at once, readable at once, flushed after the delay.
	if code := postJSON(t, visits.URL+"/owners/2/pets/2/visits", `{"description":"kept"}`, nil); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	if !hasVisit(read(), "kept") || status().Pending != 1 {
		t.Fatalf("a buffered visit must be readable and pending: %+v", status())
	}
	waitFor(t, func() bool { return status().Flushed == 1 })

	// A flush that cannot confirm with customers-service discards the buffer.
	if code := postJSON(t, visits.URL+"/owners/2/pets/2/visits", `{"description":"doomed"}`, nil); code != http.StatusCreated {
		t.Fatalf("create: HTTP %d", code)
	}
	acked := time.Now()
	sw.set(true)
	waitFor(t, func() bool { return len(status().Dropped) == 1 })
	sw.set(false)
	st := status()
	d := st.Dropped[0]
	if d.Description != "doomed" || d.PetID != 2 || d.AcknowledgedAt.After(acked) || d.DroppedAt.Sub(d.AcknowledgedAt) < 200*time.Millisecond ||
		!strings.Contains(d.Reason, "customers-service unreachable") || st.Pending != 0 {
		t.Errorf("dropped %+v (status %+v)", d, st)
	}
	if got := read(); hasVisit(got, "doomed") || !hasVisit(got, "kept") {
		t.Errorf("after the discard the store has %+v", got)
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
