package daemon

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
)

// metrics are chaosd's own Prometheus metrics.
type metrics struct {
	reg    *prometheus.Registry
	runs   *prometheus.CounterVec
	rto    *prometheus.GaugeVec
	target *prometheus.GaugeVec
	skips  *prometheus.CounterVec
}

// newMetrics registers the metrics; active and faults are read at scrape
// time.
func newMetrics(active, faults func() int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chaosd_runs_total", Help: "Finished experiment runs by verdict.",
	}, []string{"experiment", "verdict"})
	m.rto = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chaosd_last_measured_rto_seconds", Help: "Measured RTO of the last run of each experiment that recovered.",
	}, []string{"experiment"})
	m.target = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "chaosd_rto_target_seconds", Help: "RTO target of each experiment.",
	}, []string{"experiment"})
	m.skips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chaosd_schedule_skipped_total", Help: "Schedule triggers that did not start a run (a run still going, a freeze window, a paused schedule, missed while chaosd was down); GET /v1/skips says why.",
	}, []string{"experiment"})
	activeG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chaosd_runs_active", Help: "Runs in progress.",
	}, func() float64 { return float64(active()) })
	faultsG := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chaosd_faults_active", Help: "Faults injected and not yet reverted, over all runs in progress.",
	}, func() float64 { return float64(faults()) })
	m.reg.MustRegister(m.runs, m.rto, m.target, m.skips, activeG, faultsG)
	return m
}

// experiment makes an experiment's series exist at 0 from the start, so
// increase() and alerts see its first run of each verdict too.
func (m *metrics) experiment(e *experiments.Experiment) {
	name := e.Metadata.Name
	for _, v := range api.Verdicts {
		m.runs.WithLabelValues(name, string(v))
	}
	m.skips.WithLabelValues(name)
	m.target.WithLabelValues(name).Set(e.Spec.Recovery.RTO.D().Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// finished counts a run that ended (now, or interrupted by a restart).
func (m *metrics) finished(r api.Run) {
	m.runs.WithLabelValues(r.Experiment, string(r.Verdict)).Inc()
	if r.RTO.MeasuredSeconds != nil {
		m.rto.WithLabelValues(r.Experiment).Set(*r.RTO.MeasuredSeconds)
	}
}

// restored counts a run that finished before this chaosd started.
func (m *metrics) restored(r api.Run) {
	if r.Verdict != "" {
		m.runs.WithLabelValues(r.Experiment, string(r.Verdict)).Inc()
	}
}

func (m *metrics) skipped(experiment string) { m.skips.WithLabelValues(experiment).Inc() }
