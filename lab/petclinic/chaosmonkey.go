package petclinic

// A Chaos Monkey for Spring Boot (CMSB 3.x) actuator for the stand-ins:
// same endpoints, property names, validation ranges, answers and metric
// names as de.codecentric:chaos-monkey-spring-boot, so the agent's
// springboot driver and the lab's probes work unchanged against the real
// PetClinic. See README.md in this directory for what is simulated.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ChaosMonkeyBase is the actuator base path.
const ChaosMonkeyBase = "/actuator/chaosmonkey"

// Watched component types (CMSB's chaos.monkey.watcher.*).
const (
	TargetController     = "controller"
	TargetRestController = "restController"
	TargetService        = "service"
	TargetRepository     = "repository"
	TargetComponent      = "component"
	TargetRestTemplate   = "restTemplate"
	TargetWebClient      = "webClient"
	TargetActuatorHealth = "actuatorHealth"
)

const (
	defaultExceptionType = "java.lang.RuntimeException"
	constructorMethod    = "<init>"
	// DefaultMemoryLimitBytes is the "heap" whose fractions the memory
	// assault fills when ChaosMonkeyConfig.MemoryLimitBytes is zero.
	DefaultMemoryLimitBytes = 64 << 20
)

// ExceptionArgument is one constructor (or factory) argument.
type ExceptionArgument struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// AssaultException is chaos.monkey.assaults.exception.
type AssaultException struct {
	Type      string              `json:"type"`
	Method    string              `json:"method"`
	Arguments []ExceptionArgument `json:"arguments"`
}

// DefaultAssaultException is CMSB's default: new RuntimeException("Chaos
// Monkey - RuntimeException").
func DefaultAssaultException() AssaultException {
	return AssaultException{
		Type:      defaultExceptionType,
		Method:    constructorMethod,
		Arguments: []ExceptionArgument{{Type: "java.lang.String", Value: "Chaos Monkey - RuntimeException"}},
	}
}

// SimpleName is the exception's Class.getSimpleName(), the value of
// Micrometer's exception tag.
func (e AssaultException) SimpleName() string {
	t := e.Type
	if t == "" {
		t = defaultExceptionType
	}
	if i := strings.LastIndexAny(t, ".$"); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// AssaultProperties is chaos.monkey.assaults.* as GET /assaults answers.
type AssaultProperties struct {
	Level                              int              `json:"level"`
	Deterministic                      bool             `json:"deterministic"`
	LatencyRangeStart                  int              `json:"latencyRangeStart"`
	LatencyRangeEnd                    int              `json:"latencyRangeEnd"`
	LatencyActive                      bool             `json:"latencyActive"`
	ExceptionsActive                   bool             `json:"exceptionsActive"`
	Exception                          AssaultException `json:"exception"`
	KillApplicationActive              bool             `json:"killApplicationActive"`
	KillApplicationCronExpression      string           `json:"killApplicationCronExpression"`
	MemoryActive                       bool             `json:"memoryActive"`
	MemoryMillisecondsHoldFilledMemory int              `json:"memoryMillisecondsHoldFilledMemory"`
	MemoryMillisecondsWaitNextIncrease int              `json:"memoryMillisecondsWaitNextIncrease"`
	MemoryFillIncrementFraction        float64          `json:"memoryFillIncrementFraction"`
	MemoryFillTargetFraction           float64          `json:"memoryFillTargetFraction"`
	MemoryCronExpression               string           `json:"memoryCronExpression"`
	CPUActive                          bool             `json:"cpuActive"`
	CPUMillisecondsHoldLoad            int              `json:"cpuMillisecondsHoldLoad"`
	CPULoadTargetFraction              float64          `json:"cpuLoadTargetFraction"`
	CPUCronExpression                  string           `json:"cpuCronExpression"`
	// WatchedCustomServices: when non-empty only components whose
	// "Class.method" starts with an entry are attacked. Omitted when
	// unset (the DTO is @JsonInclude(NON_NULL)).
	WatchedCustomServices []string `json:"watchedCustomServices,omitempty"`
}

// DefaultAssaultProperties are CMSB's defaults.
func DefaultAssaultProperties() AssaultProperties {
	return AssaultProperties{
		Level:                              1,
		LatencyRangeStart:                  1000,
		LatencyRangeEnd:                    3000,
		Exception:                          DefaultAssaultException(),
		KillApplicationCronExpression:      "OFF",
		MemoryMillisecondsHoldFilledMemory: 90000,
		MemoryMillisecondsWaitNextIncrease: 1000,
		MemoryFillIncrementFraction:        0.15,
		MemoryFillTargetFraction:           0.25,
		MemoryCronExpression:               "OFF",
		CPUMillisecondsHoldLoad:            90000,
		CPULoadTargetFraction:              0.9,
		CPUCronExpression:                  "OFF",
	}
}

// WatcherProperties is chaos.monkey.watcher.*.
type WatcherProperties struct {
	Controller     bool     `json:"controller"`
	RestController bool     `json:"restController"`
	Service        bool     `json:"service"`
	Repository     bool     `json:"repository"`
	Component      bool     `json:"component"`
	RestTemplate   bool     `json:"restTemplate"`
	WebClient      bool     `json:"webClient"`
	ActuatorHealth bool     `json:"actuatorHealth"`
	Beans          []string `json:"beans"`
	BeanClasses    []string `json:"beanClasses"`
	ExcludeClasses []string `json:"excludeClasses"`
}

// DefaultWatcherProperties are CMSB's defaults: nothing watched.
func DefaultWatcherProperties() WatcherProperties {
	return WatcherProperties{Beans: []string{}, BeanClasses: []string{}, ExcludeClasses: []string{}}
}

func (w WatcherProperties) watches(target string) bool {
	switch target {
	case TargetController:
		return w.Controller
	case TargetRestController:
		return w.RestController
	case TargetService:
		return w.Service
	case TargetRepository:
		return w.Repository
	case TargetComponent:
		return w.Component
	case TargetRestTemplate:
		return w.RestTemplate
	case TargetWebClient:
		return w.WebClient
	case TargetActuatorHealth:
		return w.ActuatorHealth
	}
	return false
}

// ChaosMonkeyConfig configures a stand-in's Chaos Monkey at start.
type ChaosMonkeyConfig struct {
	// Enabled is chaos.monkey.enabled (default false).
	Enabled bool
	// Assaults and Watchers replace CMSB's defaults when set.
	Assaults *AssaultProperties
	Watchers *WatcherProperties
	// MemoryLimitBytes is the "heap" the memory assault fills fractions
	// of; 0: DefaultMemoryLimitBytes.
	MemoryLimitBytes int64
}

// Component is one watched Spring bean method of a stand-in.
type Component struct {
	Target string // TargetRestController, TargetRestTemplate, …
	Bean   string // Spring bean name, e.g. "visitResource"
	Class  string // fully qualified class name
	Method string
}

func (c Component) name() string { return c.Class + "." + c.Method }

// ChaosMonkey is one service's Chaos Monkey: its settings and the assaults
// it runs on watched components.
type ChaosMonkey struct {
	log      *zap.Logger
	memLimit int64
	now      func() time.Time

	reqTotal, reqAssaulted prometheus.Counter
	latencyCount           *prometheus.CounterVec
	latencyGauge           *prometheus.GaugeVec
	exceptionCount         *prometheus.CounterVec
	memoryCount            *prometheus.CounterVec
	requestCount           *prometheus.CounterVec

	calls atomic.Int64 // deterministic trouble counter

	mu         sync.Mutex
	enabled    bool
	toggledAt  *int64 // lastEnabledToggleTimestamp (ms)
	assaults   AssaultProperties
	watchers   WatcherProperties
	enabledDTO *enabledDTO
	disabledDT *disabledDTO

	memMu      sync.Mutex
	memRunning bool
	memHeld    [][]byte
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// NewChaosMonkey builds a Chaos Monkey registering its metrics in m.
func NewChaosMonkey(cfg ChaosMonkeyConfig, m *Metrics, log *zap.Logger) *ChaosMonkey {
	if log == nil {
		log = zap.NewNop()
	}
	cm := &ChaosMonkey{
		log:      log,
		memLimit: cfg.MemoryLimitBytes,
		now:      time.Now,
		enabled:  cfg.Enabled,
		assaults: DefaultAssaultProperties(),
		watchers: DefaultWatcherProperties(),
		stop:     make(chan struct{}),
	}
	if cm.memLimit <= 0 {
		cm.memLimit = DefaultMemoryLimitBytes
	}
	if cfg.Assaults != nil {
		cm.assaults = *cfg.Assaults
	}
	if cfg.Watchers != nil {
		cm.watchers = *cfg.Watchers
	}
	// Micrometer creates these meters on first use; so do the Vecs.
	cm.requestCount = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chaos_monkey_application_request_count_total", Help: "Chaos Monkey watched requests",
	}, []string{"type"})
	counter := func(name string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Chaos Monkey assaults"}, nil)
	}
	cm.latencyCount = counter("chaos_monkey_assault_latency_count_total")
	cm.exceptionCount = counter("chaos_monkey_assault_exception_count_total")
	cm.memoryCount = counter("chaos_monkey_assault_memory_count_total")
	cm.latencyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chaos_monkey_assault_latency_count_gauge", Help: "Latency of the last Chaos Monkey latency assault (ms)",
	}, nil)
	m.Registry.MustRegister(cm.requestCount, cm.latencyCount, cm.exceptionCount, cm.memoryCount, cm.latencyGauge)
	return cm
}

// Close stops a running memory assault and releases its memory.
func (cm *ChaosMonkey) Close() {
	cm.closeOnce.Do(func() { close(cm.stop) })
	cm.wg.Wait()
}

// Assaults returns the current assault settings.
func (cm *ChaosMonkey) Assaults() AssaultProperties {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.assaults
}

// Watchers returns the current watcher settings.
func (cm *ChaosMonkey) Watchers() WatcherProperties {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.watchers
}

// Enabled reports chaos.monkey.enabled.
func (cm *ChaosMonkey) Enabled() bool {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.enabled
}

// assault is what a watched call must suffer.
type assault struct {
	latency   time.Duration // sleep before (or, for restTemplate, after) the call
	exception string        // simple class name to fail with; "" none
}

// decide runs CMSB's ChaosMonkeyRequestScope.callChaosMonkey for one call of
// c: enabled and watched, then "trouble" (every level-th call when
// deterministic, else 1 in level at random), then one of the active request
// assaults at random. It updates the metrics as CMSB does: type="total"
// counts calls that passed the level check, type="assaulted" those an
// active assault hit.
func (cm *ChaosMonkey) decide(c Component) assault {
	cm.mu.Lock()
	if !cm.enabled || !cm.watchedLocked(c) {
		cm.mu.Unlock()
		return assault{}
	}
	a := cm.assaults
	cm.mu.Unlock()
	var trouble bool
	if a.Deterministic {
		trouble = cm.calls.Add(1)%int64(a.Level) == 0
	} else {
		trouble = rand.IntN(a.Level)+1 >= a.Level
	}
	if !trouble {
		return assault{}
	}
	cm.requestCount.WithLabelValues("total").Inc()
	if len(a.WatchedCustomServices) > 0 {
		match := false
		for _, s := range a.WatchedCustomServices {
			if strings.HasPrefix(c.name(), s) {
				match = true
				break
			}
		}
		if !match {
			return assault{}
		}
	}
	var active []string
	if a.LatencyActive {
		active = append(active, "latency")
	}
	if a.ExceptionsActive {
		active = append(active, "exception")
	}
	if len(active) == 0 {
		return assault{}
	}
	var out assault
	switch active[rand.IntN(len(active))] {
	case "latency":
		ms := a.LatencyRangeStart
		if a.LatencyRangeEnd > a.LatencyRangeStart {
			ms += rand.IntN(a.LatencyRangeEnd - a.LatencyRangeStart + 1)
		}
		cm.latencyCount.WithLabelValues().Inc()
		cm.latencyGauge.WithLabelValues().Set(float64(ms))
		out.latency = time.Duration(ms) * time.Millisecond
	case "exception":
		cm.exceptionCount.WithLabelValues().Inc()
		out.exception = a.Exception.SimpleName()
	}
	cm.requestCount.WithLabelValues("assaulted").Inc()
	return out
}

// watchedLocked: the component's type watcher is on, or its bean is listed
// in beans or its class in beanClasses; and its class is not excluded.
func (cm *ChaosMonkey) watchedLocked(c Component) bool {
	w := cm.watchers
	for _, x := range w.ExcludeClasses {
		if x == c.Class {
			return false
		}
	}
	if w.watches(c.Target) {
		return true
	}
	for _, b := range w.Beans {
		if b == c.Bean {
			return true
		}
	}
	for _, b := range w.BeanClasses {
		if b == c.Class {
			return true
		}
	}
	return false
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// wrap attacks a controller handler: latency before it runs, or a 500
// with the exception's simple name instead of it.
func (cm *ChaosMonkey) wrap(c Component, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := cm.decide(c)
		sleep(r.Context(), a.latency)
		if a.exception != "" {
			springError(w, r, http.StatusInternalServerError, a.exception)
			return
		}
		h(w, r)
	}
}

// runtimeAttack is ChaosMonkeyRuntimeScope.callChaosMonkey: when enabled,
// every active runtime assault fires once.
func (cm *ChaosMonkey) runtimeAttack() {
	cm.mu.Lock()
	enabled, a := cm.enabled, cm.assaults
	cm.mu.Unlock()
	if !enabled {
		return
	}
	if a.MemoryActive {
		cm.startMemoryAssault(a)
	}
	if a.CPUActive {
		cm.log.Warn("chaos monkey cpu assault is not simulated in the lab")
	}
	if a.KillApplicationActive {
		cm.log.Warn("chaos monkey kill application assault is not supported in the lab")
	}
}

// startMemoryAssault fills memFillTargetFraction of the lab heap in
// increments, holds it, then frees it; one at a time, as CMSB does.
func (cm *ChaosMonkey) startMemoryAssault(a AssaultProperties) {
	cm.memMu.Lock()
	if cm.memRunning {
		cm.memMu.Unlock()
		cm.log.Info("chaos monkey memory assault still running, not starting another")
		return
	}
	cm.memRunning = true
	cm.memMu.Unlock()
	cm.memoryCount.WithLabelValues().Inc()
	target := int64(a.MemoryFillTargetFraction * float64(cm.memLimit))
	step := max(int64(a.MemoryFillIncrementFraction*float64(cm.memLimit)), 1<<20)
	wait := time.Duration(a.MemoryMillisecondsWaitNextIncrease) * time.Millisecond
	hold := time.Duration(a.MemoryMillisecondsHoldFilledMemory) * time.Millisecond
	cm.log.Info("chaos monkey memory assault started", zap.Int64("targetBytes", target))
	cm.wg.Add(1)
	go func() {
		defer cm.wg.Done()
		defer func() {
			cm.memMu.Lock()
			cm.memHeld, cm.memRunning = nil, false
			cm.memMu.Unlock()
			cm.log.Info("chaos monkey memory assault finished")
		}()
		var filled int64
		for filled < target {
			n := min(step, target-filled)
			b := make([]byte, n)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			cm.memMu.Lock()
			cm.memHeld = append(cm.memHeld, b)
			cm.memMu.Unlock()
			filled += n
			if filled >= target {
				break
			}
			select {
			case <-time.After(wait):
			case <-cm.stop:
				return
			}
		}
		select {
		case <-time.After(hold):
		case <-cm.stop:
		}
	}()
}

// MemoryHeldBytes is what the memory assault holds now.
func (cm *ChaosMonkey) MemoryHeldBytes() int64 {
	cm.memMu.Lock()
	defer cm.memMu.Unlock()
	var n int64
	for _, b := range cm.memHeld {
		n += int64(len(b))
	}
	return n
}

// --- actuator ---

type enabledDTO struct {
	Status    string    `json:"status"`
	EnabledAt time.Time `json:"enabledAt"`
}

type disabledDTO struct {
	Status     string        `json:"status"`
	DisabledAt time.Time     `json:"disabledAt"`
	timeActive time.Duration // of the enabled period before
}

func formatDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch h := s / 3600; {
	case h > 0:
		return fmt.Sprintf("%d hours %02d minutes %02d seconds", h, (s%3600)/60, s%60)
	case s/60 > 0:
		return fmt.Sprintf("%d minutes %02d seconds", s/60, s%60)
	}
	return fmt.Sprintf("%d seconds", s)
}

type chaosMonkeyProperties struct {
	Enabled                    bool   `json:"enabled"`
	LastEnabledToggleTimestamp *int64 `json:"lastEnabledToggleTimestamp"`
	TogglePrefix               string `json:"togglePrefix"`
}

func (cm *ChaosMonkey) setEnabledLocked(on bool) {
	if cm.enabled != on {
		ts := cm.now().UnixMilli()
		cm.toggledAt = &ts
		cm.enabled = on
	}
}

// register serves the actuator under ChaosMonkeyBase.
func (cm *ChaosMonkey) register(r *router) {
	b := ChaosMonkeyBase
	r.handle("GET", b, func(w http.ResponseWriter, _ *http.Request) {
		cm.mu.Lock()
		body := map[string]any{
			"chaosMonkeyProperties": chaosMonkeyProperties{Enabled: cm.enabled, LastEnabledToggleTimestamp: cm.toggledAt, TogglePrefix: "chaos.monkey"},
			"assaultProperties":     cm.assaults,
			"watcherProperties":     cm.watchers,
		}
		cm.mu.Unlock()
		cmJSON(w, http.StatusOK, body)
	})
	r.handle("GET", b+"/status", func(w http.ResponseWriter, _ *http.Request) {
		if cm.Enabled() {
			cmText(w, http.StatusOK, "Ready to be evil!")
			return
		}
		cmText(w, http.StatusServiceUnavailable, "You switched me off!")
	})
	r.handle("POST", b+"/enable", func(w http.ResponseWriter, _ *http.Request) {
		cm.mu.Lock()
		if !cm.enabled || cm.enabledDTO == nil {
			cm.enabledDTO = &enabledDTO{Status: "Chaos Monkey is enabled", EnabledAt: cm.now()}
			cm.setEnabledLocked(true)
		}
		d := *cm.enabledDTO
		cm.mu.Unlock()
		cmJSON(w, http.StatusOK, map[string]any{
			"status": d.Status, "enabledAt": d.EnabledAt.Format(time.RFC3339Nano),
			"timeActiveFormatted": formatDuration(cm.now().Sub(d.EnabledAt)),
		})
	})
	r.handle("POST", b+"/disable", func(w http.ResponseWriter, _ *http.Request) {
		cm.mu.Lock()
		if cm.enabled || cm.disabledDT == nil {
			d := &disabledDTO{Status: "Chaos Monkey is disabled", DisabledAt: cm.now()}
			if cm.enabledDTO != nil {
				d.timeActive = d.DisabledAt.Sub(cm.enabledDTO.EnabledAt)
			}
			cm.disabledDT = d
			cm.setEnabledLocked(false)
		}
		d := *cm.disabledDT
		cm.mu.Unlock()
		cmJSON(w, http.StatusOK, map[string]any{
			"status": d.Status, "disabledAt": d.DisabledAt.Format(time.RFC3339Nano),
			"timeActiveFormatted":   formatDuration(d.timeActive),
			"timeInActiveFormatted": formatDuration(cm.now().Sub(d.DisabledAt)),
		})
	})
	r.handle("GET", b+"/assaults", func(w http.ResponseWriter, _ *http.Request) {
		cmJSON(w, http.StatusOK, cm.Assaults())
	})
	r.handle("POST", b+"/assaults", cm.postAssaults)
	r.handle("POST", b+"/assaults/runtime/attack", func(w http.ResponseWriter, _ *http.Request) {
		cm.runtimeAttack()
		cmText(w, http.StatusOK, "Started runtime assaults")
	})
	r.handle("GET", b+"/watchers", func(w http.ResponseWriter, _ *http.Request) {
		cmJSON(w, http.StatusOK, cm.Watchers())
	})
	r.handle("POST", b+"/watchers", cm.postWatchers)
}

// AssaultPropertiesUpdate is the body of POST /assaults: absent (or null)
// fields keep their value.
type AssaultPropertiesUpdate struct {
	Level                              *int            `json:"level,omitempty"`
	Deterministic                      *bool           `json:"deterministic,omitempty"`
	LatencyRangeStart                  *int            `json:"latencyRangeStart,omitempty"`
	LatencyRangeEnd                    *int            `json:"latencyRangeEnd,omitempty"`
	LatencyActive                      *bool           `json:"latencyActive,omitempty"`
	ExceptionsActive                   *bool           `json:"exceptionsActive,omitempty"`
	Exception                          json.RawMessage `json:"exception,omitempty"`
	KillApplicationActive              *bool           `json:"killApplicationActive,omitempty"`
	KillApplicationCronExpression      *string         `json:"killApplicationCronExpression,omitempty"`
	MemoryActive                       *bool           `json:"memoryActive,omitempty"`
	MemoryMillisecondsHoldFilledMemory *int            `json:"memoryMillisecondsHoldFilledMemory,omitempty"`
	MemoryMillisecondsWaitNextIncrease *int            `json:"memoryMillisecondsWaitNextIncrease,omitempty"`
	MemoryFillIncrementFraction        *float64        `json:"memoryFillIncrementFraction,omitempty"`
	MemoryFillTargetFraction           *float64        `json:"memoryFillTargetFraction,omitempty"`
	MemoryCronExpression               *string         `json:"memoryCronExpression,omitempty"`
	CPUActive                          *bool           `json:"cpuActive,omitempty"`
	CPUMillisecondsHoldLoad            *int            `json:"cpuMillisecondsHoldLoad,omitempty"`
	CPULoadTargetFraction              *float64        `json:"cpuLoadTargetFraction,omitempty"`
	CPUCronExpression                  *string         `json:"cpuCronExpression,omitempty"`
	WatchedCustomServices              *[]string       `json:"watchedCustomServices,omitempty"`
}

// fieldError is one entry of Spring's "errors" list (binding errors).
type fieldError struct {
	ObjectName     string `json:"objectName"`
	Field          string `json:"field,omitempty"`
	RejectedValue  any    `json:"rejectedValue,omitempty"`
	DefaultMessage string `json:"defaultMessage"`
	Code           string `json:"code"`
	BindingFailure bool   `json:"bindingFailure"`
}

var javaClassName = regexp.MustCompile(`^([A-Za-z_$][A-Za-z0-9_$]*\.)*[A-Za-z_$][A-Za-z0-9_$]*$`)

// validate checks u as Hibernate Validator checks CMSB's
// AssaultPropertiesUpdate; exc is the decoded exception, if any.
func (u *AssaultPropertiesUpdate) validate(exc *AssaultException) []fieldError {
	const obj = "assaultPropertiesUpdate"
	var errs []fieldError
	minInt := func(field string, v *int, lo int) {
		if v != nil && *v < lo {
			errs = append(errs, fieldError{ObjectName: obj, Field: field, RejectedValue: *v, Code: "Min",
				DefaultMessage: fmt.Sprintf("must be greater than or equal to %d", lo)})
		}
	}
	maxInt := func(field string, v *int, hi int) {
		if v != nil && *v > hi {
			errs = append(errs, fieldError{ObjectName: obj, Field: field, RejectedValue: *v, Code: "Max",
				DefaultMessage: fmt.Sprintf("must be less than or equal to %d", hi)})
		}
	}
	decimal := func(field string, v *float64, lo, hi string) {
		if v == nil {
			return
		}
		var l, h float64
		fmt.Sscan(lo, &l)
		fmt.Sscan(hi, &h)
		if *v < l {
			errs = append(errs, fieldError{ObjectName: obj, Field: field, RejectedValue: *v, Code: "DecimalMin",
				DefaultMessage: "must be greater than or equal to " + lo})
		}
		if *v > h {
			errs = append(errs, fieldError{ObjectName: obj, Field: field, RejectedValue: *v, Code: "DecimalMax",
				DefaultMessage: "must be less than or equal to " + hi})
		}
	}
	minInt("level", u.Level, 1)
	maxInt("level", u.Level, 10000)
	minInt("latencyRangeStart", u.LatencyRangeStart, 1)
	minInt("latencyRangeEnd", u.LatencyRangeEnd, 1)
	minInt("memoryMillisecondsHoldFilledMemory", u.MemoryMillisecondsHoldFilledMemory, 1500)
	minInt("memoryMillisecondsWaitNextIncrease", u.MemoryMillisecondsWaitNextIncrease, 100)
	maxInt("memoryMillisecondsWaitNextIncrease", u.MemoryMillisecondsWaitNextIncrease, 30000)
	decimal("memoryFillIncrementFraction", u.MemoryFillIncrementFraction, "0.0", "1.0")
	decimal("memoryFillTargetFraction", u.MemoryFillTargetFraction, "0.05", "0.95")
	minInt("cpuMillisecondsHoldLoad", u.CPUMillisecondsHoldLoad, 1500)
	decimal("cpuLoadTargetFraction", u.CPULoadTargetFraction, "0.1", "1.0")
	if exc != nil {
		ok := javaClassName.MatchString(exc.Type) && (exc.Method == constructorMethod || javaClassName.MatchString(exc.Method))
		for _, a := range exc.Arguments {
			ok = ok && javaClassName.MatchString(a.Type)
		}
		if !ok {
			errs = append(errs, fieldError{ObjectName: obj, Field: "exception", RejectedValue: *exc, Code: "AssaultExceptionConstraint",
				DefaultMessage: "Invalid combination of type, method and arguments: type and argument types must be Java class names"})
		}
	}
	start, end := u.LatencyRangeStart, u.LatencyRangeEnd
	if (start == nil) != (end == nil) || (start != nil && *start > *end) {
		// A class-level constraint: Spring reports it as a global error
		// (no field); the message names both fields.
		errs = append(errs, fieldError{ObjectName: obj, Code: "AssaultPropertiesUpdateLatencyRangeConstraint",
			DefaultMessage: "latencyRangeStart and latencyRangeEnd must be set together and latencyRangeStart must not exceed latencyRangeEnd"})
	}
	return errs
}

// applyTo merges u into a (Jackson's ObjectMapper.updateValue).
func (u *AssaultPropertiesUpdate) applyTo(a *AssaultProperties, exc *AssaultException) {
	setI := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setF := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setI(&a.Level, u.Level)
	setB(&a.Deterministic, u.Deterministic)
	setI(&a.LatencyRangeStart, u.LatencyRangeStart)
	setI(&a.LatencyRangeEnd, u.LatencyRangeEnd)
	setB(&a.LatencyActive, u.LatencyActive)
	setB(&a.ExceptionsActive, u.ExceptionsActive)
	if exc != nil {
		a.Exception = *exc
	}
	setB(&a.KillApplicationActive, u.KillApplicationActive)
	setS(&a.KillApplicationCronExpression, u.KillApplicationCronExpression)
	setB(&a.MemoryActive, u.MemoryActive)
	setI(&a.MemoryMillisecondsHoldFilledMemory, u.MemoryMillisecondsHoldFilledMemory)
	setI(&a.MemoryMillisecondsWaitNextIncrease, u.MemoryMillisecondsWaitNextIncrease)
	setF(&a.MemoryFillIncrementFraction, u.MemoryFillIncrementFraction)
	setF(&a.MemoryFillTargetFraction, u.MemoryFillTargetFraction)
	setS(&a.MemoryCronExpression, u.MemoryCronExpression)
	setB(&a.CPUActive, u.CPUActive)
	setI(&a.CPUMillisecondsHoldLoad, u.CPUMillisecondsHoldLoad)
	setF(&a.CPULoadTargetFraction, u.CPULoadTargetFraction)
	setS(&a.CPUCronExpression, u.CPUCronExpression)
	if u.WatchedCustomServices != nil {
		a.WatchedCustomServices = append([]string{}, (*u.WatchedCustomServices)...)
	}
}

func (cm *ChaosMonkey) postAssaults(w http.ResponseWriter, r *http.Request) {
	var u AssaultPropertiesUpdate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&u); err != nil {
		springError(w, r, http.StatusBadRequest, "HttpMessageNotReadableException")
		return
	}
	var exc *AssaultException
	if len(u.Exception) > 0 && string(u.Exception) != "null" {
		// Jackson builds a fresh AssaultException: absent fields take
		// their defaults, they are not merged with the current one.
		e := DefaultAssaultException()
		if err := json.Unmarshal(u.Exception, &e); err != nil {
			springError(w, r, http.StatusBadRequest, "HttpMessageNotReadableException")
			return
		}
		exc = &e
	}
	if errs := u.validate(exc); len(errs) > 0 {
		validationError(w, r, "assaultPropertiesUpdate", errs)
		return
	}
	cm.mu.Lock()
	u.applyTo(&cm.assaults, exc)
	a := cm.assaults
	cm.mu.Unlock()
	cm.log.Info("chaos monkey assault config changed", zap.Int("level", a.Level), zap.Bool("latencyActive", a.LatencyActive),
		zap.Bool("exceptionsActive", a.ExceptionsActive), zap.Bool("memoryActive", a.MemoryActive))
	cmText(w, http.StatusOK, "Assault config has changed")
}

// WatcherPropertiesUpdate is the body of POST /watchers.
type WatcherPropertiesUpdate struct {
	Controller     *bool     `json:"controller,omitempty"`
	RestController *bool     `json:"restController,omitempty"`
	Service        *bool     `json:"service,omitempty"`
	Repository     *bool     `json:"repository,omitempty"`
	Component      *bool     `json:"component,omitempty"`
	RestTemplate   *bool     `json:"restTemplate,omitempty"`
	WebClient      *bool     `json:"webClient,omitempty"`
	ActuatorHealth *bool     `json:"actuatorHealth,omitempty"`
	Beans          *[]string `json:"beans,omitempty"`
	BeanClasses    *[]string `json:"beanClasses,omitempty"`
	ExcludeClasses *[]string `json:"excludeClasses,omitempty"`
}

func (cm *ChaosMonkey) postWatchers(w http.ResponseWriter, r *http.Request) {
	var u WatcherPropertiesUpdate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&u); err != nil {
		springError(w, r, http.StatusBadRequest, "HttpMessageNotReadableException")
		return
	}
	// beanClasses/excludeClasses are List<Class<?>>: Jackson rejects names
	// that are no class (we can only check the syntax).
	for _, l := range []*[]string{u.BeanClasses, u.ExcludeClasses} {
		if l == nil {
			continue
		}
		for _, c := range *l {
			if !javaClassName.MatchString(c) {
				springError(w, r, http.StatusBadRequest, "HttpMessageNotReadableException")
				return
			}
		}
	}
	cm.mu.Lock()
	wp := &cm.watchers
	for _, f := range []struct {
		dst *bool
		v   *bool
	}{{&wp.Controller, u.Controller}, {&wp.RestController, u.RestController}, {&wp.Service, u.Service},
		{&wp.Repository, u.Repository}, {&wp.Component, u.Component}, {&wp.RestTemplate, u.RestTemplate},
		{&wp.WebClient, u.WebClient}, {&wp.ActuatorHealth, u.ActuatorHealth}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	for _, f := range []struct {
		dst *[]string
		v   *[]string
	}{{&wp.Beans, u.Beans}, {&wp.BeanClasses, u.BeanClasses}, {&wp.ExcludeClasses, u.ExcludeClasses}} {
		if f.v != nil {
			*f.dst = append([]string{}, (*f.v)...)
		}
	}
	cm.mu.Unlock()
	cmText(w, http.StatusOK, "Watcher config has changed")
}

// validationError is Spring Boot's answer to MethodArgumentNotValidException
// with server.error.include-message and include-binding-errors=always.
func validationError(w http.ResponseWriter, r *http.Request, object string, errs []fieldError) {
	setException(w, "MethodArgumentNotValidException")
	cmJSON(w, http.StatusBadRequest, map[string]any{
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"status":    http.StatusBadRequest,
		"error":     http.StatusText(http.StatusBadRequest),
		"message":   fmt.Sprintf("Validation failed for object='%s'. Error count: %d", object, len(errs)),
		"errors":    errs,
		"path":      r.URL.Path,
	})
}

// cmJSON writes v without HTML escaping ("<init>" stays readable, as
// Jackson writes it).
func cmJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func cmText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(s))
}

// Outbound clients as Chaos Monkey sees them: visits-service calls
// customers-service with a RestTemplate, api-gateway uses WebClients.
var (
	restTemplateComponent = Component{Target: TargetRestTemplate, Bean: "restTemplate",
		Class: "org.springframework.web.client.RestTemplate", Method: "getForObject"}
	customersClientComponent = Component{Target: TargetWebClient, Bean: "customersServiceClient",
		Class: "org.springframework.samples.petclinic.api.application.CustomersServiceClient", Method: "getOwner"}
	visitsClientComponent = Component{Target: TargetWebClient, Bean: "visitsServiceClient",
		Class: "org.springframework.samples.petclinic.api.application.VisitsServiceClient", Method: "getVisitsForPets"}
)
