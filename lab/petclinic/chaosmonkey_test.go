package petclinic

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// do sends method url with body and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustDo(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	code, b := do(t, method, url, body)
	if code != want {
		t.Fatalf("%s %s %s: HTTP %d %s, want %d", method, url, body, code, b, want)
	}
	return b
}

func getAssaults(t *testing.T, base string) AssaultProperties {
	t.Helper()
	var a AssaultProperties
	if err := json.Unmarshal([]byte(mustDo(t, "GET", base+ChaosMonkeyBase+"/assaults", "", 200)), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestChaosMonkeyDefaults(t *testing.T) {
	_, ts := newService(t, DefaultConfig(CustomersService))
	cm := ts.URL + ChaosMonkeyBase
	code, body := do(t, "GET", cm+"/status", "")
	if code != http.StatusServiceUnavailable || body != "You switched me off!" {
		t.Errorf("status: HTTP %d %q, want 503 You switched me off!", code, body)
	}
	if got, want := getAssaults(t, ts.URL), DefaultAssaultProperties(); !reflect.DeepEqual(got, want) {
		t.Errorf("assaults = %+v, want %+v", got, want)
	}
	raw := mustDo(t, "GET", cm+"/assaults", "", 200)
	for _, s := range []string{`"method":"<init>"`, `"latencyRangeStart":1000`, `"killApplicationCronExpression":"OFF"`} {
		if !strings.Contains(raw, s) {
			t.Errorf("GET /assaults lacks %s: %s", s, raw)
		}
	}
	if strings.Contains(raw, "watchedCustomServices") {
		t.Errorf("GET /assaults shows null watchedCustomServices: %s", raw)
	}
	var full struct {
		ChaosMonkeyProperties map[string]any    `json:"chaosMonkeyProperties"`
		AssaultProperties     AssaultProperties `json:"assaultProperties"`
		WatcherProperties     WatcherProperties `json:"watcherProperties"`
	}
	if err := json.Unmarshal([]byte(mustDo(t, "GET", cm, "", 200)), &full); err != nil {
		t.Fatal(err)
	}
	if full.ChaosMonkeyProperties["enabled"] != false || full.ChaosMonkeyProperties["togglePrefix"] != "chaos.monkey" {
		t.Errorf("chaosMonkeyProperties = %v", full.ChaosMonkeyProperties)
	}
	if !reflect.DeepEqual(full.WatcherProperties, DefaultWatcherProperties()) {
		t.Errorf("watcherProperties = %+v", full.WatcherProperties)
	}
}

func TestChaosMonkeyEnableDisable(t *testing.T) {
	_, ts := newService(t, DefaultConfig(CustomersService))
	cm := ts.URL + ChaosMonkeyBase
	var en1, en2 map[string]any
	_ = json.Unmarshal([]byte(mustDo(t, "POST", cm+"/enable", "", 200)), &en1)
	if en1["status"] != "Chaos Monkey is enabled" || en1["enabledAt"] == nil {
		t.Errorf("enable answer %v", en1)
	}
	if code, body := do(t, "GET", cm+"/status", ""); code != 200 || body != "Ready to be evil!" {
		t.Errorf("status after enable: HTTP %d %q", code, body)
	}
	_ = json.Unmarshal([]byte(mustDo(t, "POST", cm+"/enable", "", 200)), &en2)
	if en1["enabledAt"] != en2["enabledAt"] {
		t.Errorf("second enable moved enabledAt: %v then %v", en1["enabledAt"], en2["enabledAt"])
	}
	var dis map[string]any
	_ = json.Unmarshal([]byte(mustDo(t, "POST", cm+"/disable", "", 200)), &dis)
	if dis["status"] != "Chaos Monkey is disabled" || dis["disabledAt"] == nil || dis["timeActiveFormatted"] == nil {
		t.Errorf("disable answer %v", dis)
	}
	if code, _ := do(t, "GET", cm+"/status", ""); code != 503 {
		t.Errorf("status after disable: HTTP %d", code)
	}
	var full struct {
		P struct {
			Enabled bool   `json:"enabled"`
			TS      *int64 `json:"lastEnabledToggleTimestamp"`
		} `json:"chaosMonkeyProperties"`
	}
	_ = json.Unmarshal([]byte(mustDo(t, "GET", cm, "", 200)), &full)
	if full.P.Enabled || full.P.TS == nil {
		t.Errorf("chaosMonkeyProperties after toggles = %+v", full.P)
	}
}

func TestChaosMonkeyAssaultValidation(t *testing.T) {
	_, ts := newService(t, DefaultConfig(CustomersService))
	url := ts.URL + ChaosMonkeyBase + "/assaults"
	tests := []struct {
		name, body, field string // field "" : a global (class-level) error naming both latency fields
	}{
		{"level zero", `{"level":0}`, "level"},
		{"level too high", `{"level":10001}`, "level"},
		{"latency start zero", `{"latencyRangeStart":0,"latencyRangeEnd":10}`, "latencyRangeStart"},
		{"latency end zero", `{"latencyRangeStart":0,"latencyRangeEnd":0}`, "latencyRangeEnd"},
		{"latency start only", `{"latencyRangeStart":100}`, ""},
		{"latency end only", `{"latencyRangeEnd":100}`, ""},
		{"latency start after end", `{"latencyRangeStart":300,"latencyRangeEnd":200}`, ""},
		{"memory hold too short", `{"memoryMillisecondsHoldFilledMemory":1499}`, "memoryMillisecondsHoldFilledMemory"},
		{"memory wait too short", `{"memoryMillisecondsWaitNextIncrease":99}`, "memoryMillisecondsWaitNextIncrease"},
		{"memory wait too long", `{"memoryMillisecondsWaitNextIncrease":30001}`, "memoryMillisecondsWaitNextIncrease"},
		{"memory increment negative", `{"memoryFillIncrementFraction":-0.1}`, "memoryFillIncrementFraction"},
		{"memory increment above one", `{"memoryFillIncrementFraction":1.1}`, "memoryFillIncrementFraction"},
		{"memory target too low", `{"memoryFillTargetFraction":0.04}`, "memoryFillTargetFraction"},
		{"memory target too high", `{"memoryFillTargetFraction":0.96}`, "memoryFillTargetFraction"},
		{"cpu hold too short", `{"cpuMillisecondsHoldLoad":1000}`, "cpuMillisecondsHoldLoad"},
		{"cpu target too low", `{"cpuLoadTargetFraction":0.05}`, "cpuLoadTargetFraction"},
		{"exception type not a class", `{"exception":{"type":"not a class!"}}`, "exception"},
	}
	before := getAssaults(t, ts.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, "POST", url, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("HTTP %d %s, want 400", code, body)
			}
			var e struct {
				Status  int          `json:"status"`
				Message string       `json:"message"`
				Errors  []fieldError `json:"errors"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatal(err)
			}
			var got fieldError
			for _, fe := range e.Errors {
				if fe.Field == tt.field {
					got = fe
				}
			}
			if got.Code == "" {
				t.Fatalf("errors %+v do not name %q", e.Errors, tt.field)
			}
			if tt.field == "" && !(strings.Contains(got.DefaultMessage, "latencyRangeStart") && strings.Contains(got.DefaultMessage, "latencyRangeEnd")) {
				t.Errorf("global error does not name the latency fields: %q", got.DefaultMessage)
			}
			if e.Status != 400 || !strings.Contains(e.Message, "assaultPropertiesUpdate") {
				t.Errorf("body %s", body)
			}
			if after := getAssaults(t, ts.URL); !reflect.DeepEqual(after, before) {
				t.Errorf("rejected update changed settings: %+v", after)
			}
		})
	}
	t.Run("several errors at once", func(t *testing.T) {
		code, body := do(t, "POST", url, `{"level":0,"memoryFillTargetFraction":1}`)
		if code != 400 || !strings.Contains(body, `"field":"level"`) || !strings.Contains(body, `"field":"memoryFillTargetFraction"`) {
			t.Errorf("HTTP %d %s", code, body)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		if code, body := do(t, "POST", url, `{"level":`); code != 400 {
			t.Errorf("HTTP %d %s, want 400", code, body)
		}
	})
	t.Run("wrong type", func(t *testing.T) {
		if code, body := do(t, "POST", url, `{"latencyActive":"yes"}`); code != 400 {
			t.Errorf("HTTP %d %s, want 400", code, body)
		}
	})
	t.Run("unknown fields are ignored", func(t *testing.T) {
		if b := mustDo(t, "POST", url, `{"noSuchField":1,"level":7}`, 200); b != "Assault config has changed" {
			t.Errorf("answer %q", b)
		}
		if got := getAssaults(t, ts.URL).Level; got != 7 {
			t.Errorf("level = %d, want 7", got)
		}
	})
	t.Run("bounds are inclusive", func(t *testing.T) {
		mustDo(t, "POST", url, `{"level":10000,"latencyRangeStart":5,"latencyRangeEnd":5,"memoryMillisecondsHoldFilledMemory":1500,
			"memoryMillisecondsWaitNextIncrease":30000,"memoryFillIncrementFraction":0,"memoryFillTargetFraction":0.95}`, 200)
	})
}

func TestChaosMonkeyPartialUpdate(t *testing.T) {
	_, ts := newService(t, DefaultConfig(CustomersService))
	url := ts.URL + ChaosMonkeyBase
	mustDo(t, "POST", url+"/assaults", `{"latencyActive":true,"latencyRangeStart":10,"latencyRangeEnd":20,"watchedCustomServices":["a.B"]}`, 200)
	mustDo(t, "POST", url+"/assaults", `{"level":5}`, 200)
	want := DefaultAssaultProperties()
	want.Level, want.LatencyActive, want.LatencyRangeStart, want.LatencyRangeEnd = 5, true, 10, 20
	want.WatchedCustomServices = []string{"a.B"}
	if got := getAssaults(t, ts.URL); !reflect.DeepEqual(got, want) {
		t.Errorf("after partial updates\n got %+v\nwant %+v", got, want)
	}
	// exception: a fresh object, absent fields take CMSB's defaults.
	mustDo(t, "POST", url+"/assaults", `{"exception":{"type":"java.lang.IllegalStateException","arguments":[{"type":"java.lang.String","value":"x"}]}}`, 200)
	mustDo(t, "POST", url+"/assaults", `{"exception":{"type":"java.io.IOException"}}`, 200)
	want.Exception = DefaultAssaultException()
	want.Exception.Type = "java.io.IOException"
	if got := getAssaults(t, ts.URL); !reflect.DeepEqual(got, want) {
		t.Errorf("after exception update\n got %+v\nwant %+v", got, want)
	}
	// watchers: partial too.
	mustDo(t, "POST", url+"/watchers", `{"restController":true,"beans":["visitResource"]}`, 200)
	mustDo(t, "POST", url+"/watchers", `{"service":true}`, 200)
	var w WatcherProperties
	_ = json.Unmarshal([]byte(mustDo(t, "GET", url+"/watchers", "", 200)), &w)
	ww := DefaultWatcherProperties()
	ww.RestController, ww.Service, ww.Beans = true, true, []string{"visitResource"}
	if !reflect.DeepEqual(w, ww) {
		t.Errorf("watchers = %+v, want %+v", w, ww)
	}
}

// attackedCustomers is a customers-service with Chaos Monkey enabled,
// the restController watcher on and assaults set to body.
func attackedCustomers(t *testing.T, assaults string) (*Server, string) {
	t.Helper()
	cfg := DefaultConfig(CustomersService)
	cfg.ChaosMonkey.Enabled = true
	s, ts := newService(t, cfg)
	mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/watchers", `{"restController":true}`, 200)
	mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/assaults", assaults, 200)
	return s, ts.URL
}

func TestChaosMonkeyDeterministicLevel(t *testing.T) {
	for _, level := range []int{1, 3, 7} {
		t.Run("level "+itoa(level), func(t *testing.T) {
			s, base := attackedCustomers(t, `{"level":`+itoa(level)+`,"deterministic":true,"exceptionsActive":true}`)
			const n = 21
			var failed []int
			for i := 1; i <= n; i++ {
				if code, _ := do(t, "GET", base+"/owners/1", ""); code == 500 {
					failed = append(failed, i)
				} else if code != 200 {
					t.Fatalf("request %d: HTTP %d", i, code)
				}
			}
			var want []int
			for i := level; i <= n; i += level {
				want = append(want, i)
			}
			if !reflect.DeepEqual(failed, want) {
				t.Errorf("failed requests %v, want %v", failed, want)
			}
			sm := scrape(t, s.Metrics.Registry)
			k := float64(len(want))
			mustSample(t, sm, "chaos_monkey_application_request_count_total", map[string]string{"type": "assaulted"}, k)
			mustSample(t, sm, "chaos_monkey_application_request_count_total", map[string]string{"type": "total"}, k)
			mustSample(t, sm, "chaos_monkey_assault_exception_count_total", nil, k)
			mustSample(t, sm, "http_server_requests_seconds_count", map[string]string{"uri": "/owners/{ownerId}", "status": "500",
				"outcome": "SERVER_ERROR", "exception": "RuntimeException", "error": "RuntimeException"}, k)
			if n > k {
				mustSample(t, sm, "http_server_requests_seconds_count", map[string]string{"uri": "/owners/{ownerId}", "status": "200", "exception": "none"}, n-k)
			}
		})
	}
}

func TestChaosMonkeyExceptionType(t *testing.T) {
	s, base := attackedCustomers(t, `{"exceptionsActive":true,"exception":{"type":"java.lang.IllegalStateException"}}`)
	if code, _ := do(t, "GET", base+"/owners", ""); code != 500 {
		t.Fatalf("HTTP %d, want 500", code)
	}
	mustSample(t, scrape(t, s.Metrics.Registry), "http_server_requests_seconds_count",
		map[string]string{"uri": "/owners", "status": "500", "exception": "IllegalStateException"}, 1)
}

func TestChaosMonkeyRandomLevel(t *testing.T) {
	s, base := attackedCustomers(t, `{"level":4,"exceptionsActive":true}`)
	const n = 400
	failed := 0
	for range n {
		if code, _ := do(t, "GET", base+"/owners/1", ""); code == 500 {
			failed++
		}
	}
	if failed < 50 || failed > 150 { // mean 100, sd ~8.7
		t.Errorf("%d of %d attacked at level 4, want about %d", failed, n, n/4)
	}
	mustSample(t, scrape(t, s.Metrics.Registry), "chaos_monkey_application_request_count_total", map[string]string{"type": "assaulted"}, float64(failed))
}

func TestChaosMonkeyLatency(t *testing.T) {
	s, base := attackedCustomers(t, `{"latencyActive":true,"latencyRangeStart":150,"latencyRangeEnd":250}`)
	for range 3 {
		start := time.Now()
		if code, _ := do(t, "GET", base+"/owners/1", ""); code != 200 {
			t.Fatalf("HTTP %d, want 200 (latency only delays)", code)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("request took %v, want >= 150ms", d)
		}
	}
	sm := scrape(t, s.Metrics.Registry)
	mustSample(t, sm, "chaos_monkey_assault_latency_count_total", nil, 3)
	g := find(sm, "chaos_monkey_assault_latency_count_gauge", nil)
	if len(g) != 1 || g[0].value < 150 || g[0].value > 250 {
		t.Errorf("latency gauge %v, want one value in [150,250]", g)
	}
	sum := find(sm, "http_server_requests_seconds_sum", map[string]string{"uri": "/owners/{ownerId}", "status": "200"})
	if len(sum) != 1 || sum[0].value < 0.45 {
		t.Errorf("http_server_requests_seconds_sum %v, want >= 0.45", sum)
	}
}

func TestChaosMonkeyWatchers(t *testing.T) {
	tests := []struct {
		name, watchers string
		enabled        bool
		attacked       bool
	}{
		{"nothing watched", `{}`, true, false},
		{"restController watched", `{"restController":true}`, true, true},
		{"only service watched", `{"service":true,"controller":true,"repository":true,"component":true}`, true, false},
		{"only clients watched", `{"restTemplate":true,"webClient":true}`, true, false},
		{"bean listed", `{"beans":["ownerResource"]}`, true, true},
		{"other bean listed", `{"beans":["petResource"]}`, true, false},
		{"bean class listed", `{"beanClasses":["org.springframework.samples.petclinic.customers.web.OwnerResource"]}`, true, true},
		{"class excluded", `{"restController":true,"excludeClasses":["org.springframework.samples.petclinic.customers.web.OwnerResource"]}`, true, false},
		{"watched but disabled", `{"restController":true}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig(CustomersService)
			cfg.ChaosMonkey.Enabled = tt.enabled
			_, ts := newService(t, cfg)
			mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/watchers", tt.watchers, 200)
			mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/assaults", `{"exceptionsActive":true}`, 200)
			code, _ := do(t, "GET", ts.URL+"/owners/1", "")
			if got := code == 500; got != tt.attacked {
				t.Errorf("HTTP %d: attacked=%v, want %v", code, got, tt.attacked)
			}
			// Actuator endpoints are never attacked (actuatorHealth is off).
			if code, _ := do(t, "GET", ts.URL+"/actuator/health", ""); code != 200 {
				t.Errorf("health: HTTP %d", code)
			}
		})
	}
}

func TestChaosMonkeyWatchedCustomServices(t *testing.T) {
	_, base := attackedCustomers(t, `{"exceptionsActive":true,"watchedCustomServices":["org.springframework.samples.petclinic.customers.web.PetResource"]}`)
	if code, _ := do(t, "GET", base+"/owners/1", ""); code != 200 {
		t.Errorf("OwnerResource: HTTP %d, want 200", code)
	}
	if code, _ := do(t, "GET", base+"/owners/*/pets/1", ""); code != 500 {
		t.Errorf("PetResource: HTTP %d, want 500", code)
	}
}

func TestChaosMonkeyActuatorHealthWatcher(t *testing.T) {
	cfg := DefaultConfig(CustomersService)
	cfg.ChaosMonkey.Enabled = true
	_, ts := newService(t, cfg)
	mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/watchers", `{"actuatorHealth":true}`, 200)
	mustDo(t, "POST", ts.URL+ChaosMonkeyBase+"/assaults", `{"exceptionsActive":true}`, 200)
	if code, body := do(t, "GET", ts.URL+"/actuator/health", ""); code != 503 || !strings.Contains(body, "DOWN") {
		t.Errorf("health: HTTP %d %s, want 503 DOWN", code, body)
	}
	if code, _ := do(t, "GET", ts.URL+"/owners/1", ""); code != 200 {
		t.Errorf("controller: HTTP %d, want 200", code)
	}
}

func TestChaosMonkeyWebClientWatcher(t *testing.T) {
	st := newStack(t)
	cm := st.gateway.URL + ChaosMonkeyBase
	mustDo(t, "POST", cm+"/watchers", `{"webClient":true}`, 200)
	mustDo(t, "POST", cm+"/assaults", `{"exceptionsActive":true}`, 200)
	mustDo(t, "POST", cm+"/enable", "", 200)
	if code, _ := do(t, "GET", st.gateway.URL+"/api/gateway/owners/1", ""); code != 500 {
		t.Errorf("gateway with its customers WebClient attacked: HTTP %d, want 500", code)
	}
	sm := scrape(t, st.gw.Metrics.Registry)
	mustSample(t, sm, "http_client_requests_seconds_count", map[string]string{"client_name": CustomersService,
		"status": "CLIENT_ERROR", "exception": "RuntimeException"}, 1)
	// The customers-service itself saw nothing.
	if got := find(scrape(t, st.cs.Metrics.Registry), "http_server_requests_seconds_count", map[string]string{"uri": "/owners/{ownerId}"}); len(got) != 0 {
		t.Errorf("customers-service was called: %v", got)
	}
}

func TestChaosMonkeyRuntimeMemoryAssault(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := DefaultConfig(CustomersService)
	cfg.ChaosMonkey.MemoryLimitBytes = 8 << 20
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.ChaosMonkey.Close()
	h := s.Handler()
	post := func(path, body string) string {
		t.Helper()
		rec := newRecorder(h, "POST", ChaosMonkeyBase+path, body)
		if rec.Code != 200 {
			t.Fatalf("POST %s: HTTP %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	post("/assaults", `{"memoryActive":true,"memoryFillIncrementFraction":0.5,"memoryFillTargetFraction":0.5,"memoryMillisecondsWaitNextIncrease":100,"memoryMillisecondsHoldFilledMemory":1500}`)
	// Disabled: runtime assaults do not fire.
	if b := post("/assaults/runtime/attack", ""); b != "Started runtime assaults" {
		t.Errorf("answer %q", b)
	}
	if n := s.ChaosMonkey.MemoryHeldBytes(); n != 0 {
		t.Errorf("disabled chaos monkey holds %d bytes", n)
	}
	post("/enable", "")
	post("/assaults/runtime/attack", "")
	post("/assaults/runtime/attack", "") // still running: not a second one
	deadline := time.Now().Add(2 * time.Second)
	for s.ChaosMonkey.MemoryHeldBytes() < 4<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.ChaosMonkey.MemoryHeldBytes(); n != 4<<20 {
		t.Errorf("memory assault holds %d bytes, want %d", n, 4<<20)
	}
	mustSample(t, scrape(t, s.Metrics.Registry), "chaos_monkey_assault_memory_count_total", nil, 1)
	s.ChaosMonkey.Close()
	if n := s.ChaosMonkey.MemoryHeldBytes(); n != 0 {
		t.Errorf("after Close the assault holds %d bytes", n)
	}
}

func newRecorder(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}
