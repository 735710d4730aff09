package prom

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/chaosd/chaosd/probes"
)

// AlertStates reads Prometheus' ALERTS series for the alert name (and
// labels) at every step from start to end: firing when any matching
// series fires at that step, pending when one is pending, else inactive.
func (e *Evaluator) AlertStates(ctx context.Context, name string, labels map[string]string, start, end time.Time, step time.Duration) ([]probes.AlertPoint, error) {
	if step <= 0 || end.Before(start) {
		return nil, fmt.Errorf("alert states of %s: empty range %s..%s step %s", name, start, end, step)
	}
	q := AlertsQuery(name, labels)
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	v, _, _, err := e.api.QueryRange(qctx, q, v1.Range{Start: start, End: end, Step: step}, v1.WithTimeout(e.timeout))
	if err != nil {
		return nil, classify(ctx, qctx, err, e.timeout)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: %s returned %s", probes.ErrQuery, q, v.Type())
	}
	n := int(end.Sub(start)/step) + 1
	out := make([]probes.AlertPoint, n)
	for k := range out {
		out[k].Time = start.Add(time.Duration(k) * step)
	}
	for _, s := range m {
		state := string(s.Metric["alertstate"])
		for _, pt := range s.Values {
			k := int(math.Round(float64(pt.Timestamp.Time().Sub(start)) / float64(step)))
			if k < 0 || k >= n || out[k].State == probes.AlertFiring {
				continue
			}
			if state == probes.AlertFiring || state == probes.AlertPending {
				out[k].State = state
			}
		}
	}
	return out, nil
}

// AlertsQuery is the PromQL selector of an alert's ALERTS series.
func AlertsQuery(name string, labels map[string]string) string {
	parts := []string{fmt.Sprintf("alertname=%q", name)}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "ALERTS{" + strings.Join(parts, ",") + "}"
}
