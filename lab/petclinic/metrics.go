package petclinic

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxWindow is how long a Micrometer-style _max keeps a value: Micrometer's
// TimeWindowMax rotates a ring of buffers over the step (default 1m).
const maxWindow = time.Minute

// timer is a Micrometer Timer as the Prometheus registry exposes it: a
// summary NAME_seconds_{count,sum} and a gauge NAME_seconds_max that decays
// after maxWindow.
type timer struct {
	summary *prometheus.SummaryVec
	maxDesc *prometheus.Desc
	now     func() time.Time

	mu   sync.Mutex
	maxs map[string]*windowMax
}

type windowMax struct {
	labels    []string
	cur, prev float64
	rotatedAt time.Time
}

func newTimer(name, help string, labels []string) *timer {
	return &timer{
		summary: prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: name, Help: help}, labels),
		maxDesc: prometheus.NewDesc(name+"_max", help, labels, nil),
		now:     time.Now,
		maxs:    map[string]*windowMax{},
	}
}

func (t *timer) observe(d time.Duration, labels ...string) {
	s := d.Seconds()
	t.summary.WithLabelValues(labels...).Observe(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.window(labels)
	if s > m.cur {
		m.cur = s
	}
}

// touch makes a series exist with zero values, as Micrometer does for
// meters registered up front.
func (t *timer) touch(labels ...string) {
	t.summary.WithLabelValues(labels...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.window(labels)
}

func (t *timer) window(labels []string) *windowMax {
	k := strings.Join(labels, "\xff")
	m, ok := t.maxs[k]
	if !ok {
		m = &windowMax{labels: append([]string(nil), labels...), rotatedAt: t.now()}
		t.maxs[k] = m
	}
	if now := t.now(); now.Sub(m.rotatedAt) >= maxWindow {
		if now.Sub(m.rotatedAt) >= 2*maxWindow {
			m.prev = 0
		} else {
			m.prev = m.cur
		}
		m.cur = 0
		m.rotatedAt = now
	}
	return m
}

func (t *timer) Describe(ch chan<- *prometheus.Desc) {
	t.summary.Describe(ch)
	ch <- t.maxDesc
}

func (t *timer) Collect(ch chan<- prometheus.Metric) {
	t.summary.Collect(ch)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.maxs {
		m = t.window(m.labels)
		ch <- prometheus.MustNewConstMetric(t.maxDesc, prometheus.GaugeValue, max(m.cur, m.prev), m.labels...)
	}
}

// Outcome maps an HTTP status code to Micrometer's outcome tag.
func Outcome(status int) string {
	switch {
	case status >= 100 && status < 200:
		return "INFORMATIONAL"
	case status >= 200 && status < 300:
		return "SUCCESS"
	case status >= 300 && status < 400:
		return "REDIRECTION"
	case status >= 400 && status < 500:
		return "CLIENT_ERROR"
	case status >= 500 && status < 600:
		return "SERVER_ERROR"
	}
	return "UNKNOWN"
}

// Metrics is the registry of one stand-in service.
type Metrics struct {
	Registry *prometheus.Registry
	server   *timer
	client   *timer
	visit    *timer
}

// NewMetrics builds a registry with the HTTP server and client timers.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		server: newTimer("http_server_requests_seconds", "Duration of HTTP server request handling",
			[]string{"method", "uri", "status", "outcome", "exception", "error"}),
		client: newTimer("http_client_requests_seconds", "Timer of HTTP client exchanges",
			[]string{"client_name", "method", "uri", "status", "outcome", "exception"}),
	}
	m.Registry.MustRegister(m.server, m.client)
	return m
}

// Handler serves the Prometheus exposition of the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// visitTimer registers petclinic_visit_seconds (visits-service's @Timed).
func (m *Metrics) visitTimer() *timer {
	if m.visit == nil {
		m.visit = newTimer("petclinic_visit_seconds", "Visits endpoint timings",
			[]string{"class", "exception", "method"})
		m.Registry.MustRegister(m.visit)
		for _, meth := range []string{"read", "create"} {
			m.visit.touch(visitResourceClass, "none", meth)
		}
	}
	return m.visit
}

const visitResourceClass = "org.springframework.samples.petclinic.visits.web.VisitResource"

// statusWriter remembers the status and the exception a handler reports.
type statusWriter struct {
	http.ResponseWriter
	status    int
	exception string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// setException records the exception class name for the server metric.
func setException(w http.ResponseWriter, name string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.exception = name
	}
}

// router registers handlers under templated URIs and records
// http_server_requests_seconds with the template as the uri tag.
type router struct {
	mux     *http.ServeMux
	metrics *Metrics
	chaos   *ChaosMonkey
	// errorRate is the share of controller requests that fail with a
	// 500 on their own (a flaky service, independent of any fault).
	errorRate float64
	rnd       func() float64
}

// healthComponent is what the actuatorHealth watcher attacks.
var healthComponent = Component{Target: TargetActuatorHealth, Bean: "healthEndpoint",
	Class: "org.springframework.boot.actuate.health.HealthEndpoint", Method: "health"}

func newRouter(m *Metrics, cm *ChaosMonkey) *router {
	r := &router{mux: http.NewServeMux(), metrics: m, chaos: cm}
	r.handle("GET", "/actuator/prometheus", m.Handler().ServeHTTP)
	r.handle("GET", "/actuator/health", func(w http.ResponseWriter, req *http.Request) {
		// The actuatorHealth watcher makes the health check slow or DOWN.
		a := cm.decide(healthComponent)
		sleep(req.Context(), a.latency)
		if a.exception != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "DOWN"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "UP"})
	})
	cm.register(r)
	return r
}

// controller registers a @RestController handler: the restController
// watcher (or c's bean/class in beans/beanClasses) exposes it to Chaos
// Monkey's request assaults.
func (r *router) controller(method, uri string, c Component, h http.HandlerFunc) {
	c.Target = TargetRestController
	h = r.chaos.wrap(c, h)
	r.handle(method, uri, func(w http.ResponseWriter, req *http.Request) {
		if r.errorRate > 0 && r.rnd() < r.errorRate {
			springError(w, req, http.StatusInternalServerError, "IllegalStateException")
			return
		}
		h(w, req)
	})
}

// handle registers h for METHOD and a Spring-style uri template; "*"
// segments match anything, "{name}" segments are path values.
func (r *router) handle(method, uri string, h http.HandlerFunc) {
	segs := strings.Split(uri, "/")
	for i, s := range segs {
		if s == "*" {
			segs[i] = "{_any" + strconv.Itoa(i) + "}"
		}
	}
	pattern := method + " " + strings.Join(segs, "/")
	r.mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, uri, h)
	})
}

func (r *router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, pattern := r.mux.Handler(req)
	if pattern == "" {
		r.serve(w, req, "NOT_FOUND", func(w http.ResponseWriter, req *http.Request) {
			r.mux.ServeHTTP(w, req)
		})
		return
	}
	r.mux.ServeHTTP(w, req)
}

func (r *router) serve(w http.ResponseWriter, req *http.Request, uri string, h http.HandlerFunc) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h(sw, req)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	exc := sw.exception
	if exc == "" {
		exc = "none"
	}
	r.metrics.server.observe(time.Since(start), req.Method, uri, strconv.Itoa(status), Outcome(status), exc, exc)
}

// clientTags classifies a finished client exchange the way Micrometer's
// HTTP client observation does.
func clientTags(status int, err error) (statusTag, outcome, exception string) {
	if err != nil {
		var urlErr interface{ Timeout() bool }
		switch {
		case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &urlErr) && urlErr.Timeout()):
			return "IO_ERROR", "UNKNOWN", "TimeoutException"
		case errors.Is(err, syscall.ECONNREFUSED):
			return "IO_ERROR", "UNKNOWN", "ConnectException"
		case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EINVAL):
			return "IO_ERROR", "UNKNOWN", "NoRouteToHostException"
		case errors.Is(err, errMalformed):
			return "CLIENT_ERROR", "UNKNOWN", "DecodingException"
		}
		var ce *chaosError
		if errors.As(err, &ce) {
			return "CLIENT_ERROR", "UNKNOWN", ce.exception
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) || errors.Is(err, os.ErrDeadlineExceeded) {
			return "IO_ERROR", "UNKNOWN", "IOException"
		}
		return "IO_ERROR", "UNKNOWN", "IOException"
	}
	return strconv.Itoa(status), Outcome(status), "none"
}
